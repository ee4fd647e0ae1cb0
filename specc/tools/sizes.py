"""Which input sizes a spec accepts: `specc check --sizes`. Torch-free.

The question behind AlexNet's `fc 4096 in=6400` (which resolutions keep it valid?) is answered by
shape inference itself, not by a second model of the layers' arithmetic that could drift from it:
every candidate size runs through the same registry rules `specc check` uses. What makes that fast
is that candidates collapse: a stride-4 conv maps four input sides to one output side, a `gap`
maps all of them to 1x1. So the sweep pushes the *set* of distinct shapes through the expanded
network at once, each layer computing its rule once per distinct input shape (and once per
(kind, arguments, shape) across repeated blocks), while remembering which candidates share each
shape. The work is the sum over layers of the distinct shapes reaching them, not sizes x layers.

Each axis is searched on its own with the other sides as declared (C, H, W), plus square inputs
(H = W, the usual meaning of "resolution", which is the only way to keep `in=6400` valid when
both sides change). `: SHAPE` annotations describe the declared input only and are not asserted
away from it, as with `--input`; `in=` fixes a weight's shape and is checked at every size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from ..lang.errors import SpecError, shape_str
from ..lang.expand import CheckNode, LayerNode, MergeNode, SeqNode, expand
from ..lang.files import Unreadable, read_spec
from ..lang.imports import link
from ..lang.infer import Inferer, _check_bounded
from ..lang.parse import parse
from ..lang.registry import LayerError
from ..network import Network, _check_params, _input_shape, loads

DEFAULT_MAX_SIDE = 1024
# The sweep costs about (layers x max side) shape rules in the worst case: 16,384 keeps the largest
# shipped spec (EfficientNetV2-L, 1,226 layers) within seconds.
MAX_SIDE_LIMIT = 16_384

Outcome = Union[tuple, SpecError]  # a layer's output shape for one input shape, or why it refuses it


class _Sweep:
    """Shape inference over many input shapes at once (see the module's docstring)."""

    def __init__(self):
        # Inferer's own rule for one layer at one shape (rank check, registry rule, size bound), so
        # that the sweep accepts exactly what `specc check --input` accepts.
        self.inferer = Inferer(check_annotations=False)
        self.known: dict[tuple, tuple] = {}  # ((kind, arguments), input shape) -> output shape
        self.signatures: dict[int, tuple] = {}  # id(layer node) -> (kind, arguments)
        self.rules = 0  # shape rules evaluated, the sweep's measure of work

    def seq(self, seq: SeqNode, shapes) -> dict[tuple, Outcome]:
        """Each input shape -> the chain's output shape or the first refusal."""
        groups = {shape: [shape] for shape in shapes}  # current shape -> the inputs that lead to it
        outcome: dict[tuple, Outcome] = {}
        for item in seq.items:
            if isinstance(item, CheckNode) or not groups:
                continue
            step = self.element(item, list(groups))
            merged: dict[tuple, list] = {}
            for current, inputs in groups.items():
                out = step[current]
                if isinstance(out, SpecError):
                    outcome.update(dict.fromkeys(inputs, out))
                    continue
                bucket = merged.setdefault(out, inputs)
                if bucket is not inputs:  # two shapes collapse into one: join their inputs, small into large
                    small, large = sorted((bucket, inputs), key=len)
                    large.extend(small)
                    merged[out] = large
            groups = merged
        for current, inputs in groups.items():
            outcome.update(dict.fromkeys(inputs, current))
        return outcome

    def element(self, item, shapes: list) -> dict[tuple, Outcome]:
        if isinstance(item, LayerNode):
            return {shape: self.layer(item, shape) for shape in shapes}
        if isinstance(item, SeqNode):
            return self.seq(item, shapes)
        return self.merge(item, shapes)

    def layer(self, node: LayerNode, shape: tuple) -> Outcome:
        signature = self.signatures.get(id(node))
        if signature is None:
            signature = self.signatures[id(node)] = (node.kind.name, tuple(node.args.items()))
        key = (signature, tuple(shape))
        known = self.known.get(key)
        if known is not None:
            return known
        self.rules += 1
        kind = node.kind
        try:  # Inferer._shape_and_cost without the cost, which the sweep does not need
            self.inferer._require_rank(kind.name, kind.input, shape)
            out = kind.shape(node.args, shape)  # a flatten's Shape keeps its input, for fc's messages
            _check_bounded(kind.name, out)
        except LayerError:
            return self._refusal(node, shape)
        self.known[key] = out
        return out

    def _refusal(self, node: LayerNode, shape: tuple) -> SpecError:
        """The SpecError `specc check` reports for this layer at this shape (not remembered by key:
        each layer reports at its own span)."""
        try:
            self.inferer._shape_and_cost(node, shape)
        except SpecError as err:
            return err
        raise AssertionError(f"{node.text} refused {shape} once and accepted it again")  # rules are pure

    def merge(self, node: MergeNode, shapes: list) -> dict[tuple, Outcome]:
        kind, outcome, branch_inputs = node.kind, {}, {}
        for shape in shapes:
            self.rules += 1
            try:
                branch_inputs[shape] = kind.inputs(shape, len(node.branches))
            except LayerError as exc:
                outcome[shape] = SpecError(f"{kind.name} {exc.message}", node.span)
        # Each branch runs once over the distinct inputs it receives.
        branch_outs = [self.seq(branch, {inputs[i] for inputs in branch_inputs.values()})
                       for i, branch in enumerate(node.branches)]
        for shape, inputs in branch_inputs.items():
            outs = [done[x] for done, x in zip(branch_outs, inputs)]
            refused = next((o for o in outs if isinstance(o, SpecError)), None)  # the first, as infer reports
            outcome[shape] = refused if refused is not None else self.join(node, outs)
        return outcome

    def join(self, node: MergeNode, outs: list) -> Outcome:
        try:
            out = tuple(node.kind.join([tuple(o) for o in outs]))
            _check_bounded(node.kind.name, out)
        except LayerError as exc:  # worded as Inferer.merge words it
            shown = ", ".join(f"branch {i} gives {shape_str(o)}" for i, o in enumerate(outs, 1))
            return SpecError(f"{node.kind.name} {exc.message} but {shown}", node.span)
        return out


# --- what one axis accepts ------------------------------------------------------------------
@dataclass
class Refusal:
    """Sizes refused by one layer (or merge), and its message at the first of them."""

    values: list[int]
    error: SpecError

    @property
    def where(self) -> str:
        span = self.error.span
        if span is None:
            return "the input"
        return f"{span.origin[0] + ':' if span.origin else 'line '}{span.line}:{span.column}"


@dataclass
class AxisSizes:
    axis: str  # "C", "H", "W", "HxW" (square inputs) or "F" (a flat input's features)
    fixed: str  # what the other sides are held at: "C=1, W=224"
    accepted: list[int]
    refused: list[Refusal] = field(default_factory=list)


@dataclass
class SizeReport:
    path: str
    input_shape: tuple[int, ...]  # the sides the axes are varied around (the declared input, or --input)
    max_side: int
    axes: list[AxisSizes]
    declared_error: SpecError | None  # why the spec fails at input_shape itself, if it does
    net: Network | None  # the spec analysed at input_shape, when that works
    rules: int  # shape rules evaluated
    seconds: float


def _candidates(axis: str, base: tuple[int, ...], values: range) -> dict[tuple, int]:
    if axis == "F":
        return {(v,): v for v in values}
    c, h, w = base
    make = {"C": lambda v: (v, h, w), "H": lambda v: (c, v, w), "W": lambda v: (c, h, v),
            "HxW": lambda v: (c, v, v)}[axis]
    return {make(v): v for v in values}


def _fixed(axis: str, base: tuple[int, ...]) -> str:
    if axis == "F":
        return ""
    sides = dict(zip("CHW", base))
    held = [f"{name}={value}" for name, value in sides.items() if name not in axis]
    return ", ".join(held) + (" (H = W)" if axis == "HxW" else "")


def axes_of(shape: tuple[int, ...]) -> tuple[str, ...]:
    return ("F",) if len(shape) == 1 else ("C", "H", "W", "HxW")


def sweep(graph: SeqNode, base: tuple[int, ...], max_side: int = DEFAULT_MAX_SIDE,
          axes: tuple[str, ...] | None = None) -> tuple[list[AxisSizes], int]:
    """For each axis, the sizes in 1..max_side for which shape inference passes; and the work done."""
    _check_max_side(max_side)
    engine, found = _Sweep(), []
    for axis in axes or axes_of(base):
        candidates = _candidates(axis, tuple(base), range(1, max_side + 1))
        outcome = engine.seq(graph, candidates)
        found.append(_axis_sizes(axis, base, candidates, outcome))
    return found, engine.rules


def _axis_sizes(axis: str, base, candidates: dict[tuple, int], outcome: dict) -> AxisSizes:
    accepted, refused = [], {}
    for shape, value in candidates.items():
        out = outcome[shape]
        if isinstance(out, SpecError):
            refused.setdefault(out.span, Refusal([], out)).values.append(value)  # grouped by the refusing layer
        else:
            accepted.append(value)
    return AxisSizes(axis, _fixed(axis, base), accepted, sorted(refused.values(), key=lambda r: r.values[0]))


def _check_max_side(max_side: int) -> None:
    if not isinstance(max_side, int) or isinstance(max_side, bool) or not 1 <= max_side <= MAX_SIDE_LIMIT:
        raise SpecError(f"the largest side to search must be an integer in 1..{MAX_SIDE_LIMIT}, got {max_side!r}")


# --- from a file --------------------------------------------------------------------------
def size_report(path: str | Path, input_shape=None, params: dict | None = None,
                max_side: int = DEFAULT_MAX_SIDE) -> SizeReport:
    """The sizes the spec at `path` accepts; raises SpecError when it does not parse or expand."""
    _check_max_side(max_side)
    started = time.perf_counter()
    path, params = str(path), params or {}
    source = _read(path)
    name = Path(path).stem
    try:
        net = loads(source, name=name, path=path, input_shape=input_shape, **params)
        graph, base, declared_error = net.graph, net.input_shape, None
    except SpecError as err:  # at its own input; the sweep still says which sizes would work
        net, declared_error = None, err
        graph, base = _expanded(source, path, input_shape, params)
    axes, rules = sweep(graph, base, max_side)
    return SizeReport(path, tuple(base), max_side, axes, declared_error, net, rules,
                      time.perf_counter() - started)


def _read(path: str) -> str:
    try:
        return read_spec(path)
    except Unreadable as exc:
        if exc.reason == "no such file":
            raise SpecError(f"no such spec file: {path}", path=path) from None
        raise SpecError(f"cannot read {path}: {exc.reason}", path=path, hint=exc.hint) from None


def _expanded(source: str, path: str, input_shape, params: dict) -> tuple[SeqNode, tuple[int, ...]]:
    """The steps of specc.loads before inference; raises the SpecError of the first that fails."""
    try:
        _check_params(params)
        spec = link(parse(source, path), path)
        graph = expand(spec, params)
        return graph, tuple(_input_shape(spec, input_shape))
    except SpecError as err:
        raise err.located(path, source) from None
    except RecursionError:
        raise SpecError("the spec nests too deeply", path=path, source=source) from None


# --- showing it ---------------------------------------------------------------------------
def ranges(values: list[int]) -> list[tuple[int, int, int]]:
    """Sorted integers as (first, last, step) runs: [1, 2, 3, 8, 16, 24] -> (1, 3, 1), (8, 24, 8).

    A run with a step over 1 needs three members; fewer are shown one by one."""
    runs, i = [], 0
    while i < len(values):
        j = i
        step = values[i + 1] - values[i] if i + 1 < len(values) else 1
        while j + 1 < len(values) and values[j + 1] - values[j] == step:
            j += 1
        if step != 1 and j - i < 2:
            j, step = i, 1
        runs.append((values[i], values[j], step))
        i = j + 1
    return runs


def ranges_text(values: list[int]) -> str:
    if not values:
        return "none"
    shown = []
    for first, last, step in ranges(values):
        shown.append(str(first) if first == last else f"{first}..{last}" + (f" step {step}" if step > 1 else ""))
    return ", ".join(shown)


def report_text(report: SizeReport) -> str:
    shape = shape_str(report.input_shape)
    if report.declared_error is None:
        head = f"{report.path}: ok at {shape}"
    else:
        head = f"{report.path}: refused at {shape}: {_one_line(report.declared_error)}"
    lines = [head, f"  accepted sizes, each axis searched over 1..{report.max_side}, the other sides as given "
                   f"(`: SHAPE` annotations hold at the declared input only; in= holds at every size):"]
    width = max(len(a.axis) for a in report.axes)
    for axis in report.axes:
        held = f"   [{axis.fixed}]" if axis.fixed else ""
        lines.append(f"  {axis.axis:<{width}}  {ranges_text(axis.accepted)}{held}")
        for refusal in axis.refused:
            lines.append(f"  {'':<{width}}    {ranges_text(refusal.values)} refused by {refusal.where}: "
                         f"{refusal.error.message} (at {axis.axis} = {refusal.values[0]})")
    lines.append(f"  ({report.rules:,} shape rules, {report.seconds * 1000:.0f} ms)")
    return "\n".join(lines)


def _one_line(err: SpecError) -> str:
    where = f"line {err.span.line}: " if err.span else ""
    return where + err.message


def report_dict(report: SizeReport) -> dict:
    run = lambda values: [{"first": a, "last": b, "step": s} for a, b, s in ranges(values)]
    return {
        "path": report.path, "input_shape": list(report.input_shape), "ok": report.declared_error is None,
        "error": None if report.declared_error is None else str(report.declared_error),
        "searched": {"first": 1, "last": report.max_side, "annotations_asserted": False},
        "axes": {a.axis: {"fixed": a.fixed, "accepted": run(a.accepted),
                          "refused": [{"sizes": run(r.values), "line": r.error.line, "column": r.error.column,
                                       "file": r.error.span.origin[0] if r.error.span and r.error.span.origin
                                       else report.path, "message": r.error.message} for r in a.refused]}
                 for a in report.axes},
        "shape_rules": report.rules, "seconds": round(report.seconds, 4),
    }
