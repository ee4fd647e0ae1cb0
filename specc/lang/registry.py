"""The registry: one entry per layer kind and one per merge kind.

A layer entry holds everything specc knows about a kind: its arguments (with
defaults equal to PyTorch's), its shape rule, its cost (parameters, buffers,
multiply-accumulates) and its torch constructor. A merge entry (concat, add,
mul, split) holds how its branches' inputs are made, how their outputs join,
and its constructor. Adding a kind means adding one `register(...)` or
`register_merge(...)` call here and nothing else: the grammar takes the merge
names from MERGES.

Shapes are per sample: (C, H, W) for images, (F,) for flat features. Shape
rules copy PyTorch's own arithmetic (ATen's conv and pooling shape checks),
because PyTorch is the oracle the tests compare against. Nothing here imports
torch: constructors receive `torch.nn` as an argument, and the few modules
torch lacks come from specc.runtime.modules, imported only when one is built.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from .errors import shape_str

REQUIRED = object()


class LayerError(Exception):
    """A shape or argument mistake, located later by infer.py at the layer (or `arg`)."""

    def __init__(self, message: str, *, arg: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.arg, self.hint = message, arg, hint


class Shape(tuple):
    """A per-sample shape; `unflattened` remembers what a flatten flattened, for messages."""

    unflattened: tuple[int, ...] | None = None

    @classmethod
    def flat(cls, features: int, unflattened: tuple[int, ...]) -> "Shape":
        shape = cls((features,))
        shape.unflattened = unflattened
        return shape


class Args(dict):
    """Resolved argument values of one layer; `a.stride` reads `a["stride"]`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Arg(NamedTuple):
    """One argument of a layer kind. `kind` is int, pair (int or HxW), float or bool."""

    name: str
    kind: str
    default: Any = REQUIRED
    minimum: float | None = None  # smallest allowed value (for pairs: of each side)
    below: float | None = None  # exclusive upper bound, for probabilities
    maximum: float | None = None  # inclusive upper bound


class Cost(NamedTuple):
    params: int = 0
    buffers: int = 0
    macs: int = 0  # see MAC_CONVENTION


# What every MAC count specc shows means (summary, IR, check, docs).
MAC_CONVENTION = ("multiply-accumulates of conv and linear layers only; 1 MAC = 2 FLOPs; equals torchvision's "
                  "GFLOPS and torch.utils.flop_counter.FlopCounterMode/2")


class Figure(NamedTuple):
    """How `specc draw` shows a kind: the colour group of its box and its label, written the way the
    d2l figures write it (`3x3 conv, 384, pad 1`); a label of None shows the kind's name."""

    group: str = "other"  # conv, pool, fc, norm, activation, dropout, reshape, identity, merge, other
    label: Callable[[Args], str] | None = None


def figure_size(value: Any) -> str:
    """A window as the figures write it: 3 or (3, 3) -> `3x3`, (1, 7) -> `1x7`."""
    return "x".join(map(str, value)) if isinstance(value, tuple) else f"{value}x{value}"


def figure_options(a: Args, **defaults: Any) -> list[str]:
    """`stride 2`, `pad 1`: the arguments that differ from `defaults`, in the figures' words."""
    words = {"stride": "stride", "padding": "pad", "dilation": "dilation", "groups": "groups"}
    shown = []
    for name, default in defaults.items():
        value = a.get(name)
        sides = value if isinstance(value, tuple) else (value,)
        if value is None or all(side == default for side in sides):
            continue
        side = sides[0] if len(set(sides)) == 1 else "x".join(map(str, sides))
        shown.append(f"{words[name]} {side}")
    return shown


def pool_figure(name: str) -> Callable[[Args], str]:
    """`3x3 max pool, stride 2`: the stride shown is the one used (a pool's defaults to its window)."""
    def label(a: Args) -> str:
        used = Args(a, stride=a.stride or a.kernel)
        ceil = ["ceil"] if a.ceil else []
        return ", ".join([f"{figure_size(a.kernel)} {name}", *figure_options(used, stride=1, padding=0, dilation=1),
                          *ceil])
    return label


def _always(a: "Args") -> bool:
    return True


class Saves(NamedTuple):
    """What autograd keeps of a layer (or merge) for the backward pass in training mode: the facts
    specc.lang.memory's training-memory estimate is built on (tests/test_memory.py checks each kind's
    claim with torch.autograd.graph.saved_tensors_hooks).

    `input`, `output` (a bool, or a function of the arguments): the layer keeps its input or its output
    tensor; for a merge `input` means its operands, the branches' outputs. A kept storage is counted once
    however many layers keep it. `extra(args, in_shape, out_shape, batch)`: bytes of the new tensors it
    keeps besides (MaxPool's int64 indices, dropout's mask, BatchNorm's per-channel statistics).
    `view(args)`: the output is the input or a view of it (identity, flatten, dropout 0), so the layer
    allocates nothing and its gradient passes through. `grad_view`: a merge whose backward hands each
    branch its output's gradient (or a slice of it) instead of computing a new one (add, concat).
    No specc constructor builds an in-place layer (inplace=True), so no kept input is overwritten.
    """

    input: Any = False
    output: Any = False
    extra: Callable[[Args, tuple, tuple, int], int] = lambda a, s, out, batch: 0
    view: Callable[[Args], bool] = lambda a: False
    grad_view: bool = False

    def keeps(self, what: str, args: Args) -> bool:
        """Whether the layer keeps its "input" or its "output" with these arguments."""
        value = getattr(self, what)
        return bool(value(args) if callable(value) else value)


KEEPS_INPUT = Saves(input=True)
KEEPS_OUTPUT = Saves(output=True)
VIEW = Saves(view=_always)


def _indices(a: Args, s: tuple, out: tuple, batch: int) -> int:
    """Max pooling keeps where each maximum was: one int64 per output value."""
    return 8 * math.prod(out) * batch


def _lrn_kept(a: Args, s: tuple, out: tuple, batch: int) -> int:
    """F.local_response_norm is made of ops that keep, besides the input, the padded squares
    (C + size - 1 planes), their windowed average and its power."""
    c, h, w = s
    return 4 * batch * h * w * ((c + a.size - 1) + 2 * c)


class LayerKind(NamedTuple):
    name: str
    summary: str
    build: Callable[[Any, Args, tuple], Any]  # (torch.nn, args, input shape) -> nn.Module
    args: tuple[Arg, ...] = ()
    main: str | None = None  # the argument a bare value sets (`conv 3x3 64`: channels)
    dims: str | None = None  # the argument a bare KxK sets
    flags: tuple[str, ...] = ()  # bare words that set a bool argument to true (`ceil`)
    input: str = "any"  # "spatial" (CxHxW), "flat" (F) or "any"
    shape: Callable[[Args, tuple], tuple] = lambda a, s: tuple(s)
    cost: Callable[[Args, tuple, tuple], Cost] = lambda a, s, out: Cost()
    aliases: tuple[str, ...] = ()
    saves: Saves = KEEPS_INPUT  # what backward needs of it (most layers' gradients need their input)
    figure: Figure = Figure()  # how `specc draw` shows it
    # On the CPU, below this many channels PyTorch's channels_last kernel for the kind is slower than
    # NCHW's, so specc train keeps such a network in NCHW there (lang.memory.train_channels_last); 0: never.
    cpu_channels_last_min: int = 0

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)


REGISTRY: dict[str, LayerKind] = {}


def register(kind: LayerKind) -> LayerKind:
    for name in (kind.name, *kind.aliases):
        REGISTRY[name] = kind
    return kind


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def specc_modules():
    """specc.runtime.modules (imports torch): the constructors torch.nn lacks, for build time only."""
    from ..runtime import modules
    return modules


# --- shape arithmetic shared by conv and pools ------------------------------
def _conv_extent(size: int, k: int, s: int, p: int, d: int) -> int | None:
    """One spatial side of Conv2d's output; None when the kernel does not fit."""
    reach = d * (k - 1) + 1
    return None if size + 2 * p < reach else (size + 2 * p - reach) // s + 1


def _pool_extent(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """ATen's pooling_output_shape: floor or ceil, and a last window must start inside."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _expect_in(a: Args, got: int, what: str, shown: str) -> None:
    if a.get("in") is not None and a["in"] != got:
        raise LayerError(f"expects {a['in']} {what} (in={a['in']}) but gets {shown}")


# --- conv ----------------------------------------------------------------
def conv_shape(a: Args, s: tuple) -> tuple:
    c, h, w = s
    _expect_in(a, c, "input channels", str(c))
    if c % a.groups:
        raise LayerError(f"groups={a.groups} does not divide the {c} input channels", arg="groups")
    if a.channels % a.groups:
        raise LayerError(f"groups={a.groups} does not divide the {a.channels} output channels", arg="groups")
    out = [_conv_extent(*side) for side in zip((h, w), a.kernel, a.stride, a.padding, a.dilation)]
    if None in out:
        reach = [d * (k - 1) + 1 for k, d in zip(a.kernel, a.dilation)]
        padded = [x + 2 * p for x, p in zip((h, w), a.padding)]
        dilated = f" (dilated to {shape_str(reach)})" if list(a.kernel) != reach else ""
        raise LayerError(f"kernel {shape_str(a.kernel)}{dilated} is larger than the padded input "
                         f"{shape_str(padded)} (input {h}x{w}, padding {shape_str(a.padding)})", arg="kernel")
    return (a.channels, out[0], out[1])


def conv_cost(a: Args, s: tuple, out: tuple) -> Cost:
    per_output = (s[0] // a.groups) * a.kernel[0] * a.kernel[1]
    weights = a.channels * per_output
    return Cost(params=weights + (a.channels if a.bias else 0), macs=numel(out) * per_output)


register(LayerKind(
    "conv", "2-d convolution: conv KxK CHANNELS [sN] [pN] [dN] [gN] [bias=false]",
    args=(Arg("channels", "int", minimum=1), Arg("kernel", "pair", minimum=1), Arg("stride", "pair", 1, 1),
          Arg("padding", "pair", 0, 0), Arg("dilation", "pair", 1, 1), Arg("groups", "int", 1, 1),
          Arg("bias", "bool", True), Arg("in", "int", None, 1)),
    main="channels", dims="kernel", input="spatial", shape=conv_shape, cost=conv_cost,
    figure=Figure("conv", lambda a: ", ".join([f"{figure_size(a.kernel)} conv", str(a.channels),
                                               *figure_options(a, stride=1, padding=0, dilation=1, groups=1)])),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.Conv2d(s[0], a.channels, a.kernel, a.stride, a.padding, a.dilation,
                                     a.groups, a.bias)))


# --- pools ---------------------------------------------------------------
def pool_shape(a: Args, s: tuple) -> tuple:
    c, h, w = s
    stride = a.stride or a.kernel  # PyTorch: stride defaults to the window
    dilation = a.get("dilation", (1, 1))
    for k, p in zip(a.kernel, a.padding):
        if p > k // 2:
            raise LayerError(f"padding {p} is more than half the {shape_str(a.kernel)} window; "
                             f"PyTorch allows at most {k // 2}", arg="padding")
    out = [_pool_extent(x, k, st, p, d, a.ceil)
           for x, k, st, p, d in zip((h, w), a.kernel, stride, a.padding, dilation)]
    if min(out) < 1:
        raise LayerError(f"window {shape_str(a.kernel)} does not fit the input {h}x{w} "
                         f"(padding {shape_str(a.padding)}): the output would be {out[0]}x{out[1]}",
                         arg="kernel")
    return (c, out[0], out[1])


POOL_ARGS = (Arg("kernel", "pair", minimum=1), Arg("stride", "pair", None, 1), Arg("padding", "pair", 0, 0),
             Arg("ceil", "bool", False))

register(LayerKind(
    "maxpool", "max pooling: maxpool K [sN] [pN] [dN] [ceil]; stride defaults to the window",
    args=POOL_ARGS + (Arg("dilation", "pair", 1, 1),), main="kernel", dims="kernel", flags=("ceil",),
    input="spatial", shape=pool_shape, figure=Figure("pool", pool_figure("max pool")),
    saves=Saves(input=True, extra=_indices),
    build=lambda nn, a, s: nn.MaxPool2d(a.kernel, a.stride, a.padding, a.dilation, ceil_mode=a.ceil)))

register(LayerKind(
    "avgpool", "average pooling: avgpool K [sN] [pN] [ceil]; stride defaults to the window",
    args=POOL_ARGS + (Arg("count_include_pad", "bool", True),), main="kernel", dims="kernel", flags=("ceil",),
    input="spatial", shape=pool_shape, figure=Figure("pool", pool_figure("avg pool")),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.AvgPool2d(a.kernel, a.stride, a.padding, a.ceil, a.count_include_pad)))


def adaptive_shape(a: Args, s: tuple) -> tuple:
    return (s[0], *a.size)


register(LayerKind(
    "adaptiveavgpool", "adaptive average pooling to a fixed size: adaptiveavgpool HxW",
    args=(Arg("size", "pair", minimum=1),), main="size", dims="size", input="spatial", shape=adaptive_shape,
    figure=Figure("pool", lambda a: f"adaptive avg pool {figure_size(a.size)}"),
    saves=Saves(input=lambda a: tuple(a.size) != (1, 1)),  # to 1x1 it is a mean, which keeps nothing
    build=lambda nn, a, s: nn.AdaptiveAvgPool2d(a.size)))

register(LayerKind(
    "adaptivemaxpool", "adaptive max pooling to a fixed size: adaptivemaxpool HxW",
    args=(Arg("size", "pair", minimum=1),), main="size", dims="size", input="spatial", shape=adaptive_shape,
    figure=Figure("pool", lambda a: f"adaptive max pool {figure_size(a.size)}"),
    saves=Saves(input=True, extra=_indices),
    build=lambda nn, a, s: nn.AdaptiveMaxPool2d(a.size)))

register(LayerKind(
    "gap", "global average pooling to Cx1x1", input="spatial", shape=lambda a, s: (s[0], 1, 1),
    figure=Figure("pool", lambda a: "global avg pool"),
    saves=Saves(),  # a mean: its gradient needs only the input's size
    build=lambda nn, a, s: nn.AdaptiveAvgPool2d(1)))


# --- flatten and fully connected -------------------------------------------
register(LayerKind(
    "flatten", "flatten CxHxW to C*H*W features", shape=lambda a, s: Shape.flat(numel(s), tuple(s)),
    figure=Figure("reshape"),
    saves=VIEW,
    build=lambda nn, a, s: nn.Flatten()))


def fc_shape(a: Args, s: tuple) -> tuple:
    origin = getattr(s, "unflattened", None)
    _expect_in(a, s[0], "input features", f"{s[0]} = {shape_str(origin)}" if origin and len(origin) > 1 else str(s[0]))
    return (a.features,)


register(LayerKind(
    "fc", "fully connected: fc FEATURES [bias=false] [in=N]; input features are inferred",
    args=(Arg("features", "int", minimum=1), Arg("bias", "bool", True), Arg("in", "int", None, 1)),
    main="features", input="flat", shape=fc_shape, aliases=("linear",),
    figure=Figure("fc", lambda a: f"fc {a.features}"),
    cost=lambda a, s, out: Cost(params=s[0] * a.features + (a.features if a.bias else 0), macs=s[0] * a.features),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.Linear(s[0], a.features, a.bias)))


# --- normalisation and dropout --------------------------------------------
def bn_shape(a: Args, s: tuple) -> tuple:
    _expect_in(a, s[0], "features" if len(s) == 1 else "channels", str(s[0]))
    return tuple(s)


def bn_cost(a: Args, s: tuple, out: tuple) -> Cost:
    # running_mean, running_var and the scalar num_batches_tracked
    return Cost(params=2 * s[0] if a.affine else 0, buffers=2 * s[0] + 1 if a.stats else 0)


register(LayerKind(
    "bn", "batch normalisation over channels (BatchNorm2d) or features (BatchNorm1d)",
    args=(Arg("eps", "float", 1e-5, 0.0), Arg("momentum", "float", 0.1, 0.0), Arg("affine", "bool", True),
          Arg("stats", "bool", True), Arg("in", "int", None, 1)),
    shape=bn_shape, cost=bn_cost, aliases=("batchnorm",), figure=Figure("norm", lambda a: "batch norm"),
    saves=Saves(input=True, extra=lambda a, s, out, batch: 8 * s[0]),  # and the batch's mean and 1/std
    # its channels_last CPU kernel vectorises across channels: 3-9x slower below 16 (bench/memory_format.py)
    cpu_channels_last_min=16,
    build=lambda nn, a, s: (nn.BatchNorm2d if len(s) == 3 else nn.BatchNorm1d)(
        s[0], a.eps, a.momentum, a.affine, a.stats)))

register(LayerKind(
    "lrn", "local response normalisation across channels (AlexNet paper): lrn SIZE",
    args=(Arg("size", "int", minimum=1), Arg("alpha", "float", 1e-4), Arg("beta", "float", 0.75),
          Arg("k", "float", 1.0)),
    main="size", input="spatial", figure=Figure("norm", lambda a: f"local response norm {a.size}"),
    saves=Saves(input=True, extra=_lrn_kept),
    build=lambda nn, a, s: nn.LocalResponseNorm(a.size, a.alpha, a.beta, a.k)))

register(LayerKind(
    "dropout", "dropout with probability P in [0, 1): dropout [P], default 0.5",
    args=(Arg("p", "float", 0.5, 0.0, below=1.0),), main="p", figure=Figure("dropout", lambda a: f"dropout {a.p:g}"),
    saves=Saves(extra=lambda a, s, out, batch: 4 * numel(s) * batch if a.p > 0 else 0, view=lambda a: a.p == 0),
    build=lambda nn, a, s: nn.Dropout(a.p)))


# --- activations and identity ----------------------------------------------
def _simple(name: str, summary: str, constructor: str, saves: Saves = KEEPS_INPUT) -> None:
    group = "identity" if name == "identity" else "activation"
    register(LayerKind(name, summary, build=lambda nn, a, s: getattr(nn, constructor)(), saves=saves,
                       figure=Figure(group)))


# ReLU, sigmoid and tanh compute their gradient from their output, the others from their input.
_simple("relu", "rectified linear unit", "ReLU", KEEPS_OUTPUT)
_simple("relu6", "ReLU clipped at 6 (MobileNet)", "ReLU6")
_simple("sigmoid", "logistic sigmoid", "Sigmoid", KEEPS_OUTPUT)
_simple("tanh", "hyperbolic tangent", "Tanh", KEEPS_OUTPUT)
_simple("gelu", "Gaussian error linear unit", "GELU")
_simple("silu", "sigmoid linear unit (swish)", "SiLU")
_simple("identity", "passes its input through (a residual shortcut)", "Identity", VIEW)
_simple("hardswish", "hard swish (MobileNetV3)", "Hardswish")
_simple("hardsigmoid", "hard sigmoid (MobileNetV3's squeeze-and-excitation gate)", "Hardsigmoid")
_simple("mish", "mish: x * tanh(softplus(x))", "Mish")

register(LayerKind(
    "leakyrelu", "leaky ReLU: leakyrelu [SLOPE], default 0.01",
    args=(Arg("slope", "float", 0.01),), main="slope", figure=Figure("activation", lambda a: f"leaky relu {a.slope:g}"),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.LeakyReLU(a.slope)))

register(LayerKind(
    "softmax", "softmax over channels (or features)", figure=Figure("activation"),
    saves=KEEPS_OUTPUT,
    build=lambda nn, a, s: nn.Softmax(dim=1)))

register(LayerKind(
    "elu", "exponential linear unit: elu [ALPHA], default 1.0",
    args=(Arg("alpha", "float", 1.0),), main="alpha", figure=Figure("activation", lambda a: f"elu {a.alpha:g}"),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.ELU(a.alpha)))

register(LayerKind(
    "softplus", "softplus: softplus [beta=1] [threshold=20]",
    args=(Arg("beta", "float", 1.0), Arg("threshold", "float", 20.0)), figure=Figure("activation"),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.Softplus(a.beta, a.threshold)))

def hardtanh_shape(a: Args, s: tuple) -> tuple:
    if a.min >= a.max:  # nn.Hardtanh asserts this at construction
        raise LayerError(f"hardtanh needs min < max, got min={a.min:g} and max={a.max:g}", arg="max")
    return tuple(s)


register(LayerKind(
    "hardtanh", "hard tanh, clipping to [min, max]: hardtanh [min=-1] [max=1]",
    args=(Arg("min", "float", -1.0), Arg("max", "float", 1.0)),
    shape=hardtanh_shape,
    figure=Figure("activation", lambda a: f"hardtanh [{a.min:g}, {a.max:g}]"),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.Hardtanh(a.min, a.max)))


def prelu_cost(a: Args, s: tuple, out: tuple) -> Cost:
    return Cost(params=s[0] if a.per_channel else 1)


register(LayerKind(
    "prelu", "parametric ReLU, one learned slope (or one per channel: prelu per_channel) starting at 0.25",
    args=(Arg("init", "float", 0.25), Arg("per_channel", "bool", False)), main="init", flags=("per_channel",),
    cost=prelu_cost, figure=Figure("activation"),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: nn.PReLU(s[0] if a.per_channel else 1, a.init)))


def shuffle_shape(a: Args, s: tuple) -> tuple:
    if s[0] % a.groups:
        raise LayerError(f"{a.groups} groups do not divide the {s[0]} channels", arg="groups")
    return tuple(s)


register(LayerKind(
    "shuffle", "channel shuffle in G groups (ShuffleNet; nn.ChannelShuffle): shuffle G",
    args=(Arg("groups", "int", minimum=1),), main="groups", input="spatial", shape=shuffle_shape,
    figure=Figure("reshape", lambda a: f"channel shuffle, {a.groups} groups"),
    saves=Saves(),  # a copy in another channel order: its gradient is the reverse permutation
    build=lambda nn, a, s: specc_modules().ChannelShuffle(a.groups)))


def ln_build(nn, a: Args, s: tuple):
    if len(s) == 3:  # normalise each position's channels, as torchvision's LayerNorm2d
        return specc_modules().LayerNorm2d(s[0], a.eps, a.affine)
    return nn.LayerNorm(s[0], a.eps, a.affine)


register(LayerKind(
    "ln", "layer normalisation over the channels at each position of CxHxW (torchvision's LayerNorm2d), "
          "or over flat features (nn.LayerNorm): ln [eps=1e-5]",
    args=(Arg("eps", "float", 1e-5, 0.0), Arg("affine", "bool", True)), aliases=("layernorm",),
    saves=Saves(input=True, extra=lambda a, s, out, batch: 8 * batch * numel(s[1:])),  # mean, 1/std per position
    cost=lambda a, s, out: Cost(params=2 * s[0] if a.affine else 0), build=ln_build,
    figure=Figure("norm", lambda a: "layer norm")))


def scale_shape(s: tuple) -> tuple:
    """The learned multiplier's shape: one value per channel, broadcast over the map."""
    return (s[0], 1, 1) if len(s) == 3 else (s[0],)


register(LayerKind(
    "scale", "a learned per-channel multiplier starting at INIT (ConvNeXt's layer scale): scale INIT",
    args=(Arg("init", "float"),), main="init",
    cost=lambda a, s, out: Cost(params=s[0]), figure=Figure("other", lambda a: "layer scale"),
    saves=KEEPS_INPUT,
    build=lambda nn, a, s: specc_modules().Scale(scale_shape(s), a.init)))

register(LayerKind(
    "droppath", "stochastic depth: drops the whole sample's input with probability P in training "
                "(torchvision's StochasticDepth(P, \"row\")), the identity in eval mode: droppath P",
    args=(Arg("p", "float", minimum=0.0, maximum=1.0),), main="p",
    figure=Figure("dropout", lambda a: f"drop path {a.p:g}"),
    saves=Saves(extra=lambda a, s, out, batch: 4 * batch if a.p > 0 else 0, view=lambda a: a.p == 0),
    build=lambda nn, a, s: specc_modules().DropPath(a.p)))


# --- merges ----------------------------------------------------------------
class MergeKind(NamedTuple):
    """How a merge gives its branches their input and joins their outputs.

    `inputs(shape, k)` -> the k branches' input shapes (or raises LayerError);
    `join(outs)` -> the output shape (or raises LayerError, with `shown` naming
    each branch's shape); `build(modules, branches)` -> the nn.Module, given
    specc.runtime.modules and an OrderedDict of branch modules.
    """

    name: str
    summary: str
    join: Callable[[list[tuple]], tuple]
    build: Callable[[Any, Any], Any]
    inputs: Callable[[tuple, int], list[tuple]] = lambda shape, k: [tuple(shape)] * k
    commutative: bool = False  # branch order does not change the result (weights.py may reorder)
    saves: Saves = Saves()  # what its backward keeps, and whether it computes new gradients (see Saves)
    figure: Figure = Figure("merge")  # how `specc draw` shows the join


MERGES: dict[str, MergeKind] = {}


def register_merge(kind: MergeKind) -> MergeKind:
    MERGES[kind.name] = kind
    return kind


def _same_rank(outs: list[tuple]) -> None:
    if len({len(s) for s in outs}) > 1:
        raise LayerError("branches differ in rank")


def concat_join(outs: list[tuple]) -> tuple:
    _same_rank(outs)
    if len({tuple(s[1:]) for s in outs}) > 1:
        raise LayerError("needs equal height x width")
    return (sum(s[0] for s in outs), *outs[0][1:])


def add_join(outs: list[tuple]) -> tuple:
    _same_rank(outs)
    if len(set(map(tuple, outs))) > 1:
        raise LayerError("needs equal shapes", hint="a projection branch (conv 1x1 with the stride) can match a "
                                                    "shortcut")
    return tuple(outs[0])


def mul_join(outs: list[tuple]) -> tuple:
    """Broadcasting: along each axis the branches agree or are 1 (a Cx1x1 gate scales a CxHxW map)."""
    _same_rank(outs)
    out = []
    for sides in zip(*outs):
        wide = {d for d in sides if d != 1}
        if len(wide) > 1:
            raise LayerError("needs shapes that broadcast (each side equal or 1)",
                             hint="a squeeze-and-excitation gate is gap -> ... -> conv 1x1 C: Cx1x1")
        out.append(wide.pop() if wide else 1)
    return tuple(out)


def split_inputs(shape: tuple, k: int) -> list[tuple]:
    if len(shape) != 3:
        raise LayerError(f"needs a CxHxW input but gets the flat shape {shape_str(shape)}")
    if shape[0] % k:
        raise LayerError(f"cannot divide {shape[0]} channels evenly among {k} branches")
    return [(shape[0] // k, *shape[1:])] * k


register_merge(MergeKind(
    "concat", "concat(A | B | ...): every branch sees the input; outputs join on channels",
    saves=Saves(grad_view=True),
    join=concat_join, build=lambda m, branches: m.Concat(branches), figure=Figure("merge", lambda a: "concat")))

register_merge(MergeKind(
    "add", "add(A | B | ...): every branch sees the input; outputs are summed (equal shapes)",
    saves=Saves(grad_view=True),
    join=add_join, build=lambda m, branches: m.Add(branches), commutative=True,
    figure=Figure("merge", lambda a: "add")))

register_merge(MergeKind(
    "mul", "mul(A | B | ...): every branch sees the input; outputs are multiplied, broadcasting sides of 1 "
           "(squeeze-and-excitation)",
    saves=Saves(input=True),
    join=mul_join, build=lambda m, branches: m.Mul(branches), commutative=True,
    figure=Figure("merge", lambda a: "multiply")))

register_merge(MergeKind(
    "split", "split(A | B | ...): the input's channels are divided evenly, first chunk to the first branch; "
             "outputs join on channels (ShuffleNet)",
    saves=Saves(),  # its chunks are views; its gradient joins theirs
    join=concat_join, inputs=split_inputs, build=lambda m, branches: m.Split(branches),
    figure=Figure("merge", lambda a: "concat (split)")))
