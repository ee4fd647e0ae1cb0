"""The public API: load a spec, read its static analysis, build its module."""
from __future__ import annotations

import operator
from pathlib import Path
from typing import Any, NamedTuple

from .lang.errors import SpecError, did_you_mean
from .lang.files import Unreadable, read_spec
from .lang.evaluate import MAX_INT
from .lang.expand import SeqNode, expand
from .lang.imports import link
from .lang.infer import Inferer, LayerRow, infer
from .lang.parse import parse


class Network:
    """A checked spec: shapes, parameter counts and costs, computed without torch."""

    def __init__(self, name: str, path: str, source: str, input_shape: tuple[int, ...], graph: SeqNode,
                 output_shape: tuple[int, ...], layers: list[LayerRow], params: dict[str, Any],
                 train_settings: dict | None = None):
        self.name, self.path, self.source = name, path, source
        self.input_shape, self.output_shape = input_shape, output_shape
        self.graph, self.layers, self.params = graph, layers, params
        self.train_settings = train_settings or {}  # the `train { }` lines (nodes.Setting), see recipe.py
        # False when analysed at an input other than the declared one: `: SHAPE` lines were not asserted.
        self.annotations_checked = True
        # The text of every file the spec imports, by path relative to the spec's directory.
        self.sources: dict[str, str] = {}

    @property
    def param_count(self) -> int:
        """Trainable parameters (what `sum(p.numel() for p in module.parameters())` gives)."""
        return sum(row.params for row in self.layers)

    @property
    def buffer_count(self) -> int:
        """Buffer values such as BatchNorm's running statistics."""
        return sum(row.buffers for row in self.layers)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of conv and fc layers per sample (torchvision's convention)."""
        return sum(row.macs for row in self.layers)

    @property
    def activations(self) -> int:
        """Values output by all layers per sample."""
        return sum(row.activations for row in self.layers)

    def build(self, device=None, dtype=None, weights=None):
        """A torch.nn.Module equivalent to the spec; torch is imported only here.

        `weights` (a module such as a torchvision model, a state_dict, or a
        .safetensors/.pt file) is copied in by structure: tensors pair in the
        order a forward pass first uses them (a module's), or their order (a
        state_dict's), with equal shapes (an nn.Linear's O x I fits a conv 1x1's
        O x I x 1 x 1), the branches of add and mul in either order.
        """
        from .runtime.build import build_module
        module = build_module(self, device=device, dtype=dtype)
        if weights is not None:
            from .runtime.weights import transfer
            transfer(module, weights, input_shape=self.input_shape)
        return module

    def _repr_svg_(self) -> str:
        """The diagram (`specc draw`), for Jupyter; a large network's blocks are drawn collapsed."""
        from .tools.notebook import network_svg
        return network_svg(self)

    def _repr_html_(self) -> str:
        """The diagram beside the summary table, for Jupyter."""
        from .tools.notebook import network_html
        return network_html(self)

    def __repr__(self) -> str:
        shape = lambda s: "x".join(map(str, s))
        return (f"<Network {self.name}: {shape(self.input_shape)} -> {shape(self.output_shape)}, "
                f"{self.param_count:,} params>")


def load(path: str | Path, *, input_shape: tuple[int, ...] | None = None, **params: Any) -> Network:
    """Read, check and analyse the spec at `path`; params override its `param` lines."""
    if not isinstance(path, (str, Path)):
        raise SpecError(f"a spec path is a str or Path, got {type(path).__name__}")
    path = Path(path)
    try:
        source = read_spec(path)
    except Unreadable as exc:
        if exc.reason == "no such file":
            raise SpecError(f"no such spec file: {path}", path=str(path)) from None
        raise SpecError(f"cannot read {path}: {exc.reason}", path=str(path), hint=exc.hint) from None
    return loads(source, name=path.stem, path=str(path), input_shape=input_shape, **params)


def loads(text: str, *, name: str = "inline", path: str = "<string>",
          input_shape: tuple[int, ...] | None = None, sources: dict[str, str] | None = None,
          **params: Any) -> Network:
    """Like load(), from a string. `sources` (a Network's .sources, as a checkpoint keeps them) serves
    the spec's imports instead of the file system."""
    _check_api_inputs(text, path)
    if sources is not None and not (isinstance(sources, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in sources.items())):
        raise SpecError("sources maps import paths to spec texts (str to str)")
    try:
        _check_params(params)
        spec = link(parse(text, path), path, sources)
        graph = expand(spec, params)
        shape = _input_shape(spec, input_shape)
        annotations_checked = spec.input is None or tuple(shape) == tuple(spec.input.values)
        output_shape, rows = infer(graph, shape, check_annotations=annotations_checked)
    except SpecError as err:
        raise err.located(path, text) from None
    except RecursionError:
        raise SpecError("the spec nests too deeply", path=path, source=text) from None
    if spec.network:
        name = spec.network[0]
    resolved = {p.name: None for p in spec.params}
    net = Network(name, path, text, shape, graph, output_shape, rows, resolved, spec.train)
    net.annotations_checked = annotations_checked
    net.sources = dict(spec.sources)
    net.overrides = dict(params)  # the params set by the caller, for specc export's re-expansion
    return net


def _check_api_inputs(text, path) -> None:
    """Mistakes in a call from Python, reported like a spec's own rather than as a TypeError deep inside."""
    if not isinstance(text, str):
        raise SpecError(f"a spec's text is a str, got {type(text).__name__}")
    if not isinstance(path, str):
        raise SpecError(f"path is a str, got {type(path).__name__}")


def _check_params(params: dict) -> None:
    for key, value in params.items():
        if not isinstance(value, (bool, int, float)):
            raise SpecError(f"param '{key}' must be a number, true or false, got {value!r}",
                            hint="params set from Python are ints, floats or bools, as in load(path, classes=100)")
        if not isinstance(value, bool) and not (abs(value) <= MAX_INT):  # also refuses nan
            raise SpecError(f"param '{key}' is {value!r}, beyond specc's limit of 2**63")


def _input_shape(spec, override) -> tuple[int, ...]:
    if override is not None:
        shape, span = _override_shape(override), None
    elif spec.input is not None:
        shape, span = spec.input.values, spec.input.span
    else:
        raise SpecError("the spec has no 'input' line",
                        hint="add one such as 'input 1x28x28' (CxHxW) or 'input 784', or pass an input shape")
    if len(shape) not in (1, 3):
        raise SpecError(f"input must be CxHxW or a number of features, got {'x'.join(map(str, shape))}", span)
    if min(shape) < 1:
        raise SpecError(f"input sizes must be positive, got {'x'.join(map(str, shape))}", span)
    return shape


def _no_bools():
    raise TypeError("a bool is not a size")


def _override_shape(override) -> tuple[int, ...]:
    hint = "pass a tuple of ints: (1, 28, 28) for CxHxW or (784,) for features"
    if isinstance(override, (str, bytes)) or not hasattr(override, "__iter__"):
        raise SpecError(f"input_shape must be a tuple of ints, got {override!r}", hint=hint)
    try:  # operator.index: ints, numpy ints and torch.Size's sides, but not floats, strings or None
        shape = tuple(operator.index(d) for d in override if not isinstance(d, bool) or _no_bools())
    except TypeError:
        raise SpecError(f"input_shape must be a tuple of ints, got {tuple(override)!r}", hint=hint) from None
    if any(d > MAX_INT for d in shape):
        raise SpecError(f"input_shape {shape!r} is too large (specc's limit is 2**63 per side)")
    return shape


class Partial(NamedTuple):
    """A spec whose shapes do not check, analysed as far as inference got (what `specc draw` shows).

    `graph` is the expanded tree: nodes before `failed` have their shapes, `failed` (a LayerNode,
    MergeNode or CheckNode) is where inference stopped, and the nodes after it have empty shapes.
    """

    name: str
    input_shape: tuple[int, ...]
    graph: SeqNode
    failed: Any
    error: SpecError


class _StopTracker(Inferer):
    """An Inferer that remembers the innermost node it was working on when a SpecError arose."""

    failed = None

    def _tracked(self, step, node, *args):
        try:
            return step(node, *args)
        except SpecError:
            if self.failed is None:  # the innermost node catches first
                self.failed = node
            raise

    def layer(self, node, shape, path):
        return self._tracked(super().layer, node, shape, path)

    def merge(self, node, shape, path):
        return self._tracked(super().merge, node, shape, path)

    def check(self, node, shape):
        return self._tracked(super().check, node, shape)


def _partial(text: str, path: str = "<string>", input_shape: tuple[int, ...] | None = None,
             **params: Any) -> Partial | None:
    """The partial analysis of a spec that parses and expands but fails inference; None for a spec
    that checks or fails earlier (then there is nothing to draw). specc.loads is the checked path."""
    try:
        _check_api_inputs(text, path)
        _check_params(params)
        spec = link(parse(text, path), path)
        graph = expand(spec, params)
        shape = _input_shape(spec, input_shape)
        tracker = _StopTracker(spec.input is None or tuple(shape) == tuple(spec.input.values))
    except (SpecError, RecursionError):
        return None
    try:
        tracker.seq(graph, tuple(shape), None)
    except SpecError as err:
        name = spec.network[0] if spec.network else Path(path).stem
        return Partial(name, tuple(shape), graph, tracker.failed, err.located(path, text))
    except RecursionError:
        return None
    return None
