"""Expand phase: nodes.SpecFile -> a tree of concrete layers.

Evaluates expressions, binds layer arguments to the registry's definitions,
applies per-op defaults, inlines groups and repetitions and instantiates block
calls. Each resulting node has a readable name (`vgg2.conv1`), which becomes
the module name when the network is built.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import nodes as n
from .errors import Span, SpecError, did_you_mean
from .evaluate import FUNCTIONS, BlockRef, CallRef, Evaluator, LayerRef, Ref, describe
from .registry import MERGES, REGISTRY, REQUIRED, Arg, Args, LayerKind, MergeKind
from .render import call_text

MAX_LAYERS = 100_000  # guards against `relu * 10**9`, which would exhaust memory
# Block calls cost time and memory even when they hold few layers (61 nested blocks, each calling
# the next, called 40,000 times): they are counted too, against a budget of their own.
MAX_CALLS = 20_000  # 136 times the most a shipped spec makes (efficientnet_v2_l: 147)


@dataclass(slots=True)
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


@dataclass(slots=True)
class SeqNode:
    span: Span | None
    text: str = ""  # a block call as written: `bneck(16, k, exp)`
    items: list[Any] = field(default_factory=list)
    name: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    resolved: str = ""  # a block call with its argument values: `bneck(16, 3, 72)`
    block: n.Block | None = None  # a block call's block and argument values (export writes them as code)
    block_args: dict[str, Any] | None = None

    def add(self, node, base: str) -> None:
        self.counts[base] = self.counts.get(base, 0) + 1
        node.name = f"{base}{self.counts[base]}"
        self.items.append(node)


@dataclass(slots=True)
class MergeNode:
    kind: MergeKind
    branches: list[SeqNode]
    span: Span
    calls: tuple[str, ...]
    name: str = ""
    out_shape: tuple[int, ...] = ()


@dataclass(slots=True)
class CheckNode:
    """A `: SHAPE` annotation: the shape at this point must equal `dims` (None: any size)."""

    dims: tuple[int | None, ...]
    span: Span
    name: str = ""


class Memo:
    """What one expansion lends the next: an editor analyses a document again at every change, and the
    files it imports are parsed once (the same node objects each time), so the expansions of the block
    calls and the resolved arguments of the layers written in them carry over. Keys hold node ids and
    the context the entry was made in (the globals' values, the block names); each entry holds its node,
    so the id cannot be reused by another while the entry exists, and it is used only for that node."""

    def __init__(self, size: int = 2048):
        self.size = size
        self.expansions: OrderedDict[tuple, tuple[n.Block, _Expansion]] = OrderedDict()
        self.resolved: OrderedDict[tuple, tuple[n.Layer, tuple[Args, dict[str, Span]]]] = OrderedDict()

    @staticmethod
    def get(table: OrderedDict, key: tuple, node):
        entry = table.get(key)
        if entry is None or entry[0] is not node:
            return None
        table.move_to_end(key)
        return entry[1]

    def put(self, table: OrderedDict, key: tuple, node, value) -> None:
        table[key] = (node, value)
        if len(table) > self.size:
            table.popitem(last=False)


class Expander:
    def __init__(self, spec: n.SpecFile, overrides: dict[str, Any], memo: Memo | None = None):
        self.spec = spec
        self.layer_count = 0
        self.call_count = 0
        self.values = Evaluator(spec.blocks)
        self._names: dict[int, tuple[str, ...]] = {}  # id(n.Layer) -> the names its arguments mention
        self._resolved: dict[tuple, tuple[Args, dict[str, Span]]] = {}
        # A block called again at the same call site with the same argument values expands to the
        # same layers (its body sees only its arguments and the globals): the first expansion is kept
        # and later ones are copies of it, which is most of a deep network's expansion.
        self._expansions: dict[tuple, _Expansion] = {}
        self._called: list[n.Block] = []  # every block expanded so far, in order, for the expansions' sets
        self.globals = self._params(overrides)
        # Entries for nodes of imported files go to the memo, under the context they depend on.
        self._memo = memo
        self._context = _key(tuple(sorted(spec.blocks)), list(self.globals.items())) if memo else None
        # Resolved once, grouped by kind, so a layer looks only at its own kind's defaults.
        self.defaults: dict[str, list[tuple[n.Default, dict]]] = {}
        for default in spec.defaults:
            kind = self._kind(default.op, default.span)
            self.defaults.setdefault(kind.name, []).append((default, self._bind(kind, default.args, self.globals)))

    # --- scope and expressions --------------------------------------------
    def _params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        declared = {p.name for p in self.spec.params}
        for name in overrides:
            if name not in declared:
                raise SpecError(f"the spec has no param '{name}' to set",
                                hint=did_you_mean(name, declared) or _declared_list(declared))
        scope: dict[str, Any] = {}
        for p in self.spec.params:
            if p.name in overrides:
                scope[p.name] = overrides[p.name]
            elif p.name in self.spec.import_settings:  # import "lib.cnn" (eps = 0.001)
                scope[p.name] = self.evaluate(self.spec.import_settings[p.name][0], scope)
            else:
                scope[p.name] = self.evaluate(p.value, scope)
        return scope

    def evaluate(self, expr: n.Expr, scope: dict[str, Any]) -> Any:
        return self.values.evaluate(expr, scope)

    # --- layer arguments ----------------------------------------------------
    def _kind(self, op: str, span: Span) -> LayerKind:
        if op in REGISTRY:
            return REGISTRY[op]
        hint = did_you_mean(op, list(REGISTRY) + list(self.spec.blocks))
        if op in self.spec.blocks:
            hint = f"'{op}' is a block: call it as {op}(...)"
        elif op in MERGES:
            hint = f"'{op}' is a merge: write {op}(A | B)"
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
        # A layer written once in a block is expanded at every call; its arguments depend only on the
        # names it mentions, so resolve each (layer, values of those names) once. Args are never mutated.
        names = self._names.get(id(layer))
        if names is None:
            names = self._names[id(layer)] = tuple(sorted(_mentioned(layer.args)))
        key = _key(id(layer), kind.name, [scope.get(name) for name in names])
        if key is None:  # a block call passed as a value: not worth a key
            return self._resolve_now(kind, layer, scope)
        resolved = self._resolved.get(key)
        if resolved is None:
            lent = self._lent(layer)
            resolved = lent and lent.get(lent.resolved, key + self._context, layer)
            if resolved is None:
                resolved = self._resolve_now(kind, layer, scope)
                if lent:
                    lent.put(lent.resolved, key + self._context, layer, resolved)
            self._resolved[key] = resolved
        return resolved

    def _lent(self, node) -> Memo | None:
        """The memo, for a node of an imported file when the context has a key."""
        return self._memo if self._context is not None and node.span.origin is not None else None

    def _resolve_now(self, kind: LayerKind, layer: n.Layer, scope) -> tuple[Args, dict[str, Span]]:
        bound: dict[str, tuple[Any, Span]] = {}
        for default, values in self.defaults.get(kind.name, ()):
            # A default holds for the rest of its own file (an import's defaults stay in it).
            if default.span.origin == layer.span.origin and (
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
        self.expand_into(root)
        return root

    def expand_into(self, root: SeqNode) -> None:
        """Expand the body into `root`; on a SpecError, `root` keeps what was expanded before it
        (an editor still shows those layers' shapes)."""
        self._chain(self.spec.body, self.globals, root, (), ())

    def _chain(self, chain: n.Chain, scope, into: SeqNode, stack: tuple[str, ...], calls: tuple[str, ...]):
        for element in chain.elements:
            count = self._repeat_count(element, scope)
            for index in range(count):
                inner = scope if element.index is None else {**scope, element.index: index}
                self._primary(element.primary, inner, into, stack, calls)
            if element.annotation is not None:
                into.items.append(CheckNode(element.annotation.values, element.annotation.span))

    def _repeat_count(self, element: n.Element, scope) -> int:
        if element.repeat is None:
            return 1
        count = self.evaluate(element.repeat, scope)
        if isinstance(count, bool):  # `* (exp != cin)`: the element is there or not
            return int(count)
        if not isinstance(count, int) or count < 0:
            hint = "round it with round(), floor(), ceil() or //" if isinstance(count, float) else None
            raise SpecError(f"a repetition count must be a whole number, 0 or more, got {describe(count)}",
                            element.repeat.span, hint=hint)
        if count > MAX_LAYERS:
            raise SpecError(f"repeating {count} times is more than specc's limit of {MAX_LAYERS} layers",
                            element.repeat.span)
        return count

    def _primary(self, primary, scope, into: SeqNode, stack, calls):
        if isinstance(primary, n.Layer):
            ref = self._bound_ref(primary.op, scope, primary.span)
            if ref is None:
                self._layer(primary, self._kind(primary.op, primary.span), scope, into, calls)
            else:
                self._element_ref(ref, primary, scope, into, stack, calls)
        elif isinstance(primary, n.Group):
            self._chain(primary.chain, scope, into, stack, calls)
        elif isinstance(primary, n.Branch):
            merge = MergeNode(MERGES[primary.mode], [], primary.span, calls)
            for i, chain in enumerate(primary.chains, 1):
                branch = SeqNode(chain.span, name=f"branch{i}")
                self._chain(chain, scope, branch, stack, calls)
                merge.branches.append(branch)
            into.add(merge, primary.mode)
        else:
            ref = self._bound_ref(primary.block, scope, primary.span)
            if isinstance(ref, BlockRef):  # se(exp) where the parameter se names a block
                primary = primary._replace(block=ref.name)
            elif ref is not None:
                raise SpecError(f"'{primary.block}' is {describe(ref)}, which takes no call arguments",
                                primary.span, hint=f"write it as '{primary.block}'")
            into.add(self._call(primary, scope, stack, calls), primary.block)

    @staticmethod
    def _bound_ref(name: str, scope, span: Span) -> Ref | None:
        """What a parameter named like a layer or block stands for, if it stands for one."""
        if name not in scope:
            return None
        value = scope[name]
        if isinstance(value, (LayerRef, BlockRef, CallRef)):
            return value
        if name in REGISTRY:  # a numeric param may share a layer kind's name (`param scale = 2`)
            return None
        raise SpecError(f"'{name}' is {describe(value)}, not a layer or block", span,
                        hint="a parameter used as a chain element must be given a layer or a block, "
                             "as in act=relu or se=squeeze(16, 64)")

    def _element_ref(self, ref: Ref, layer: n.Layer, scope, into: SeqNode, stack, calls) -> None:
        if isinstance(ref, LayerRef):  # act, or act 0.2: that kind with these arguments
            text = ref.kind.name + layer.text[len(layer.op):]
            self._layer(layer._replace(text=text), ref.kind, scope, into, calls)
            return
        if layer.args:
            raise SpecError(f"'{layer.op}' is {describe(ref)}: it takes no layer arguments", layer.span)
        if isinstance(ref, BlockRef):
            call = n.Call(ref.name, (), (), layer.span, f"{ref.name}()")
            into.add(self._call(call, scope, stack, calls), ref.name)
        else:
            into.add(self._call(ref.call, ref.scope, stack, calls), ref.call.block)

    def _layer(self, layer: n.Layer, kind: LayerKind, scope, into: SeqNode, calls) -> None:
        self.layer_count += 1
        if self.layer_count > MAX_LAYERS:
            raise SpecError(f"the spec expands to more than {MAX_LAYERS} layers", layer.span)
        args, spans = self._resolve(kind, layer, scope)
        into.add(LayerNode(kind, args, layer.span, layer.text, spans, calls), kind.name)

    def _call(self, call: n.Call, scope, stack, calls) -> SeqNode:
        block = self.spec.blocks.get(call.block)
        if block is None:
            hint = did_you_mean(call.block, list(self.spec.blocks) + list(MERGES))
            if call.block in REGISTRY:
                hint = f"'{call.block}' is a layer: write its arguments after a space, as in '{call.block} ...'"
            elif call.block in FUNCTIONS:
                hint = f"{call.block}() is a function: use it inside an expression, as in conv 1x1 ({call.block}(a, b))"
            raise SpecError(f"unknown block or merge '{call.block}'", call.span,
                            hint=(hint + "; " if hint else "") + f"the merges are {', '.join(MERGES)}")
        if block.name in stack:
            cycle = " -> ".join(stack[stack.index(block.name):] + (block.name,))
            raise SpecError(f"block '{block.name}' calls itself ({cycle})", call.span,
                            hint="blocks cannot be recursive; use repetition (ELEMENT * N) instead")
        self.call_count += 1
        if self.call_count > MAX_CALLS:
            raise SpecError(f"the spec expands to more than {MAX_CALLS} block calls", call.span,
                            hint="a block called inside a repeated block is expanded at every repetition")
        values = self._call_args(block, call, scope)
        # What the expansion depends on: the block, its argument values, where it is called (the call's
        # span and text, and the calls around it, name the nodes and their notes) and, for the memo, the
        # context. A block of an imported file takes that file's defaults only, so the memo holds those.
        key = _key(id(block), call.span, call.text, calls, list(values.values()))
        known = self._expansions.get(key) if key is not None else None
        lent = self._lent(block) if key is not None else None
        if known is None and lent:
            known = lent.get(lent.expansions, key + self._context, block)
            if known is not None and any(self.spec.blocks.get(name) is not b for name, b in known.blocks.items()):
                known = None  # a block it expands is defined anew
        if known is not None and self._reusable(known, stack):
            return self._reuse(known)
        layers, calls_before, called = self.layer_count, self.call_count, len(self._called)
        self._called.append(block)
        seq = SeqNode(call.span, text=call.text, resolved=call_text(block.name, values.values()), block=block,
                      block_args=values)
        where = f"in {call.text} at line {call.span.line}"
        self._chain(block.body, {**self.globals, **values}, seq, stack + (block.name,), calls + (where,))
        if key is not None:
            blocks = {b.name: b for b in self._called[called:]}
            known = self._expansions[key] = _Expansion(seq, self.layer_count - layers,
                                                       self.call_count - calls_before, blocks)
            if lent:
                lent.put(lent.expansions, key + self._context, block, known)
        return seq

    def _reusable(self, known: _Expansion, stack: tuple[str, ...]) -> bool:
        """Whether a copy is what expanding again would give: expanding again would instead raise where
        the copy would take a block already on the stack, or pass a limit (at the exact layer or call)."""
        return (known.blocks.keys().isdisjoint(stack) and self.layer_count + known.layers <= MAX_LAYERS
                and self.call_count + known.calls <= MAX_CALLS)

    def _reuse(self, known: _Expansion) -> SeqNode:
        self.layer_count += known.layers
        self.call_count += known.calls
        self._called.extend(known.blocks.values())
        return copy_tree(known.seq)

    def _call_args(self, block: n.Block, call: n.Call, scope) -> dict[str, Any]:
        signature = _Signature(block)  # spelled out only for a message
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
        missing = [p for p in block.params if p not in values and p not in block.defaults]
        if missing:
            raise SpecError(f"{block.name} takes {_count(len(block.params), 'argument')} but gets {len(values)}",
                            call.span, hint=f"missing {', '.join(missing)}; defined as {signature} "
                                            f"at line {block.span.line}")
        for param in block.params:  # defaults see the globals and the parameters before them
            if param not in values:
                values[param] = self.evaluate(block.defaults[param], {**self.globals, **values})
        return {p: values[p] for p in block.params}


class _Expansion(NamedTuple):
    seq: SeqNode  # the first expansion (shapes are filled in later; copies take none of them)
    layers: int  # layers in it
    calls: int  # block calls in it, not counting its own
    blocks: dict[str, n.Block]  # the blocks it expands, itself included, by name


def copy_tree(node):
    """A copy of an expanded tree without the shapes infer() writes, which the copy gets of its own
    (arguments, spans and texts are shared: nothing changes them)."""
    kind = type(node)
    if kind is LayerNode:
        return LayerNode(node.kind, node.args, node.span, node.text, node.arg_spans, node.calls, node.name)
    if kind is SeqNode:
        return SeqNode(node.span, node.text, list(map(copy_tree, node.items)), node.name, node.counts,
                       node.resolved, node.block, node.block_args)
    if kind is MergeNode:
        return MergeNode(node.kind, list(map(copy_tree, node.branches)), node.span, node.calls, node.name)
    return node  # a CheckNode: nothing writes to it


def _key(*parts) -> tuple | None:
    """A cache key from `parts`, where values are told apart by type too (1, 1.0 and True are equal in
    Python but not in a spec: `conv 3x3 c` takes c=1 and refuses c=1.0); None if a value is unhashable."""
    key = tuple(tuple(map(_typed, part)) if isinstance(part, list) else part for part in parts)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _typed(value):
    return (type(value), tuple(map(_typed, value)) if isinstance(value, tuple) else value)


def _mentioned(node) -> set[str]:
    """Every name an argument list (or expression) refers to."""
    if isinstance(node, n.Name):
        return {node.id}
    if isinstance(node, tuple):
        return set().union(*map(_mentioned, node)) if node else set()
    if isinstance(node, (n.Arg, n.KwArg)):
        return _mentioned(node.value)
    if isinstance(node, n.BinOp):
        return _mentioned(node.left) | _mentioned(node.right)
    if isinstance(node, n.Neg):
        return _mentioned(node.operand)
    if isinstance(node, n.Func):
        return {node.name} | _mentioned(node.args)
    return set()


class _Signature(NamedTuple):
    block: n.Block

    def __str__(self) -> str:
        params = [p + ("=..." if p in self.block.defaults else "") for p in self.block.params]
        return f"{self.block.name}({', '.join(params)})"


def _coerce(kind: LayerKind, spec: Arg, value: Any, span: Span) -> Any:
    """Check a value against its argument's type and range; pairs become (h, w)."""
    if value is None:
        return None
    label = f"{kind.name} {spec.name}"
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"{label} must be true or false, got {describe(value)}", span)
        return value
    if isinstance(value, bool) or isinstance(value, (LayerRef, BlockRef, CallRef)):
        raise SpecError(f"{label} must be a number, got {describe(value)}", span)
    if spec.kind == "float":
        if not isinstance(value, (int, float)):
            raise SpecError(f"{label} must be a number, got {describe(value)}", span)
        value = float(value)
        sides = (value,)
    elif spec.kind == "int":
        if not isinstance(value, int):
            raise SpecError(f"{label} must be an integer, got {describe(value)}", span, hint=_whole(value))
        sides = (value,)
    else:  # pair
        if isinstance(value, int):
            value = (value, value)
        if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)):
            raise SpecError(f"{label} must be an integer or HxW, got {describe(value)}", span, hint=_whole(value))
        sides = value
    if spec.minimum is not None and min(sides) < spec.minimum:
        bound = "positive" if spec.minimum == 1 else f"at least {spec.minimum:g}"
        raise SpecError(f"{label} must be {bound}, got {describe(value)}", span)
    if spec.below is not None and max(sides) >= spec.below:
        raise SpecError(f"{label} must be in [{spec.minimum:g}, {spec.below:g}), got {describe(value)}", span)
    if spec.maximum is not None and max(sides) > spec.maximum:
        raise SpecError(f"{label} must be in [{spec.minimum:g}, {spec.maximum:g}], got {describe(value)}", span)
    return value


def _whole(value: Any) -> str | None:
    return "make it whole with round(), floor(), ceil() or //" if isinstance(value, float) else None


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
