"""Expand phase: nodes.SpecFile -> a tree of concrete layers.

Evaluates expressions, binds layer arguments to the registry's definitions,
applies per-op defaults, inlines groups and repetitions and instantiates block
calls. Each resulting node has a readable name (`vgg2.conv1`), which becomes
the module name when the network is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import nodes as n
from .errors import Span, SpecError, did_you_mean
from .registry import REGISTRY, REQUIRED, Arg, Args, LayerKind

MAX_LAYERS = 100_000  # guards against `relu * 10**9`, which would exhaust memory


@dataclass
class LayerNode:
    kind: LayerKind
    args: Args
    span: Span
    text: str
    arg_spans: dict[str, Span]
    calls: tuple[str, ...]  # "vgg(2, 512) at line 9", innermost last, for error notes
    name: str = ""
    # filled in by infer.py
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()


@dataclass
class SeqNode:
    span: Span | None
    text: str = ""
    items: list[Any] = field(default_factory=list)
    name: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, node, base: str) -> None:
        self.counts[base] = self.counts.get(base, 0) + 1
        node.name = f"{base}{self.counts[base]}"
        self.items.append(node)


@dataclass
class MergeNode:
    mode: str  # "concat" or "add"
    branches: list[SeqNode]
    span: Span
    calls: tuple[str, ...]
    name: str = ""
    out_shape: tuple[int, ...] = ()


@dataclass
class CheckNode:
    """A `: SHAPE` annotation: the shape at this point must equal `dims`."""

    dims: tuple[int, ...]
    span: Span
    name: str = ""


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


class Expander:
    def __init__(self, spec: n.SpecFile, overrides: dict[str, Any]):
        self.spec = spec
        self.layer_count = 0
        self.globals = self._params(overrides)
        self.defaults = [(d, self._default_args(d)) for d in spec.defaults]

    # --- scope and expressions --------------------------------------------
    def _params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        declared = {p.name for p in self.spec.params}
        for name in overrides:
            if name not in declared:
                raise SpecError(f"the spec has no param '{name}' to set",
                                hint=did_you_mean(name, declared) or _declared_list(declared))
        scope: dict[str, Any] = {}
        for p in self.spec.params:
            scope[p.name] = overrides[p.name] if p.name in overrides else self.evaluate(p.value, scope)
        return scope

    def evaluate(self, expr: n.Expr, scope: dict[str, Any]) -> Any:
        if isinstance(expr, n.Num):
            return expr.value
        if isinstance(expr, n.Dims):
            return expr.values
        if isinstance(expr, n.Name):
            if expr.id in scope:
                return scope[expr.id]
            if expr.id in ("true", "false"):
                return expr.id == "true"
            raise SpecError(f"unknown name '{expr.id}'", expr.span,
                            hint=did_you_mean(expr.id, scope) or _declared_list(scope))
        if isinstance(expr, n.Neg):
            return -self._number(expr.operand, scope)
        left, right = self._number(expr.left, scope), self._number(expr.right, scope)
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        if right == 0:
            raise SpecError("division by zero", expr.span)
        return left // right

    def _number(self, expr: n.Expr, scope: dict[str, Any]) -> int | float:
        value = self.evaluate(expr, scope)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"expected a number, got {describe(value)}", expr.span)
        return value

    # --- layer arguments ----------------------------------------------------
    def _default_args(self, default: n.Default) -> dict[str, tuple[Any, Span]]:
        kind = self._kind(default.op, default.span)
        return {key: (value, span) for key, (value, span) in self._bind(kind, default.args, self.globals).items()}

    def _kind(self, op: str, span: Span) -> LayerKind:
        if op in REGISTRY:
            return REGISTRY[op]
        hint = did_you_mean(op, list(REGISTRY) + list(self.spec.blocks))
        if op in self.spec.blocks:
            hint = f"'{op}' is a block: call it as {op}(...)"
        raise SpecError(f"unknown layer '{op}'", span, hint=hint)

    def _bind(self, kind: LayerKind, args: tuple[n.Arg, ...], scope) -> dict[str, tuple[Any, Span]]:
        """Assign each written argument to an argument of `kind`; returns name -> (raw value, span)."""
        bound: dict[str, tuple[Any, Span]] = {}
        for arg in args:
            name, value = self._target(kind, arg, scope)
            if name in bound:
                raise SpecError(f"{kind.name}: '{name}' is given twice", arg.span,
                                hint=f"first given at column {bound[name][1].column}")
            bound[name] = (value, arg.span)
        return bound

    def _target(self, kind: LayerKind, arg: n.Arg, scope) -> tuple[str, Any]:
        if arg.key is not None:
            if kind.arg(arg.key) is None:
                names = [a.name for a in kind.args]
                hint = did_you_mean(arg.key, names) or (f"{kind.name} takes: {', '.join(names)}" if names
                                                        else f"{kind.name} takes no arguments")
                what = f"shorthand '{arg.key[0]}N' ({arg.key})" if arg.shorthand else f"argument '{arg.key}'"
                raise SpecError(f"{kind.name} has no {what}", arg.span, hint=hint)
            return arg.key, self.evaluate(arg.value, scope)
        if isinstance(arg.value, n.Name) and arg.value.id in kind.flags:
            return arg.value.id, True
        if isinstance(arg.value, n.Dims) and kind.dims:
            return kind.dims, arg.value.values
        if kind.main is None:
            hint = None
            if isinstance(arg.value, n.Name) and arg.value.id not in scope:
                hint = "elements of a chain are joined by '->'" if arg.value.id in REGISTRY else None
            raise SpecError(f"{kind.name} takes no bare value", arg.span, hint=hint or _takes(kind))
        if isinstance(arg.value, n.Name) and arg.value.id not in scope and arg.value.id in REGISTRY:
            raise SpecError(f"'{arg.value.id}' is a layer, not a value for {kind.name}", arg.span,
                            hint="elements of a chain are joined by '->'")
        return kind.main, self.evaluate(arg.value, scope)

    def _resolve(self, kind: LayerKind, layer: n.Layer, scope) -> tuple[Args, dict[str, Span]]:
        bound: dict[str, tuple[Any, Span]] = {}
        for default, values in self.defaults:
            # A default holds for the rest of its own file (an import's defaults stay in it).
            if REGISTRY[default.op] is kind and default.span.origin == layer.span.origin and (
                    default.span.line, default.span.column) < (layer.span.line, layer.span.column):
                bound.update(values)
        bound.update(self._bind(kind, layer.args, scope))
        args, spans = Args(), {}
        for spec in kind.args:
            if spec.name in bound:
                raw, spans[spec.name] = bound[spec.name]
                args[spec.name] = _coerce(kind, spec, raw, spans[spec.name])
            elif spec.default is REQUIRED:
                raise SpecError(f"{kind.name} needs {_a(spec.name)}", layer.span, hint=_takes(kind))
            else:
                args[spec.name] = _coerce(kind, spec, spec.default, layer.span)
        return args, spans

    # --- chains ---------------------------------------------------------------
    def expand(self) -> SeqNode:
        if self.spec.body is None:
            raise SpecError("the spec has no layers", hint="write a chain such as: conv 3x3 16 -> relu -> flatten -> fc 10")
        root = SeqNode(self.spec.body.span)
        self._chain(self.spec.body, self.globals, root, (), ())
        return root

    def _chain(self, chain: n.Chain, scope, into: SeqNode, stack: tuple[str, ...], calls: tuple[str, ...]):
        for element in chain.elements:
            count = self._repeat_count(element, scope)
            for _ in range(count):
                self._primary(element.primary, scope, into, stack, calls)
            if element.annotation is not None:
                into.items.append(CheckNode(element.annotation.values, element.annotation.span))

    def _repeat_count(self, element: n.Element, scope) -> int:
        if element.repeat is None:
            return 1
        count = self.evaluate(element.repeat, scope)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SpecError(f"a repetition count must be a positive integer, got {describe(count)}",
                            element.repeat.span)
        if count > MAX_LAYERS:
            raise SpecError(f"repeating {count} times is more than specc's limit of {MAX_LAYERS} layers",
                            element.repeat.span)
        return count

    def _primary(self, primary, scope, into: SeqNode, stack, calls):
        if isinstance(primary, n.Layer):
            self._layer(primary, scope, into, calls)
        elif isinstance(primary, n.Group):
            self._chain(primary.chain, scope, into, stack, calls)
        elif isinstance(primary, n.Branch):
            merge = MergeNode(primary.mode, [], primary.span, calls)
            for i, chain in enumerate(primary.chains, 1):
                branch = SeqNode(chain.span, name=f"branch{i}")
                self._chain(chain, scope, branch, stack, calls)
                merge.branches.append(branch)
            into.add(merge, primary.mode)
        else:
            into.add(self._call(primary, scope, stack, calls), primary.block)

    def _layer(self, layer: n.Layer, scope, into: SeqNode, calls) -> None:
        self.layer_count += 1
        if self.layer_count > MAX_LAYERS:
            raise SpecError(f"the spec expands to more than {MAX_LAYERS} layers", layer.span)
        kind = self._kind(layer.op, layer.span)
        args, spans = self._resolve(kind, layer, scope)
        into.add(LayerNode(kind, args, layer.span, layer.text, spans, calls), kind.name)

    def _call(self, call: n.Call, scope, stack, calls) -> SeqNode:
        block = self.spec.blocks.get(call.block)
        if block is None:
            hint = did_you_mean(call.block, self.spec.blocks)
            if call.block in REGISTRY:
                hint = f"'{call.block}' is a layer: write its arguments after a space, as in '{call.block} ...'"
            raise SpecError(f"unknown block '{call.block}'", call.span,
                            hint=hint or _declared_list(self.spec.blocks, "blocks"))
        if block.name in stack:
            cycle = " -> ".join(stack[stack.index(block.name):] + (block.name,))
            raise SpecError(f"block '{block.name}' calls itself ({cycle})", call.span,
                            hint="blocks cannot be recursive; use repetition (ELEMENT * N) instead")
        local = dict(self.globals)
        local.update(self._call_args(block, call, scope))
        seq = SeqNode(call.span, text=call.text)
        where = f"in {call.text} at line {call.span.line}"
        self._chain(block.body, local, seq, stack + (block.name,), calls + (where,))
        return seq

    def _call_args(self, block: n.Block, call: n.Call, scope) -> dict[str, Any]:
        signature = f"{block.name}({', '.join(block.params)})"
        if len(call.args) > len(block.params):
            raise SpecError(f"{block.name} takes {_count(len(block.params), 'argument')} but gets {len(call.args)}",
                            call.span, hint=f"defined as {signature} at line {block.span.line}")
        values = {p: self.evaluate(e, scope) for p, e in zip(block.params, call.args)}
        for key, expr, span in call.kwargs:
            if key not in block.params:
                raise SpecError(f"{block.name} has no parameter '{key}'", span,
                                hint=did_you_mean(key, block.params) or f"defined as {signature}")
            if key in values:
                raise SpecError(f"{block.name}: '{key}' is given twice", span)
            values[key] = self.evaluate(expr, scope)
        missing = [p for p in block.params if p not in values]
        if missing:
            raise SpecError(f"{block.name} takes {_count(len(block.params), 'argument')} but gets {len(values)}",
                            call.span, hint=f"missing {', '.join(missing)}; defined as {signature} "
                                            f"at line {block.span.line}")
        return values


def _coerce(kind: LayerKind, spec: Arg, value: Any, span: Span) -> Any:
    """Check a value against its argument's type and range; pairs become (h, w)."""
    if value is None:
        return None
    label = f"{kind.name} {spec.name}"
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"{label} must be true or false, got {describe(value)}", span)
        return value
    if isinstance(value, bool):
        raise SpecError(f"{label} must be a number, got {describe(value)}", span)
    if spec.kind == "float":
        if not isinstance(value, (int, float)):
            raise SpecError(f"{label} must be a number, got {describe(value)}", span)
        value = float(value)
        sides = (value,)
    elif spec.kind == "int":
        if not isinstance(value, int):
            raise SpecError(f"{label} must be an integer, got {describe(value)}", span)
        sides = (value,)
    else:  # pair
        if isinstance(value, int):
            value = (value, value)
        if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)):
            raise SpecError(f"{label} must be an integer or HxW, got {describe(value)}", span)
        sides = value
    if spec.minimum is not None and min(sides) < spec.minimum:
        bound = "positive" if spec.minimum == 1 else f"at least {spec.minimum:g}"
        raise SpecError(f"{label} must be {bound}, got {describe(value)}", span)
    if spec.below is not None and max(sides) >= spec.below:
        raise SpecError(f"{label} must be in [{spec.minimum:g}, {spec.below:g}), got {describe(value)}", span)
    return value


def _a(word: str) -> str:
    return f"an '{word}'" if word[0] in "aeiou" else f"a '{word}'"


def _count(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _takes(kind: LayerKind) -> str:
    return f"usage: {kind.summary}"


def _declared_list(names, what: str = "names") -> str | None:
    names = sorted(names)
    return f"known {what}: {', '.join(names)}" if names else None


def expand(spec: n.SpecFile, overrides: dict[str, Any] | None = None) -> SeqNode:
    return Expander(spec, overrides or {}).expand()
