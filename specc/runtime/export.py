"""`specc export --to pytorch|onnx`: a spec (or a trained run) as plain PyTorch code or an ONNX file.

The PyTorch export writes a standalone Python file: an nn.Sequential subclass
named after the network whose children carry the built module's names (so
its state_dict keys are net.build()'s), one function per block, the merge
classes and the few specc modules torch lacks copied in from
specc/runtime/modules.py. Each layer's constructor is read back from the module
specc builds (its __init__ signature and the attributes of the same names) and
checked against it (their reprs must agree).

Numbers become names only where specc has evidence they are one: a block
function takes a parameter where its calls' argument values appear verbatim in
every call's layers, and the network's class takes a spec `param` as a keyword
argument only where analysing the spec at two other values of that param
changes exactly those numbers, to exactly the new value (docs/ir.md, "Limits").
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import io
import keyword
import math
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..lang.errors import SpecError, shape_str
from ..lang.expand import CheckNode, Expander, LayerNode, MergeNode, SeqNode
from ..lang.infer import infer
from ..tools.ir import linked_spec, param_values
from . import modules

ONNX_OPSET = 17  # the TorchScript exporter's default; onnxruntime 1.18+ runs it
ONNX_DYNAMO_OPSET = 18  # the dynamo exporter's lowest
ONNX_EXTRA = 'pip install "specc[onnx]"'
MAX_EXPORT_PARAMS = 10  # probing each param analyses the spec twice more


class ExportError(Exception):
    """A network specc cannot export (a message for the user, not a traceback)."""


# --- the layer tree again, at the values of params being probed ---------------------------
def _expansion(net, spec, overrides: dict) -> SeqNode:
    """net's layer tree again (analysed at its input; each call's SeqNode has its block and arguments);
    SpecError if invalid."""
    graph = Expander(spec, overrides).expand()
    infer(graph, net.input_shape, check_annotations=False)
    return graph


# --- literals and names ---------------------------------------------------------------
NUMBER = re.compile(r"((?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])|\bTrue\b|\bFalse\b)")
RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"nn", "torch", "OrderedDict", "seq", "annotations",
                                                       "SEED", "build", "WEIGHTS", "pretrained", "Path", "self"}


def _literal(value: Any, collapse: bool = True) -> str:
    """Python source for a constructor argument; an equal pair as one number when `collapse`."""
    if isinstance(value, torch.Size):
        value = tuple(value)
    if isinstance(value, tuple):
        if collapse and len(value) == 2 and value[0] == value[1] and type(value[0]) is int:
            return _literal(value[0])
        inner = ", ".join(_literal(v, collapse) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, (bool, int, float, str)) or value is None:
        return repr(value)
    raise ExportError(f"cannot write {value!r} ({type(value).__name__}) as a constructor argument")


def _number_literal(value: Any) -> str | None:
    """How a value appears in generated code, for matching numbers to names; None if it is not a number."""
    if isinstance(value, (bool, int, float)) and (not isinstance(value, float) or math.isfinite(value)):
        return repr(value)
    return None


def _py_name(name: str, taken: set[str]) -> str:
    """`name` as a Python identifier that shadows nothing the generated file uses."""
    out = re.sub(r"\W", "_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    while out in RESERVED or out in taken:
        out += "_"
    return out


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`, ... for the second, third, ... function made from one block."""
    if name not in taken:
        return name
    return next(f"{name}_{i}" for i in range(2, 10**9) if f"{name}_{i}" not in taken)


def class_name(network: str) -> str:
    """CamelCase of the network's name: efficientnet_b0 -> EfficientnetB0."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", network) if w]
    name = "".join(w[0].upper() + w[1:] for w in words) or "Net"
    return "Net" + name if name[0].isdigit() else name


def _comment(text: str) -> str:
    """Spec-controlled text made safe for a one-line comment or docstring."""
    return "".join(ch if ch.isprintable() and ch not in '"\\' else "?" for ch in text)


# --- one layer's constructor ----------------------------------------------------------
# Constructor arguments a module does not keep as an attribute of the same name: where to find them.
_UNKEPT = {
    ("PReLU", "init"): lambda module, node: node.args["init"],
    ("Scale", "shape"): lambda module, node: tuple(module.weight.shape),
    ("Scale", "init"): lambda module, node: node.args["init"],
}
_SKIPPED = {"device", "dtype"}


class _Classes:
    """The classes the generated file refers to, and the source of those it must define itself."""

    def __init__(self):
        self.defined: list[type] = []
        self.needed: list[type] = []  # the classes referred to since the last reset, for _CHECKED

    def ref(self, cls: type) -> str:
        self.needed.append(cls)
        if getattr(nn, cls.__name__, None) is cls:
            return f"nn.{cls.__name__}"
        if cls.__module__ != modules.__name__:
            raise ExportError(f"cannot export {cls.__module__}.{cls.__name__}: it is neither in torch.nn nor "
                              f"in specc.runtime.modules")
        for base in reversed(cls.__mro__):
            if base.__module__ == modules.__name__ and base not in self.defined and base is not modules.Chain:
                self.defined.append(base)
        return cls.__name__

    def sources(self) -> list[str]:
        return [_MERGE_BASE if cls is modules._Merge else inspect.getsource(cls) for cls in self.defined]


_MERGE_BASE = '''class _Merge(nn.ModuleDict):
    """A merge's branches, keyed branch1, branch2, ... in order (each an nn.Sequential)."""

    def __init__(self, **branches: nn.Module):
        super().__init__(branches)
'''


def _constructor(module: nn.Module, node: LayerNode | None, classes: _Classes, collapse: bool) -> str:
    cls = type(module)
    args = []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in _SKIPPED:
            continue
        value = _init_value(module, node, p)
        if p.default is p.empty:
            args.append(_literal(value, collapse))
        elif not _is_default(value, p.default):
            args.append(f"{p.name}={_literal(value, collapse)}")
    return f"{classes.ref(cls)}({', '.join(args)})"


def _init_value(module: nn.Module, node: LayerNode | None, p: inspect.Parameter) -> Any:
    unkept = _UNKEPT.get((type(module).__name__, p.name))
    if unkept is not None:
        return unkept(module, node)
    if not hasattr(module, p.name) and p.default is None:
        return None  # an alias the module folds into another argument (Hardtanh's min_value): left out
    if not hasattr(module, p.name):
        raise ExportError(f"cannot export {type(module).__name__}: its argument '{p.name}' is not kept on the "
                          f"module (add it to specc.runtime.export._UNKEPT)")
    value = getattr(module, p.name)
    if isinstance(p.default, bool) and (value is None or isinstance(value, torch.Tensor)):
        return value is not None  # bias=True/False, kept as a Parameter or None
    return value


def _is_default(value: Any, default: Any) -> bool:
    if isinstance(value, tuple) and not isinstance(default, tuple):
        return all(_is_default(v, default) for v in value)
    return type(value) is type(default) and value == default or (value is None and default is None)


_CHECKED: dict[tuple, tuple[str, tuple[type, ...]]] = {}


class _Layers:
    """Constructor code per (kind, arguments, input shape), checked against the module specc builds."""

    def __init__(self, classes: _Classes):
        self.classes = classes
        self.known: dict[tuple, str] = {}
        self.merges: dict[str, str] = {}

    def merge_class(self, kind) -> str:
        if kind.name not in self.merges:
            self.merges[kind.name] = self.classes.ref(type(kind.build(modules, OrderedDict())))
        return self.merges[kind.name]

    def code(self, node: LayerNode) -> str:
        key = (node.kind.name, tuple(node.args.items()), tuple(node.in_shape))
        if key not in self.known:
            if key not in _CHECKED:  # checking builds modules: once per process for each distinct layer
                if len(_CHECKED) > 50_000:
                    _CHECKED.clear()
                self.classes.needed = []
                _CHECKED[key] = (self._checked(node), tuple(self.classes.needed))
            code, needed = _CHECKED[key]
            for cls in needed:
                self.classes.ref(cls)
            self.known[key] = code
        return self.known[key]

    def _checked(self, node: LayerNode) -> str:
        with torch.device("meta"):
            built = node.kind.build(nn, node.args, node.in_shape)
            code = _constructor(built, node, self.classes, collapse=True)
            made = eval(code, self.namespace())  # our own code: literals and class names only
            if _same_repr(made, built) and _same_state(made, built):
                return code
        raise ExportError(f"cannot export {node.text!r} ({node.kind.name}): the generated {code} does not "
                          f"rebuild specc's {built!r}")

    def namespace(self) -> dict:
        names = {"nn": nn, "torch": torch}
        names.update({cls.__name__: cls for cls in self.classes.defined})
        return names


def _same_repr(a: nn.Module, b: nn.Module) -> bool:
    """Equal reprs, reading an equal pair (3, 3) as the 3 it was written as (torch keeps either)."""
    square = re.compile(r"\((-?[\d.e+-]+), \1\)")
    return square.sub(r"\1", repr(a)) == square.sub(r"\1", repr(b))


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype for k in sa)


# --- rendering chains into lines ------------------------------------------------------
@dataclass
class _Line:
    indent: int
    code: str
    comment: str = ""


@dataclass
class _Call:
    """A rendered block call: its body (for grouping into functions) and, once grouped, its call text."""

    seq: SeqNode
    body: list[_Line]
    values: dict[str, Any]
    text: str = ""
    function: "_Function | None" = None


class _Renderer:
    def __init__(self, layers: _Layers, calls: dict[int, _Call]):
        self.layers, self.calls = layers, calls

    def chain(self, seq: SeqNode, shape: tuple) -> tuple[list[tuple[str, list[_Line]]], tuple]:
        """(name, expression lines) per element, and the chain's output shape."""
        entries = []
        for item in seq.items:
            if isinstance(item, CheckNode):
                continue
            lines, shape = self.element(item, shape)
            lines[-1].comment = shape_str(shape)
            entries.append((item.name, lines))
        return entries, shape

    def element(self, item, shape: tuple) -> tuple[list[_Line], tuple]:
        if isinstance(item, LayerNode):
            return [_Line(0, self.layers.code(item))], tuple(item.out_shape)
        if isinstance(item, MergeNode):
            return self.merge(item, shape), tuple(item.out_shape)
        return [_Line(0, self.calls[id(item)].text)], _seq_out(item, shape)

    def merge(self, node: MergeNode, shape: tuple) -> list[_Line]:
        cls = self.layers.merge_class(node.kind)
        lines = [_Line(0, f"{cls}(")]
        for branch, branch_in in zip(node.branches, node.kind.inputs(shape, len(node.branches))):
            entries, _ = self.chain(branch, branch_in)
            lines += _indented(_keyword(branch.name, self.seq_lines(entries)), 1)
        lines.append(_Line(0, ")"))
        return lines

    def seq_lines(self, entries) -> list[_Line]:
        if not entries:
            return [_Line(0, "seq()")]
        lines = [_Line(0, "seq(")]
        for name, expr in entries:
            lines += _indented(_keyword(name, expr), 1)
        return lines + [_Line(0, ")")]


def _keyword(name: str, expr: list[_Line]) -> list[_Line]:
    """`name=EXPR,` over the expression's lines."""
    first, *rest = expr
    lines = [_Line(first.indent, f"{name}={first.code}", first.comment), *(_Line(l.indent, l.code, l.comment)
                                                                            for l in rest)]
    lines[-1].code += ","
    return lines


def _indented(lines: list[_Line], by: int) -> list[_Line]:
    return [_Line(l.indent + by, l.code, l.comment) for l in lines]


def _seq_out(seq: SeqNode, shape: tuple) -> tuple:
    """A chain's output shape given its input (an empty chain passes its input on)."""
    for item in seq.items:
        if isinstance(item, (LayerNode, MergeNode)):
            shape = tuple(item.out_shape)
        elif isinstance(item, SeqNode):
            shape = _seq_out(item, shape)
    return shape


def _format(lines: list[_Line], base: int) -> str:
    out = []
    for line in lines:
        text = "    " * (base + line.indent) + line.code
        out.append(f"{text}  # {line.comment}" if line.comment else text)
    return "\n".join(out)


# --- grouping block calls into functions ----------------------------------------------
def _tokens(lines: list[_Line]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the code with numbers cut out, the numbers) of some lines; comments are not code."""
    parts = NUMBER.split("\n".join(">" * l.indent + l.code for l in lines))
    return tuple(parts[0::2]), tuple(parts[1::2])


def _substitute(lines: list[_Line], names: dict[int, str]) -> list[_Line]:
    """The lines with the numbers at the positions in `names` replaced by those names."""
    counter = iter(range(10**9))
    out = []
    for line in lines:
        code = NUMBER.sub(lambda m: names.get(next(counter), m.group(0)), line.code)
        out.append(_Line(line.indent, code, line.comment))
    return out


def _split(calls: list[_Call], order: list[str], signatures: dict[str, list[str]]
           ) -> list[tuple[list[_Call], dict[int, str]]]:
    """The calls one function serves (all of them: they share a skeleton), with a name for each number
    that differs between them.

    A differing number becomes the first of the block's arguments (in `order`) whose value it equals
    in every call; one that no argument explains (a stochastic-depth probability computed from an
    index) becomes an extra parameter named after the constructor argument it sets, its value
    passed by each call.
    """
    skeleton, _ = _tokens(calls[0].body)
    numbers = [_tokens(c.body)[1] for c in calls]
    varying = [k for k in range(len(numbers[0])) if len({n[k] for n in numbers}) > 1]
    names: dict[int, str] = {}
    for k in varying:
        name = next((a for a in order if all(_number_literal(c.values.get(a)) == n[k]
                                             for c, n in zip(calls, numbers))), None)
        if name is None:
            line = "0".join(skeleton[:k + 1]).rsplit("\n", 1)[-1]  # the code before it, numbers as 0
            name = _unique(_argument_name(line, signatures), set(calls[0].values) | set(names.values()))
            for c, n in zip(calls, numbers):
                c.values[name] = ast.literal_eval(n[k])
        names[k] = name
    return [(calls, names)]


def _argument_name(before: str, signatures: dict[str, list[str]]) -> str:
    """The name of the argument a number sets, from the code before it: `stride=2` -> stride,
    `nn.Dropout(0.2)` -> p (the signature's first parameter), `se(96, 4)` -> se's second parameter."""
    keyword = re.search(r"(\w+)=$", before)
    if keyword:
        return keyword.group(1)
    call = re.search(r"([\w.]+)\(([^()]*)$", before)
    if call:
        cls = getattr(nn, call.group(1)[3:], None) if call.group(1).startswith("nn.") else \
            getattr(modules, call.group(1), None)
        params = signatures.get(call.group(1))
        if params is None and isinstance(cls, type):
            params = list(inspect.signature(cls.__init__).parameters)[1:]
        if params is not None:
            index = call.group(2).count(",")
            if index < len(params):
                return params[index]
    return "value"


@dataclass
class _Function:
    name: str
    block: Any  # nodes.Block
    params: list[str]  # the block's parameters it takes, as Python names
    body: list[_Line]
    used: bool = False


class _Generator:
    def __init__(self, net):
        self.net = net
        self.classes = _Classes()
        self.layers = _Layers(self.classes)
        self.rendered: dict[int, _Call] = {}
        self.functions: list[_Function] = []
        self.taken: set[str] = set()

    def group_calls(self, graphs: list[SeqNode]) -> None:
        """Render every block call of every expansion, innermost first, and give each its function."""
        by_height: dict[int, list[SeqNode]] = {}
        for graph in graphs:
            _collect_calls(graph, by_height, tuple(self.net.input_shape))
        renderer = _Renderer(self.layers, self.rendered)
        for height in sorted(by_height):
            pending: dict[tuple, list[_Call]] = {}
            for seq, shape in by_height[height]:
                entries, _ = renderer.chain(seq, shape)
                call = _Call(seq, renderer.seq_lines(entries), _call_values(seq, shape))
                self.rendered[id(seq)] = call
                pending.setdefault((seq.block.name, _tokens(call.body)[0]), []).append(call)
            for calls in pending.values():
                signatures = {f.name: f.params for f in self.functions}
                for group, names in _split(calls, list(calls[0].values), signatures):
                    self._function(group, names)

    def _function(self, calls: list[_Call], names: dict[int, str]) -> None:
        block = calls[0].seq.block
        fname = _unique(_py_name(block.name, set()), self.taken)
        self.taken.add(fname)
        params = [a for a in calls[0].values if a in names.values()]
        local: dict[str, str] = {}
        for a in params:  # names that shadow no function it calls, nor each other
            local[a] = _py_name(a, (self.taken - {fname}) | set(local.values()))
        body = _substitute(calls[0].body, {k: local[a] for k, a in names.items()})
        shapes_agree = len({tuple(l.comment for l in c.body) for c in calls}) == 1
        if not shapes_agree:  # the shapes depend on the arguments: the comments would be wrong for some calls
            body = [_Line(l.indent, l.code) for l in body]
        self.functions.append(_Function(fname, block, [local[a] for a in params], body))
        function = self.functions[-1]
        for call in calls:
            call.function = function
            values = ", ".join(_literal(call.values[a]) for a in params)
            call.text = f"{fname}({values})"

    def top_level(self, graph: SeqNode) -> list[_Line]:
        entries, _ = _Renderer(self.layers, self.rendered).chain(graph, tuple(self.net.input_shape))
        lines = []
        for name, expr in entries:
            first, *rest = expr
            lines += [_Line(0, f"self.{name} = {first.code}", first.comment), *rest]
        return lines


def _collect_calls(seq: SeqNode, by_height: dict, shape: tuple) -> tuple[int, tuple]:
    """Files every block call under `seq` (with its input shape) by its height, 1 for a call that
    calls no block; returns seq's own height and output shape."""
    height = 0
    for item in seq.items:
        if isinstance(item, LayerNode):
            shape = tuple(item.out_shape)
        elif isinstance(item, MergeNode):
            for branch, branch_in in zip(item.branches, item.kind.inputs(shape, len(item.branches))):
                height = max(height, _collect_calls(branch, by_height, branch_in)[0])
            shape = tuple(item.out_shape)
        elif isinstance(item, SeqNode):
            inner, out = _collect_calls(item, by_height, shape)
            by_height.setdefault(inner, []).append((item, shape))
            height, shape = max(height, inner), out
    return (height + 1 if getattr(seq, "block", None) is not None else height), shape


def _call_values(seq: SeqNode, shape: tuple) -> dict[str, Any]:
    values = dict(seq.block_args)
    if shape and "in_channels" not in values:
        values["in_channels"] = shape[0]
    return values


# --- the network's params as keyword arguments ----------------------------------------
def _probe_values(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value + 2]
    if isinstance(value, float):
        return [value / 2, value / 4] if value else [0.25, 0.125]
    return []


def _only_replaced(base: SeqNode, probe: SeqNode, old: str, new: str) -> bool:
    """Whether the probe's tree is the base's with some numbers `old` (as written in code) turned into
    `new`: the same elements, and every changed argument or input width changed from the one to the other.
    (A quick refusal; the generated code's own comparison, _kwargs, decides.)"""
    if len(base.items) != len(probe.items):
        return False
    for a, b in zip(base.items, probe.items):
        if type(a) is not type(b) or a.name != b.name:
            return False
        if isinstance(a, LayerNode):
            pairs = [(a.args[k], b.args[k]) for k in a.args] + [(a.in_shape[0], b.in_shape[0])]
            if a.kind is not b.kind or not all(x == y or _replaced(x, y, old, new) for x, y in pairs):
                return False
        elif isinstance(a, MergeNode):
            if len(a.branches) != len(b.branches) or not all(
                    _only_replaced(x, y, old, new) for x, y in zip(a.branches, b.branches)):
                return False
        elif isinstance(a, SeqNode) and not _only_replaced(a, b, old, new):
            return False
    return True


def _replaced(x: Any, y: Any, old: str, new: str) -> bool:
    if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y):
        return all(p == q or _replaced(p, q, old, new) for p, q in zip(x, y))
    return _number_literal(x) == old and _number_literal(y) == new


def _kwargs(base: list[_Line], probes: dict[str, list[list[_Line]]],
            values: dict[str, Any]) -> dict[int, str]:
    """Positions of the top level's numbers that each accepted param sets: {position: param}."""
    skeleton, numbers = _tokens(base)
    claimed: dict[int, str] = {}
    rejected = set()
    for name, renderings in probes.items():
        tokens = [_tokens(r) for r in renderings]
        if not renderings or any(t[0] != skeleton for t in tokens):
            continue  # the probe changed the structure (or could not be analysed)
        moved = {k for t in tokens for k in range(len(numbers)) if t[1][k] != numbers[k]}
        probe_values = _probe_values(values[name])
        exact = all(numbers[k] == _number_literal(values[name]) and all(
            t[1][k] == _number_literal(v) for t, v in zip(tokens, probe_values)) for k in moved)
        if not moved or not exact:
            continue
        for k in moved:
            if k in claimed:
                rejected |= {name, claimed[k]}
            claimed[k] = name
    return {k: name for k, name in claimed.items() if name not in rejected}


# --- the file -------------------------------------------------------------------------
HELPERS = '''def seq(**layers: nn.Module) -> nn.Sequential:
    """An nn.Sequential whose children have these names, in this order (they make the state_dict keys)."""
    return nn.Sequential(OrderedDict(layers))
'''


def pytorch_source(net, seed: int = 0, weights: str | None = None) -> str:
    """The standalone Python file for `net` (see the module docstring)."""
    values = {k: v for k, v in param_values(net).items() if _number_literal(v) is not None}
    overrides = dict(getattr(net, "overrides", {}))
    spec = linked_spec(net)
    base = _expansion(net, spec, overrides)
    probes: dict[str, list[SeqNode]] = {}
    for name in list(values)[:MAX_EXPORT_PARAMS]:
        graphs = []
        for probe in _probe_values(values[name]):
            try:
                graph = _expansion(net, spec, {**overrides, name: probe})
            except SpecError:
                graphs = []  # the spec refuses another value here: it cannot be an argument
                break
            if not _only_replaced(base, graph, _number_literal(values[name]), _number_literal(probe)):
                graphs = []  # it changes the structure or computes with the value: no argument
                break
            graphs.append(graph)
        if graphs:
            probes[name] = graphs
    gen = _Generator(net)
    gen.group_calls([base] + [g for graphs in probes.values() for g in graphs])
    top = gen.top_level(base)
    renderings = {name: [gen.top_level(g) for g in graphs] for name, graphs in probes.items()}
    claimed = _kwargs(top, renderings, values)
    _mark_used(base, gen.rendered)
    kwargs = [name for name in values if name in claimed.values()]
    taken = {f.name for f in gen.functions if f.used}
    py = {name: _py_name(name, taken) for name in kwargs}
    top = _substitute(top, {k: py[name] for k, name in claimed.items()})
    return _file(net, gen, top, {py[name]: values[name] for name in kwargs}, seed, weights)


def _mark_used(seq: SeqNode, rendered: dict[int, _Call]) -> None:
    for item in seq.items:
        if isinstance(item, SeqNode):
            rendered[id(item)].function.used = True
            _mark_used(item, rendered)
        elif isinstance(item, MergeNode):
            for branch in item.branches:
                _mark_used(branch, rendered)


def _file(net, gen: _Generator, top: list[_Line], kwargs: dict[str, Any], seed: int, weights: str | None) -> str:
    cls = class_name(net.name)
    while cls in {f.name for f in gen.functions} | {c.__name__ for c in gen.classes.defined} | RESERVED:
        cls += "Net"
    signature = ", ".join(f"{k}: {type(v).__name__} = {_literal(v)}" for k, v in kwargs.items())
    where = _comment(net.path)
    header = [
        f'"""{_comment(net.name)}: {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}, '
        f'{net.param_count:,} parameters, exported by specc {__version__} from {where}.',
        "",
        "Needs only torch. The state_dict keys are those of specc's built module, so weights",
        "trained by specc load with strict=True. Comments give each element's output shape per",
        f"sample, at the input {shape_str(net.input_shape)} and the default arguments."
        + (f" Keyword arguments: {', '.join(kwargs)}." if kwargs else ""),
        '"""',
        "from __future__ import annotations",
        "",
        "from collections import OrderedDict",
        *(["from pathlib import Path"] if weights else []),
        "",
        "import torch",
        "from torch import nn",
        "",
        f"SEED = {int(seed)}  # build() initialises as specc's net.build() does under torch.manual_seed(SEED)",
        *([f"WEIGHTS = {weights!r}  # trained weights, beside this file"] if weights else []),
    ]
    parts = ["\n".join(header), HELPERS, *gen.classes.sources()]
    parts += [_function_source(f, net.path) for f in gen.functions if f.used]
    parts.append(_class_source(net, cls, signature, top))
    parts.append(_build_source(cls, weights))
    return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _function_source(f: _Function, net_path: str) -> str:
    where = f.block.span.origin[0] if f.block.span.origin else net_path
    at = f"{_comment(str(where))}, line {f.block.span.line}"
    written = f"{f.block.name}({', '.join(f.block.params)})"
    doc = f'    """The block {_comment(written)} ({at})."""'
    body = f.body
    lines = [f"def {f.name}({', '.join(f.params)}) -> nn.Sequential:", doc, "    return " + body[0].code]
    lines[-1] += f"  # {body[0].comment}" if body[0].comment else ""
    return "\n".join(lines) + ("\n" + _format(body[1:], 1) if len(body) > 1 else "")


def _class_source(net, cls: str, signature: str, top: list[_Line]) -> str:
    doc = f'    """{_comment(net.name)} ({_comment(net.path)}): {shape_str(net.input_shape)} -> ' \
          f'{shape_str(net.output_shape)}."""'
    init = f"    def __init__(self{', *, ' + signature if signature else ''}):"
    body = _format(top, 2) if top else "        pass"
    return "\n".join([f"class {cls}(nn.Sequential):", doc, "", init, "        super().__init__()", body])


def _build_source(cls: str, weights: str | None) -> str:
    text = f'''def build(seed: int = SEED, **kwargs) -> {cls}:
    """{cls}(**kwargs) initialised as specc builds it under torch.manual_seed(seed); the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {cls}(**kwargs)
'''
    if weights:
        text += f'''

def pretrained(path: str | None = None) -> {cls}:
    """{cls}() with the trained weights (safetensors; pip install safetensors), in eval mode."""
    from safetensors.torch import load_file
    model = {cls}()
    model.load_state_dict(load_file(str(path or Path(__file__).with_name(WEIGHTS))), strict=True)
    return model.eval()
'''
    return text


def check_source(net, source: str) -> None:
    """The generated file, built on the meta device, must have net.build()'s state_dict keys and shapes."""
    namespace: dict[str, Any] = {"__name__": "specc_export_check"}
    exec(compile(source, "<generated>", "exec"), namespace)  # the file this module just generated
    with torch.device("meta"):
        made = namespace["build"]()
    if not _same_state(made, net.build(device="meta")):
        raise ExportError("the generated module's state_dict does not match specc's built module "
                          "(a bug in specc export; please report it)")


# --- weights --------------------------------------------------------------------------
def initial_module(net, seed: int) -> nn.Module:
    """net.build() under torch.manual_seed(seed), leaving the caller's RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return net.build()


def export_pytorch(net, out: Path, seed: int = 0, state: dict | None = None) -> list[Path]:
    """Writes OUT.py (and OUT.safetensors with `state`, trained weights by state_dict name)."""
    weights = out.with_suffix(".safetensors") if state is not None else None
    source = pytorch_source(net, seed, weights.name if weights else None)
    check_source(net, source)
    out.write_text(source)
    written = [out]
    if weights is not None:
        from safetensors.torch import save_file
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        save_file(tensors, str(weights), metadata={"format": "pt", "network": net.name})
        written.append(weights)
    return written


# --- ONNX -----------------------------------------------------------------------------
def require_onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError(f"--to onnx needs the onnx package: {ONNX_EXTRA}") from None
    return onnx


def export_onnx(net, out: Path, module: nn.Module, metadata: dict[str, str]) -> tuple[str, int]:
    """torch.onnx.export of `module` with a dynamic batch axis and specc's metadata; (exporter, opset).

    The TorchScript exporter first (it is several times faster); the dynamo exporter where it
    refuses the network (an adaptive pool whose output size does not divide its input)."""
    onnx = require_onnx()
    module = module.eval()
    example = torch.randn(2, *net.input_shape, generator=torch.Generator().manual_seed(0))
    try:
        model, exporter, opset = onnx.load_model_from_string(_torchscript(module, example)), "torchscript", ONNX_OPSET
    except torch.onnx.errors.OnnxExporterError as first:
        try:
            model, exporter, opset = _dynamo(module, example), "dynamo", ONNX_DYNAMO_OPSET
        except Exception as second:  # noqa: BLE001 - the exporter's own errors vary; both are reported
            raise ExportError(f"torch.onnx.export cannot export {net.name}: {_first_line(first)}; the dynamo "
                              f"exporter neither: {_first_line(second)}") from None
    model.producer_name, model.producer_version = "specc", __version__
    model.doc_string = f"{net.name}: {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}"
    for key, value in {"specc.network": net.name, "specc.opset": str(opset), "specc.exporter": exporter,
                       **metadata}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(out))
    return exporter, opset


def _quiet():
    """The exporters' warnings and progress lines are not the user's to act on."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


def _torchscript(module: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with _quiet():
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return buffer.getvalue()


def _dynamo(module: nn.Module, example: torch.Tensor):
    with _quiet():
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=ONNX_DYNAMO_OPSET,
                                    input_names=["input"], output_names=["output"],
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    return program.model_proto


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()  # the exporters colour their messages
    return text[0][:300] if text else type(exc).__name__


def onnx_difference(path: Path, module: nn.Module, input_shape: tuple, batch: int = 3) -> float | None:
    """Max abs difference between onnxruntime's and PyTorch's outputs at another batch size; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(1))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = module.eval()(x)
    return float((torch.from_numpy(got) - want).abs().max())


# --- the command ----------------------------------------------------------------------
def run_command(source: str, target: str, output: Path, seed: int, which: str, net=None) -> list[str]:
    """`specc export`: the lines to print. `net` is the loaded spec; None when `source` is a run directory."""
    state, weights_note = None, f"initialisation of seed {seed}"
    if net is None:
        net, state, epoch = _run_weights(Path(source), which)
        weights_note = f"{which} checkpoint of {source} (epoch {epoch})"
    if target == "json":
        from ..tools.ir import ir_json
        _write(output, lambda: output.write_text(ir_json(net) + "\n"))
        return [f"wrote {output} (specc-ir/1)"]
    if target == "pytorch":
        written = []
        _write(output, lambda: written.extend(export_pytorch(net, output, seed, state)))
        kwargs = _kwarg_names(output.read_text())
        lines = [f"wrote {output} (class {_class_in(output.read_text())}, keyword arguments: "
                 f"{', '.join(kwargs) or 'none'})"]
        return lines + [f"wrote {path} ({weights_note}, by state_dict name)" for path in written[1:]]
    require_onnx()  # before building a large module
    module = _module(net, seed, state)
    done = []
    _write(output, lambda: done.extend(export_onnx(net, output, module, {"specc.weights": weights_note})))
    exporter, opset = done
    difference = onnx_difference(output, module, net.input_shape)
    checked = ("onnxruntime not installed: not run" if difference is None else
               f"onnxruntime's outputs at batch 3 within {difference:.1e} of PyTorch's")
    return [f"wrote {output} (ONNX opset {opset}, {exporter} exporter, dynamic batch axis 'batch', "
            f"{weights_note}); {checked}"]


def _run_weights(run_dir: Path, which: str):
    """(network, model state_dict, epoch) of a run directory's checkpoint, checked as `specc eval` checks it."""
    from ..lang.errors import TrainError
    from ..train import checkpoint
    path = run_dir / f"{which}.safetensors"
    try:
        meta, tensors = checkpoint.load(path)
        net = checkpoint.network(meta, path)
        module = net.build(device="meta")
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        state = checkpoint.model_state(tensors)
        if {k: tuple(v.shape) for k, v in state.items()} != expected:
            raise checkpoint.CheckpointError(f"{path}: its weights do not fit its network")
    except checkpoint.CheckpointError as exc:
        raise TrainError(str(exc)) from None
    return net, state, meta["epoch"]


def _module(net, seed: int, state: dict | None) -> nn.Module:
    if state is None:
        return initial_module(net, seed)
    module = net.build()
    module.load_state_dict(state, strict=True)
    return module


def _write(output: Path, write) -> None:
    try:
        write()
    except OSError as exc:
        raise ExportError(f"cannot write {exc.filename or output}: {exc.strerror or exc}") from None


def _kwarg_names(source: str) -> list[str]:
    match = re.search(r"    def __init__\(self, \*, ([^)]*)\):", source)
    return [part.split(":")[0] for part in match.group(1).split(", ")] if match else []


def _class_in(source: str) -> str:
    return re.search(r"^class (\w+)\(nn\.Sequential\):", source, re.M).group(1)
