"""Hypothesis strategies for specs: `specs()` (random valid spec texts) and `input_sizes(net)`.

`specs()` is built from the registry rather than from a list of layers written here: every layer
kind's arguments are drawn from their declared types and ranges (specc/lang/registry.py's `Arg`),
and every merge kind is drawn with branches that can join. A new layer kind or merge is therefore
generated without touching this file. Each element is kept only if the spec so far still passes
specc's analysis (a few draws are tried, then the element is left out), so every text drawn loads.

Importing this module imports hypothesis, not torch.
"""
from __future__ import annotations

from hypothesis import strategies as st

from ..lang.errors import SpecError
from ..lang.registry import MERGES, REGISTRY, REQUIRED, Arg, LayerKind
from ..network import Network, loads
from ..tools.sizes import _Sweep, sweep

ATTEMPTS = 4  # draws tried for one element before it is left out
FLOATS = (0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 1.0, 2.0, -0.5)  # candidates for float arguments, within their range
KINDS = sorted(REGISTRY)  # aliases included: `linear`, `batchnorm` are spellings a spec may use


# --- one layer, from the registry's description of its arguments ---------------------------
def _float_value(draw, arg: Arg) -> float:
    low = arg.minimum if arg.minimum is not None else float("-inf")
    allowed = [v for v in FLOATS if v >= low and (arg.below is None or v < arg.below)
               and (arg.maximum is None or v <= arg.maximum)]
    return draw(st.sampled_from(allowed or [arg.minimum]))


def _int_value(draw, arg: Arg, shape: tuple) -> int:
    if arg.name == "in":  # asserts the input's channels or features: right, as a valid spec has it
        return shape[0]
    low = int(arg.minimum) if arg.minimum is not None else 0
    return draw(st.integers(max(low, 1), max(low, 1) + 5))


def _pair_value(draw, arg: Arg) -> tuple[int, int] | int:
    low = int(arg.minimum) if arg.minimum is not None else 0
    side = st.integers(low, low + 2)
    return draw(st.one_of(side, st.tuples(side, side)))


def _value(draw, arg: Arg, shape: tuple):
    if arg.kind == "bool":
        return draw(st.booleans())
    if arg.kind == "float":
        return _float_value(draw, arg)
    if arg.kind == "int":
        return _int_value(draw, arg, shape)
    return _pair_value(draw, arg)


def _text(value, bare: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return f"{value[0]}x{value[1]}"
    if isinstance(value, float) and value < 0 and bare:
        return f"({value})"  # a bare negative value is written in parentheses
    return str(value)


def _layer_text(draw, name: str, kind: LayerKind, shape: tuple, main_text: str | None = None) -> str:
    """`name` with its required arguments and some optional ones, written in the forms the language has:
    a bare main value, a bare KxK, a bare flag, or key=value. `main_text` replaces the main value's text
    (a block's parameter)."""
    words = [name]
    for arg in kind.args:
        if arg.default is not REQUIRED and draw(st.integers(0, 3)) != 0:
            continue  # an optional argument is given one time in four
        value = _value(draw, arg, shape)
        written = main_text if (arg.name == kind.main and main_text is not None) else None
        if arg.kind == "bool" and arg.name in kind.flags and value and draw(st.booleans()):
            words.append(arg.name)
        elif arg.name == kind.dims and isinstance(value, tuple) and draw(st.booleans()):
            words.append(_text(value))
        elif arg.name == kind.main and draw(st.booleans()):
            words.append(written or _text(value, bare=True))
        else:
            words.append(f"{arg.name}={written or _text(value)}")
    return " ".join(words)


def _kinds_for(shape: tuple) -> list[str]:
    rank = "spatial" if len(shape) == 3 else "flat"
    return [name for name in KINDS if REGISTRY[name].input in ("any", rank)]


@st.composite
def layer(draw, shape: tuple, keep_rank: bool = False) -> str:
    """One registry layer for an input of `shape` (`keep_rank`: no flatten, for a merge's branches)."""
    names = [n for n in _kinds_for(shape) if not (keep_rank and n == "flatten")]
    name = draw(st.sampled_from(names))
    return _layer_text(draw, name, REGISTRY[name], shape)


# --- elements that combine layers ----------------------------------------------------------
@st.composite
def _chain(draw, shape: tuple, keep_rank: bool, longest: int = 2) -> str:
    return " -> ".join(draw(st.lists(layer(shape, keep_rank), min_size=1, max_size=longest)))


def _fit(shape: tuple, channels: bool) -> str:
    """Layers that bring any branch output back to `shape`'s sides (and channels), so branches can join."""
    if len(shape) == 1:
        return f"fc {shape[0]}"
    fit = f"adaptiveavgpool {shape[1]}x{shape[2]}"
    return fit + (f" -> conv 1x1 {shape[0]}" if channels else "")


@st.composite
def merge(draw, shape: tuple) -> str:
    """A merge of every registered kind, with 2 or 3 branches that are usually made to join."""
    name = draw(st.sampled_from(sorted(MERGES)))
    count = draw(st.integers(2, 3))
    branch_in = shape
    if name == "split" and len(shape) == 3:
        count = draw(st.sampled_from([k for k in (2, 3) if shape[0] % k == 0] or [1]))
        branch_in = (shape[0] // count, *shape[1:])
    joins_channels = name in ("concat", "split")  # these sum channels; the others need equal shapes
    branches = []
    for _ in range(count):
        if draw(st.integers(0, 3)) == 0:
            branches.append("identity")
            continue
        chain = draw(_chain(branch_in, keep_rank=True))
        fitted = draw(st.booleans()) or len(shape) == 1
        branches.append(chain + (" -> " + _fit(branch_in, not joins_channels) if fitted else ""))
    return f"{name}(" + " | ".join(branches) + ")"


@st.composite
def repetition(draw, shape: tuple) -> str:
    times = draw(st.integers(0, 2))
    if len(shape) == 3 and draw(st.booleans()):  # an indexed repetition: the index changes the width
        return f"(conv 1x1 ({draw(st.integers(1, 4))} + i) -> {draw(layer(shape, True))}) * {times} as i"
    return f"({draw(_chain(shape, keep_rank=True))}) * {times}"


@st.composite
def element(draw, shape: tuple, depth: int = 0) -> str:
    choices = [layer(shape)]
    if depth == 0:
        choices += [merge(shape), repetition(shape)]
    return draw(st.one_of(choices))


# --- whole specs ----------------------------------------------------------------------------
@st.composite
def _block(draw, shape: tuple, number: int) -> tuple[str, str]:
    """(a block definition, a call to it): one registry layer whose main value is the block's parameter,
    followed by a layer-valued parameter with a default, which the call may replace."""
    with_main = [n for n in _kinds_for(shape) if REGISTRY[n].main and REGISTRY[n].arg(REGISTRY[n].main).kind == "int"
                 and REGISTRY[n].main != "in"]
    name = draw(st.sampled_from(with_main))
    kind = REGISTRY[name]
    body = _layer_text(draw, name, kind, shape, main_text="v")
    value = _int_value(draw, kind.arg(kind.main), shape)
    activations = [n for n in KINDS if REGISTRY[n].input == "any" and not any(
        a.default is REQUIRED for a in REGISTRY[n].args) and n != "flatten"]
    act = draw(st.sampled_from(activations))
    definition = f"block b{number}(v, act=identity) {{ {body} -> act }}"
    call = f"b{number}({value}, act={act})" if draw(st.booleans()) else f"b{number}({value})"
    return definition, call


def _output_shape(header: list[str], body: list[str]) -> tuple | None:
    try:
        return loads("\n".join(header) + "\n" + "\n-> ".join(body)).output_shape
    except SpecError:
        return None


@st.composite
def specs(draw, max_elements: int = 6, max_side: int = 12, max_channels: int = 4) -> str:
    """A random spec text that specc accepts: an input, blocks, then a chain of registry layers, merges,
    repetitions and block calls (at most `max_elements`), often ending in flatten -> fc."""
    spatial = draw(st.integers(0, 5)) > 0
    if spatial:
        shape = (draw(st.integers(1, max_channels)), draw(st.integers(3, max_side)), draw(st.integers(3, max_side)))
    else:
        shape = (draw(st.integers(1, 4 * max_side)),)
    header, body = [f"input {'x'.join(map(str, shape))}"], []
    for _ in range(draw(st.integers(1, max_elements))):
        for _attempt in range(ATTEMPTS):
            extra_header = []
            if draw(st.integers(0, 4)) == 0:
                definition, text = draw(_block(shape, len(header)))
                extra_header = [definition]
            else:
                text = draw(element(shape))
            out = _output_shape(header + extra_header, body + [text])
            if out is not None:
                header, body, shape = header + extra_header, body + [text], out
                break
    if not body:
        body = ["identity"]
    if draw(st.booleans()):
        body.append(("flatten -> " if len(shape) == 3 else "") + f"fc {draw(st.integers(1, 10))}")
    return "\n".join(header) + "\n" + "\n-> ".join(body)


# --- input sizes a given spec accepts -------------------------------------------------------
def input_sizes(net: Network, max_side: int = 96, max_channels: int = 8):
    """Input shapes `net` accepts (found as `specc check --sizes` finds them), sides up to `max_side`,
    channels up to `max_channels`: one axis varied with the others as declared, square sizes, and both
    sides varied at once (kept when the spec accepts the pair). Includes `net.input_shape`."""
    if not isinstance(net, Network):
        raise TypeError(f"input_sizes takes a specc.Network (from specc.load), got {type(net).__name__}")
    base = net.input_shape
    found = {a.axis: a.accepted for a in sweep(net.graph, base, max(max_side, max_channels))[0]}
    options = [st.just(tuple(base))]
    if len(base) == 1:
        options.append(st.sampled_from([(v,) for v in found["F"] if v <= max_side] or [base]))
        return st.one_of(options)
    c, h, w = base
    axis = lambda name, top: [v for v in found[name] if v <= top]
    for name, make, top in (("C", lambda v: (v, h, w), max_channels), ("H", lambda v: (c, v, w), max_side),
                            ("W", lambda v: (c, h, v), max_side), ("HxW", lambda v: (c, v, v), max_side)):
        if axis(name, top):
            options.append(st.sampled_from(axis(name, top)).map(make))
    if axis("H", max_side) and axis("W", max_side):
        pairs = st.tuples(st.sampled_from(axis("H", max_side)), st.sampled_from(axis("W", max_side)))
        options.append(pairs.map(lambda hw: (c, *hw)).filter(lambda shape: _accepts(net, shape)))
    return st.one_of(options)


def _accepts(net: Network, shape: tuple) -> bool:
    return not isinstance(_Sweep().seq(net.graph, [shape])[shape], SpecError)
