"""What the language server shows, computed from an Analysis: inlay hints, hovers, symbols.

Positions here are the parser's: 1-based lines and 1-based columns counted in characters; the
server converts them to the client's 0-based UTF-16 (or negotiated) units. Torch-free.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Iterator, NamedTuple

from ...lang import nodes as n
from ...lang.errors import Span, shape_str
from ...lang.evaluate import FUNCTIONS, describe
from ...lang.expand import CheckNode, LayerNode, MergeNode, SeqNode
from ...lang.files import MAX_SPEC_BYTES
from ...lang.registry import MERGES, REGISTRY, REQUIRED
from ...lang.render import layer_text
from .analysis import Analysis, line_offsets
from .modules import module_text
from ..summary import human_count

ARROW = "⟶"
MAX_SHAPES_SHOWN = 3  # distinct shapes a line of a block body shows (one per call)
MAX_EXPANSION_ROWS = 12  # layers a block call's hover lists
KEYWORDS = ("network", "input", "param", "default", "block", "import", "train")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- walking the inferred tree ------------------------------------------------------------------
@dataclass
class Visit:
    """One node of the expanded tree with what it produced; `context` numbers its block call."""

    node: LayerNode | MergeNode | SeqNode
    context: int
    out: tuple | None  # None where inference stopped (at or after the error)
    params: int
    macs: int
    layers: int


def visits(graph: SeqNode | None) -> list[Visit]:
    """Every layer, merge and block call in execution order, a call after the layers inside it."""
    found: list[Visit] = []
    if graph is not None:
        _walk(graph, 0, None, found, itertools.count(1))
    return found


def _walk(seq: SeqNode, context: int, shape, found: list[Visit], numbers) -> tuple[tuple | None, int, int, int]:
    params = macs = layers = 0
    for item in seq.items:
        if isinstance(item, CheckNode):
            continue
        if isinstance(item, LayerNode):
            shape = item.out_shape or None
            cost = item.kind.cost(item.args, item.in_shape, item.out_shape) if shape else None
            visit = Visit(item, context, shape, cost.params if cost else 0, cost.macs if cost else 0, 1)
        elif isinstance(item, MergeNode):
            inner = [_walk(b, context, None if item.kind.name == "split" else shape, found, numbers)
                     for b in item.branches]
            shape = item.out_shape or None
            visit = Visit(item, context, shape, *(sum(parts) for parts in list(zip(*inner))[1:]))
        else:  # a block call
            shape, *totals = _walk(item, next(numbers), shape, found, numbers)
            visit = Visit(item, context, shape, *totals)
        found.append(visit)
        params, macs, layers = params + visit.params, macs + visit.macs, layers + visit.layers
    return shape, params, macs, layers


def _local(span: Span | None) -> bool:
    """Whether a span is in the document itself (not in an imported file)."""
    return span is not None and span.origin is None


# --- inlay hints --------------------------------------------------------------------------------
class Hint(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based, in characters: the hint goes before this column
    label: str


def inlay_hints(analysis: Analysis) -> list[Hint]:
    """The output shape at the end of each line, and after each block call its output and params."""
    last: dict[tuple[int, int], Visit] = {}  # (line, call context) -> the last node ending there
    calls: dict[tuple[int, int, int], list[Visit]] = {}  # (line, column, context) -> a call's repetitions
    for visit in visits(analysis.graph):
        span = visit.node.span
        if not _local(span):
            continue
        last[(span.end_line, visit.context)] = visit
        if isinstance(visit.node, SeqNode):
            calls.setdefault((span.line, span.column, visit.context), []).append(visit)
    lines = analysis.lines
    hints: list[Hint] = []
    at_line_end = set()
    for line in sorted({line for line, _ in last}):
        ends = [v for (at, _), v in last.items() if at == line]
        labels = [_call_label(calls.get((v.node.span.line, v.node.span.column, v.context), [v]))
                  if _ends_line(v, lines) else _shape_label(v.out) for v in ends]
        at_line_end.update(id(v.node) for v in ends if _ends_line(v, lines))
        label = _distinct(labels)
        if label:
            hints.append(Hint(line, len(_code(lines[line - 1])) + 1, label))
    for (line, column, _), reps in calls.items():
        if id(reps[-1].node) not in at_line_end and (label := _call_label(reps)):
            end = reps[-1].node.span
            hints.append(Hint(end.end_line, end.end_column, label))
    return sorted(h for h in hints if _before_error(analysis, h))


def _before_error(analysis: Analysis, hint: Hint) -> bool:
    """Shapes show up to the error: a line at or after it is not what the user will get."""
    err = analysis.error
    return err is None or not _local(err.span) or hint.line < err.span.line


def _ends_line(visit: Visit, lines: list[str]) -> bool:
    """A block call that is the last thing on its line: the line's hint shows its params too."""
    span = visit.node.span
    if not isinstance(visit.node, SeqNode):
        return False
    rest = _code(lines[span.end_line - 1])[span.end_column - 1:]
    return re.fullmatch(r"\s*(\*\s*\S+(\s+as\s+\w+)?)?\s*(:\s*\S+)?\s*", rest) is not None


def _code(line: str) -> str:
    """The line without its trailing comment and spaces."""
    return re.sub(r"\s*#[^\n]*$", "", line.rstrip("\r")).rstrip()


def _shape_label(shape) -> str | None:
    return f"{ARROW} {shape_str(shape)}" if shape else None


def _call_label(reps: list[Visit]) -> str | None:
    out = reps[-1].out
    if not out:
        return None
    params = sum(v.params for v in reps)
    times = f" (×{len(reps)})" if len(reps) > 1 else ""
    return f"{ARROW} {shape_str(out)} · {params:,} params{times}"


def _distinct(labels: list[str | None]) -> str | None:
    """One label per call of a block whose body is on this line, each distinct one once."""
    if any(label is None for label in labels):  # a call that stopped at the error shows nothing
        labels = [label for label in labels if label is not None]
    unique = list(dict.fromkeys(labels))
    if not unique:
        return None
    shown = " | ".join(u.removeprefix(f"{ARROW} ") if i else u for i, u in enumerate(unique[:MAX_SHAPES_SHOWN]))
    more = len(unique) - MAX_SHAPES_SHOWN
    return shown + (f" | … ({more} more)" if more > 0 else "")


# --- names: where each block, param and block parameter is written -----------------------------
class Occurrence(NamedTuple):
    name: str
    span: Span  # the name itself
    target: tuple  # ("param", name) | ("block", name) | ("blockparam", block, name) | ("index", line, col)
    definition: bool = False


def occurrences(analysis: Analysis) -> list[Occurrence]:
    """Every name in the document that refers to a param, a block or a block's parameter."""
    spec = analysis.spec
    if spec is None:
        return []
    found = _Names(analysis)
    found.walk()
    return found.found


class _Names:
    def __init__(self, analysis: Analysis):
        self.spec = analysis.spec
        self.text = analysis.text
        self.offsets = line_offsets(analysis.text)
        self.params = {p.name for p in self.spec.params}
        self.found: list[Occurrence] = []

    def walk(self) -> None:
        for param in self.spec.params:
            if _local(param.span):
                self._declared("param", param.name, param.span, ("param", param.name))
                self.expr(param.value, {})
        for imp in self.spec.imports:
            for setting in imp.settings:
                self._add(setting.key, setting.span, ("param", setting.key))
                self.expr(setting.value, {})
        for default in self.spec.defaults:
            if _local(default.span):
                for arg in default.args:
                    self.expr(arg.value, {})
        for block in self.spec.blocks.values():
            if _local(block.span):
                self.block(block)
        if self.spec.body is not None:
            self.chain(self.spec.body, {})

    def block(self, block: n.Block) -> None:
        self._declared("block", block.name, block.span, ("block", block.name))
        scope = {}
        for param in block.params:
            scope[param] = ("blockparam", block.name, param)
            if param in block.defaults:
                self.expr(block.defaults[param], dict(scope))
        self.chain(block.body, scope)

    def chain(self, chain: n.Chain, scope: dict) -> None:
        for element in chain.elements:
            inner = scope
            if element.index is not None:
                inner = {**scope, element.index: ("index", element.span.line, element.span.column)}
            if element.repeat is not None:
                self.expr(element.repeat, scope)
            self.primary(element.primary, inner)

    def primary(self, primary, scope: dict) -> None:
        if isinstance(primary, n.Layer):
            target = scope.get(primary.op) or (("param", primary.op) if primary.op in self.params
                                               and primary.op not in REGISTRY else None)
            if target:
                self._add(primary.op, primary.span, target)
            for arg in primary.args:
                self.expr(arg.value, scope)
        elif isinstance(primary, n.Call):
            self._add(primary.block, primary.span, scope.get(primary.block) or ("block", primary.block))
            for value in primary.args:
                self.expr(value, scope)
            for kwarg in primary.kwargs:
                self.expr(kwarg.value, scope)
        elif isinstance(primary, n.Branch):
            for chain in primary.chains:
                self.chain(chain, scope)
        else:
            self.chain(primary.chain, scope)

    def expr(self, expr, scope: dict) -> None:
        if isinstance(expr, n.Name):
            target = scope.get(expr.id)
            if target is None and expr.id in self.params:
                target = ("param", expr.id)
            elif target is None and expr.id in self.spec.blocks:
                target = ("block", expr.id)
            if target:
                self._add(expr.id, expr.span, target)
        elif isinstance(expr, n.Func):
            if expr.name in self.spec.blocks and expr.name not in FUNCTIONS:
                self._add(expr.name, expr.span, ("block", expr.name))
            for arg in expr.args:
                self.expr(arg.value if isinstance(arg, n.KwArg) else arg, scope)
        elif isinstance(expr, n.BinOp):
            self.expr(expr.left, scope)
            self.expr(expr.right, scope)
        elif isinstance(expr, n.Neg):
            self.expr(expr.operand, scope)

    def _add(self, name: str, span: Span, target: tuple, definition: bool = False) -> None:
        """`name` written at the start of `span`."""
        if _local(span):
            self.found.append(Occurrence(name, Span(span.line, span.column, span.line, span.column + len(name)),
                                         target, definition))

    def _declared(self, keyword: str, name: str, span: Span, target: tuple) -> None:
        """`param NAME` / `block NAME`: the name follows the keyword."""
        start = self.offsets[span.line - 1] + span.column - 1
        match = re.compile(rf"{keyword}\s+({re.escape(name)})\b").match(self.text, start)
        if match:
            line = self.text.count("\n", 0, match.start(1)) + 1
            column = match.start(1) - self.offsets[line - 1] + 1
            self._add(name, Span(line, column, line, column), target, definition=True)


def occurrence_at(analysis: Analysis, line: int, column: int) -> Occurrence | None:
    for occ in occurrences(analysis):
        if occ.span.line == line and occ.span.column <= column <= occ.span.end_column:
            return occ
    return None


def definition_span(analysis: Analysis, target: tuple) -> Span | None:
    """Where a target is defined (its span may name an imported file)."""
    spec = analysis.spec
    if target[0] == "param":
        return next((p.span for p in spec.params if p.name == target[1]), None)
    if target[0] in ("block", "blockparam"):
        block = spec.blocks.get(target[1])
        return block.span if block else None
    return None


def import_at(analysis: Analysis, line: int, column: int) -> n.Import | None:
    for imp in analysis.spec.imports if analysis.spec else ():
        if _contains(imp.span, line, column):
            return imp
    return None


def _contains(span: Span, line: int, column: int) -> bool:
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)


# --- hover --------------------------------------------------------------------------------------
def hover(analysis: Analysis, line: int, column: int) -> tuple[str, Span] | None:
    """Markdown describing what is at (line, column), and the span it describes."""
    occ = occurrence_at(analysis, line, column)
    if occ is not None and occ.target[0] == "param":
        return _param_hover(analysis, occ), occ.span
    if occ is not None and occ.target[0] == "blockparam":
        return _blockparam_hover(analysis, occ), occ.span
    found = [v for v in visits(analysis.graph) if _local(v.node.span) and _contains(v.node.span, line, column)]
    if not found:
        if occ is not None and occ.target[0] == "block" and occ.target[1] in analysis.spec.blocks:
            return _signature_block(analysis, occ.target[1]), occ.span
        return None
    span = min((v.node.span for v in found), key=lambda s: (s.end_line - s.line, s.end_column - s.column))
    here = [v for v in found if v.node.span == span]
    node = here[0].node
    if isinstance(node, LayerNode):
        return _layer_hover(here), span
    if isinstance(node, MergeNode):
        return _merge_hover(here), span
    return _call_hover(analysis, here), span


def _layer_hover(here: list[Visit]) -> str:
    visit = here[0]
    node: LayerNode = visit.node
    kind = node.kind
    lines = [f"**{node.text}** — {kind.summary}", ""]
    resolved = layer_text(kind, node.args)
    if resolved != node.text:
        lines.append(f"resolved: `{resolved}`  ")
    out = shape_str(visit.out) if visit.out else "not inferred (see the error)"
    if node.in_shape:
        lines.append(f"shape: `{shape_str(node.in_shape)}` {ARROW} `{out}`  ")
    if visit.out:
        lines.append(f"params: {visit.params:,} · MACs: {visit.macs:,} ({human_count(visit.macs)})  ")
    written = [f"{name}={_value(value)}" for name, value in node.args.items() if value is not None]
    if written:
        lines.append("arguments: " + ", ".join(written) + "  ")
    if node.in_shape:
        text = module_text(kind.name, node.args, node.in_shape)
        lines.append(f"PyTorch: `{text}`" if text else "PyTorch: built by the registry's constructor")
    lines += _instances(here)
    return "\n".join(lines)


def _instances(here: list[Visit]) -> list[str]:
    if len(here) < 2:
        return []
    shapes = list(dict.fromkeys(shape_str(v.out) if v.out else "?" for v in here))
    shown = ", ".join(shapes[:6]) + (", …" if len(shapes) > 6 else "")
    return ["", f"expanded {len(here)} times (shown: the first); outputs: {shown}"]


def _value(value) -> str:
    if value is None:
        return "none"
    return describe(value)


def _merge_hover(here: list[Visit]) -> str:
    node: MergeNode = here[0].node
    lines = [f"**{node.kind.name}** — {node.kind.summary}", ""]
    for i, branch in enumerate(node.branches, 1):
        last = next((item for item in reversed(branch.items) if getattr(item, "out_shape", None)), None)
        lines.append(f"branch {i}: `{shape_str(last.out_shape) if last else '?'}`  ")
    out = here[0].out
    lines.append(f"output: `{shape_str(out) if out else 'not inferred'}` · params {here[0].params:,}")
    lines += _instances(here)
    return "\n".join(lines)


def _signature(block: n.Block, source: str) -> str:
    params = []
    for p in block.params:
        default = block.defaults.get(p)
        params.append(p if default is None else f"{p}={span_text(default.span, source)}")
    return f"{block.name}({', '.join(params)})"


def span_text(span: Span, source: str) -> str:
    offsets = line_offsets(source)
    start = offsets[span.line - 1] + span.column - 1
    end = offsets[span.end_line - 1] + span.end_column - 1
    return " ".join(source[start:end].split())


def _block_source(analysis: Analysis, block: n.Block) -> tuple[str, str]:
    """(where, text) of the file a block is written in."""
    if block.span.origin is None:
        return f"line {block.span.line}", analysis.text
    path, source = block.span.origin
    return f"{path}:{block.span.line}", source


def _signature_block(analysis: Analysis, name: str) -> str:
    block = analysis.spec.blocks[name]
    where, source = _block_source(analysis, block)
    return f"**block {_signature(block, source)}** (defined at {where})"


def _call_hover(analysis: Analysis, here: list[Visit]) -> str:
    visit = here[0]
    call: SeqNode = visit.node
    name = call.text.split("(", 1)[0]
    lines = [_signature_block(analysis, name) if name in analysis.spec.blocks else f"**{call.text}**", ""]
    out = shape_str(visit.out) if visit.out else "not inferred (see the error)"
    lines.append(f"this call: `{call.resolved or call.text}` {ARROW} `{out}`  ")
    lines.append(f"{visit.layers} layers · params {visit.params:,} · MACs {visit.macs:,} "
                 f"({human_count(visit.macs)})")
    rows = list(_expansion(call, ""))
    lines += ["", "expands to:", "```"]
    lines += rows[:MAX_EXPANSION_ROWS]
    if len(rows) > MAX_EXPANSION_ROWS:
        lines.append(f"… {len(rows) - MAX_EXPANSION_ROWS} more")
    lines.append("```")
    lines += _instances(here)
    return "\n".join(lines)


def _expansion(seq: SeqNode, indent: str) -> Iterator[str]:
    for item in seq.items:
        if isinstance(item, LayerNode):
            out = shape_str(item.out_shape) if item.out_shape else "?"
            yield f"{indent}{layer_text(item.kind, item.args):<28} {ARROW} {out}"
        elif isinstance(item, MergeNode):
            yield f"{indent}{item.kind.name}("
            for i, branch in enumerate(item.branches):
                if i:
                    yield f"{indent}|"
                yield from _expansion(branch, indent + "  ")
            out = shape_str(item.out_shape) if item.out_shape else "?"
            yield f"{indent}) {ARROW} {out}"
        elif isinstance(item, SeqNode):
            yield f"{indent}{item.resolved or item.text}"
            yield from _expansion(item, indent + "  ")


def _param_hover(analysis: Analysis, occ: Occurrence) -> str:
    name = occ.target[1]
    param = next((p for p in analysis.spec.params if p.name == name), None)
    if param is None:
        return f"**param {name}**: not defined"
    source = param.span.origin[1] if param.span.origin else analysis.text
    where = f"{param.span.origin[0]}:{param.span.line}" if param.span.origin else f"line {param.span.line}"
    lines = [f"**param {name}** = `{span_text(param.value.span, source)}` (defined at {where})"]
    if name in analysis.spec.import_settings:
        value, imp = analysis.spec.import_settings[name]
        lines.append(f"set to `{span_text(value.span, analysis.text)}` by the import at line {imp.span.line}")
    if name in analysis.scope:
        lines.append(f"value: `{_value(analysis.scope[name])}`")
    return "  \n".join(lines)


def _blockparam_hover(analysis: Analysis, occ: Occurrence) -> str:
    _, block_name, name = occ.target
    block = analysis.spec.blocks.get(block_name)
    if block is None:
        return f"**{name}**"
    _, source = _block_source(analysis, block)
    text = f"**{name}**: parameter of block `{_signature(block, source)}`"
    values = _call_values(analysis, block_name, block.params.index(name))
    if values:
        text += f"  \nvalues at its calls: {', '.join(values)}"
    return text


def _call_values(analysis: Analysis, block: str, index: int) -> list[str]:
    """The resolved value of a block's parameter at each of its calls (from `resolved` texts)."""
    values = []
    for visit in visits(analysis.graph):
        node = visit.node
        if isinstance(node, SeqNode) and node.resolved.startswith(block + "("):
            parts = _split_args(node.resolved[len(block) + 1:-1])
            if index < len(parts) and parts[index] not in values:
                values.append(parts[index])
    return values[:8]


def _split_args(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


# --- document symbols ---------------------------------------------------------------------------
class Symbol(NamedTuple):
    name: str
    kind: str  # "block", "param", "body"
    span: Span
    selection: Span
    detail: str


def symbols(analysis: Analysis) -> list[Symbol]:
    spec = analysis.spec
    if spec is None:
        return []
    names = {o.target: o.span for o in occurrences(analysis) if o.definition}
    found = []
    for block in spec.blocks.values():
        if _local(block.span):
            found.append(Symbol(block.name, "block", block.span, names.get(("block", block.name), block.span),
                                _signature(block, analysis.text)))
    for param in spec.params:
        if _local(param.span):
            found.append(Symbol(param.name, "param", param.span, names.get(("param", param.name), param.span),
                                span_text(param.value.span, analysis.text)))
    if spec.body is not None:
        name = spec.network[0] if spec.network else "network"
        found.append(Symbol(name, "body", spec.body.span, spec.body.span, "the body"))
    return sorted(found, key=lambda s: (s.span.line, s.span.column))


# --- rename -------------------------------------------------------------------------------------
def rename_spans(analysis: Analysis, line: int, column: int) -> tuple[Occurrence, list[Span]] | str:
    """The spans to rewrite to rename the block or param at (line, column), or why it cannot be."""
    occ = occurrence_at(analysis, line, column)
    if occ is None or occ.target[0] not in ("param", "block"):
        return "only a block or a param can be renamed"
    all_occ = occurrences(analysis)
    if not any(o.target == occ.target and o.definition for o in all_occ):
        where = definition_span(analysis, occ.target)
        file = where.origin[0] if where is not None and where.origin else "another file"
        return f"{occ.target[0]} '{occ.name}' is defined in {file}: rename it there"
    return occ, [o.span for o in all_occ if o.target == occ.target]


def check_new_name(analysis: Analysis, target: tuple, new: str) -> str | None:
    """Why `new` cannot name this block or param, or None."""
    if not IDENT.fullmatch(new):
        return f"'{new}' is not a name (letters, digits and _, not starting with a digit)"
    if new in KEYWORDS or new in ("true", "false", "as"):
        return f"'{new}' is a keyword"
    spec = analysis.spec
    taken = {p.name for p in spec.params} | set(spec.blocks)
    if new in taken and new != target[1]:
        return f"'{new}' already names a block or param"
    if new in FUNCTIONS or new in MERGES:
        return f"'{new}' is a function or merge"
    if target[0] == "block" and new in REGISTRY:
        return f"'{new}' is a layer kind"
    return None


# --- completion and signature help ---------------------------------------------------------------
class Item(NamedTuple):
    label: str
    kind: str  # "layer", "merge", "block", "param", "keyword", "argument", "value"
    detail: str
    insert: str


@dataclass
class Context:
    """Where the cursor is: inside which call or merge, and what the current element holds so far."""

    element: str  # the text of the current element (or argument) before the word being typed
    call: str | None  # the name before the innermost open '(' (a block, function, merge or None)
    argument: int  # how many ',' precede the cursor inside that call
    line_start: bool  # only the word being typed is on this line
    top_level: bool  # outside every bracket and block body
    in_train: bool


def context_at(text: str, offset: int) -> Context | None:
    """The completion context at `offset`, or None inside a comment or a string (or a text too large)."""
    if len(text) > MAX_SPEC_BYTES:
        return None
    before = text[:offset]
    line_at = before.rfind("\n") + 1
    line = before[line_at:]
    if re.search(r'#|"[^"]*$', re.sub(r'"[^"\n]*"', "", line)):
        return None
    stack: list[list] = [[None, 0, 0]]  # [name before '(' ("train" for its braces), commas, element start]
    for token in re.finditer(r'#[^\n]*|"[^"\n]*"|->|\btrain\s*\{|[A-Za-z_][A-Za-z0-9_]*[ \t]*\(|[(){}|,]', before):
        word = token.group()
        if word[0] in '#"':
            continue
        if word.startswith("train"):
            stack.append(["train", 0, token.end()])
        elif word in ("(", "{") or word.endswith("("):
            stack.append([word[:-1].strip() or None, 0, token.end()])
        elif word in (")", "}"):
            if len(stack) > 1:
                stack.pop()
        elif word == ",":
            stack[-1][1] += 1
            stack[-1][2] = token.end()
        else:  # -> or |
            stack[-1][2] = token.end()
    name, commas, start = stack[-1]
    word = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", before)
    typed = len(word.group()) if word else 0
    # An element rarely spans lines: one that starts on an earlier line is a new one.
    element = before[max(start, line_at):len(before) - typed]
    return Context(element, name, commas, not line[:len(line) - typed].strip(), len(stack) == 1,
                   any(frame[0] == "train" for frame in stack))


def completions(analysis: Analysis, offset: int) -> list[Item]:
    ctx = context_at(analysis.text, offset)
    if ctx is None or ctx.in_train:
        return []
    spec = analysis.spec
    blocks = dict(spec.blocks) if spec else {}
    params = [p.name for p in spec.params] if spec else []
    element = ctx.element.strip()
    if ctx.top_level and re.fullmatch(r"default", element):
        return _layer_items()
    element = re.sub(r"^default\s+", "", element) if ctx.top_level else element
    head = IDENT.match(element)
    if head and head.group() in REGISTRY and element[head.end():head.end() + 1] in ("", " ", "\t", "\n") \
            and not element.endswith("="):
        return _argument_items(REGISTRY[head.group()], element) + _value_items(params, analysis, offset)
    if element.endswith("="):
        return _value_items(params, analysis, offset) + _layer_items() + _block_items(blocks, analysis)
    if ctx.call in blocks and not element:
        return _block_kwarg_items(blocks[ctx.call]) + _value_items(params, analysis, offset)
    if element:
        return []
    items = _layer_items() + _merge_items() + _block_items(blocks, analysis) + _value_items(params, analysis, offset)
    if ctx.line_start and ctx.top_level:
        items += [Item(k, "keyword", "declaration", k + " ") for k in KEYWORDS]
    return items


def _layer_items() -> list[Item]:
    kinds = {}
    for name, kind in REGISTRY.items():
        kinds[name] = Item(name, "layer", kind.summary if name == kind.name else f"{kind.summary} (alias of "
                           f"{kind.name})", name)
    return list(kinds.values())


def _merge_items() -> list[Item]:
    return [Item(name, "merge", kind.summary, name + "(") for name, kind in MERGES.items()]


def _block_items(blocks: dict, analysis: Analysis) -> list[Item]:
    return [Item(name, "block", _signature(block, _block_source(analysis, block)[1]), name + "(")
            for name, block in blocks.items()]


def _argument_items(kind, element: str) -> list[Item]:
    given = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", element))
    items = []
    for arg in kind.args:
        if arg.name in given:
            continue
        default = "required" if arg.default is REQUIRED else f"default {_value(arg.default)}"
        items.append(Item(arg.name + "=", "argument", f"{kind.name} {arg.name}: {arg.kind}, {default}",
                          arg.name + "="))
    items += [Item(flag, "argument", f"{kind.name} flag: sets {flag}=true", flag) for flag in kind.flags]
    return items


def _block_kwarg_items(block: n.Block) -> list[Item]:
    return [Item(p + "=", "argument", f"parameter of {block.name}", p + "=") for p in block.params]


def _value_items(params: list[str], analysis: Analysis, offset: int) -> list[Item]:
    items = [Item(p, "param", f"param = {_value(analysis.scope[p])}" if p in analysis.scope else "param", p)
             for p in params]
    block = _block_around(analysis, offset)
    if block is not None:
        items += [Item(p, "value", f"parameter of {block.name}", p) for p in block.params]
    return items


def _block_around(analysis: Analysis, offset: int) -> n.Block | None:
    if analysis.spec is None:
        return None
    offsets = line_offsets(analysis.text)
    for block in analysis.spec.blocks.values():
        span = block.span
        if _local(span):
            start = offsets[span.line - 1] + span.column - 1
            end = offsets[span.end_line - 1] + span.end_column - 1
            if start <= offset <= end:
                return block
    return None


def signature_help(analysis: Analysis, offset: int) -> tuple[str, list[tuple[int, int]], int] | None:
    """(label, each parameter's [start, end) in the label, the active parameter) inside a block call."""
    ctx = context_at(analysis.text, offset)
    if ctx is None or analysis.spec is None or ctx.call not in analysis.spec.blocks:
        return None
    block = analysis.spec.blocks[ctx.call]
    label = _signature(block, _block_source(analysis, block)[1])
    ranges, at = [], len(block.name) + 1
    for part in _split_args(label[len(block.name) + 1:-1]):
        ranges.append((at, at + len(part)))
        at += len(part) + 2
    active = ctx.argument
    key = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", ctx.element)
    if key and key.group(1) in block.params:
        active = block.params.index(key.group(1))
    return label, ranges, min(active, max(len(ranges) - 1, 0))
