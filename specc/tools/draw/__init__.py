"""`specc draw`: a network drawn the way the d2l figures draw it.

One box per layer, labelled as the figures read (`3x3 conv, 384, pad 1`), the
output shape on each arrow, the input at the bottom (or on the left), the
branches of a merge side by side joined at their merge box, activations
attached to the layer before them. A block call is a dashed frame around its
layers, or, at `depth`, one box (`inception(64, 96, 128, 16, 32, 32)`, `×N` for
a repetition). A spec whose shapes do not check is drawn up to the failing
node, which is highlighted, with the diagnostic after it.

This module turns the analysed tree (`Network.graph`, or a network.Partial)
into a Diagram; layout.py places it, svg.py and dot.py write it without
torch, png.py renders it with matplotlib (imported only there).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ...lang.errors import SpecError, shape_str
from ...lang.expand import CheckNode, LayerNode, MergeNode, SeqNode
from ...lang.files import Unreadable, read_spec
from ...lang.registry import Args
from ...network import Network, Partial, _partial, load

MAX_BOXES = 5_000  # 4 times the most a shipped spec draws at full depth; more is unreadable anyway
MAX_LABEL = 64  # characters of a label (a block call's written arguments can be long)
MAX_NOTE_LINES, MAX_NOTE_WIDTH = 12, 100  # the diagnostic drawn under a failing node


class DrawError(Exception):
    """A drawing specc refuses to make (too many boxes, a PNG too large); the message says what to do."""


@dataclass
class Box:
    """A layer, a merge's join, a collapsed block call, the input or a failing `: SHAPE` annotation."""

    label: str
    group: str  # the colour: conv, pool, fc, norm, activation, ..., merge, block, input
    role: str  # layer, merge, block, input, annotation
    path: str = ""  # the module path (`inception1.concat1`), as `specc summary` shows it
    shape: tuple | None = None  # the output shape; None for a node that failed
    params: int = 0
    title: str = ""  # what the spec says, for a tooltip
    tags: list["Box"] = field(default_factory=list)  # activations drawn attached after this box
    failed: bool = False
    small: bool = False  # an activation or identity on its own, drawn small
    covers: tuple[str, ...] = ()  # a collapsed block: the paths of the calls it stands for (`×N`: N of them)

    @property
    def out_shape(self) -> tuple | None:
        return self.tags[-1].shape if self.tags else self.shape


@dataclass
class Chain:
    """Elements one after the other; an empty chain (a branch repeated 0 times) passes its input on."""

    in_shape: tuple | None
    items: list[Any] = field(default_factory=list)

    @property
    def out_shape(self) -> tuple | None:
        return self.items[-1].out_shape if self.items else self.in_shape


@dataclass
class Fork:
    """A merge: its branches side by side, then the join (None when a branch failed before it)."""

    branches: list[Chain]
    merge: Box | None
    share: bool  # split: each branch gets a share of the channels, shown on its incoming arrow

    @property
    def out_shape(self) -> tuple | None:
        return self.merge.out_shape if self.merge else None


@dataclass
class Frame:
    """An expanded block call: a dashed frame titled with the call around its layers."""

    title: str
    path: str
    chain: Chain

    @property
    def out_shape(self) -> tuple | None:
        return self.chain.out_shape


@dataclass
class Note:
    """The diagnostic, drawn after the node that failed."""

    lines: list[str]
    out_shape: tuple | None = None


@dataclass
class Diagram:
    name: str
    caption: str  # `alexnet: 1x224x224 -> 10, 46,764,746 params`
    chain: Chain  # the input box first
    output: tuple | None  # the network's output shape; None when it failed
    params_shown: bool = False


def _shallow(make):
    """Drawing recurses once per level of block calls: a spec nested deeper than Python's stack allows
    is drawn collapsed instead (it loads, since inference needs fewer frames per level)."""
    @functools.wraps(make)
    def guarded(*args, **kwargs):
        try:
            return make(*args, **kwargs)
        except RecursionError:
            raise DrawError("block calls nest too deeply to draw every layer: "
                            "draw them as one box each with --depth N") from None
    return guarded


@_shallow
def diagram(net: Network, depth: int | None = None, params: bool = False) -> Diagram:
    """The drawing of a checked network; `depth` N draws block calls nested N deep as one box each."""
    builder = _Builder(depth, failed=None, note=None)
    chain = builder.top(net.graph, net.input_shape)
    caption = (f"{net.name}: {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}, "
               f"{net.param_count:,} params")
    return Diagram(net.name, caption, chain, tuple(net.output_shape), params)


@_shallow
def partial_diagram(partial: Partial, depth: int | None = None, params: bool = False) -> Diagram:
    """The drawing of a spec whose shapes do not check: up to the failing node, then the diagnostic."""
    builder = _Builder(depth, failed=partial.failed, note=_note_lines(str(partial.error)))
    chain = builder.top(partial.graph, partial.input_shape)
    caption = f"{partial.name}: {shape_str(partial.input_shape)} -> error at line {partial.error.line or '?'}"
    return Diagram(partial.name, caption, chain, None, params)


def _note_lines(text: str) -> list[str]:
    """The diagnostic's lines: messages and hints wrapped, the excerpt and caret clipped (wrapping them
    would move the caret off its column)."""
    import textwrap

    lines = []
    for line in text.split("\n"):
        if line.startswith(" "):
            lines.append(_clip(line, MAX_NOTE_WIDTH))
        else:
            lines += textwrap.wrap(line, MAX_NOTE_WIDTH, subsequent_indent="    ") or [""]
    if len(lines) > MAX_NOTE_LINES:
        lines = lines[:MAX_NOTE_LINES - 1] + ["..."]
    return lines


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Builder:
    def __init__(self, depth: int | None, failed: Any, note: list[str] | None):
        self.depth, self.failed, self.note = depth, failed, note
        self.stopped = False  # past the failing node: nothing more is drawn
        self.boxes = 0
        self.on_failing_path: set[int] = set()  # ids of the sequences and merges holding the failed node

    def top(self, graph: SeqNode, input_shape: tuple) -> Chain:
        if self.failed is not None:
            _ancestors(graph, self.failed, [], self.on_failing_path)
        chain = Chain(tuple(input_shape))
        chain.items.append(self._box(Box("input", "input", "input", shape=tuple(input_shape),
                                         title=f"input {shape_str(input_shape)}")))
        self._items(graph.items, "", 0, chain)
        return chain

    def _box(self, box: Box) -> Box:
        self.boxes += 1
        if self.boxes > MAX_BOXES:
            raise DrawError(f"the drawing would have more than {MAX_BOXES:,} boxes: "
                            f"draw blocks as one box each with --depth 1 (or 2, ...)")
        return box

    def chain(self, seq: SeqNode, prefix: str, level: int, in_shape: tuple | None) -> Chain:
        chain = Chain(in_shape)
        self._items(seq.items, prefix, level, chain)
        return chain

    def _items(self, items: list, prefix: str, level: int, chain: Chain) -> None:
        i = 0
        while i < len(items) and not self.stopped:
            item = items[i]
            if isinstance(item, LayerNode):
                self._layer(item, _join(prefix, item.name), chain)
            elif isinstance(item, MergeNode):
                self._merge(item, _join(prefix, item.name), level, chain)
            elif isinstance(item, SeqNode):
                if self.depth is not None and level + 1 >= self.depth:
                    run = _repetition(items, i)
                    self._collapsed(run, prefix, chain)
                    i += len(run) - 1
                else:
                    self._frame(item, _join(prefix, item.name), level + 1, chain)
            elif isinstance(item, CheckNode) and item is self.failed:
                written = "x".join("?" if d is None else str(d) for d in item.dims)
                self._fail(chain, self._box(Box(f": {written}", "annotation", "annotation", failed=True,
                                                title=f"shape annotation at line {item.span.line}")))
            i += 1

    def _layer(self, node: LayerNode, path: str, chain: Chain) -> None:
        failed = node is self.failed
        figure = node.kind.figure
        label = figure.label(node.args) if figure.label else node.kind.name
        box = self._box(Box(_clip(label, MAX_LABEL), figure.group, "layer", path, None if failed else node.out_shape,
                            0 if failed else _params(node), f"{node.text} (line {node.span.line})", failed=failed))
        owner = _attach_to(chain) if figure.group == "activation" and not failed else None
        if owner is not None:
            owner.tags.append(box)
        else:
            box.small = figure.group in ("activation", "identity")
            chain.items.append(box)
        if failed:
            self._fail(chain, None)

    def _merge(self, node: MergeNode, path: str, level: int, chain: Chain) -> None:
        in_shape = chain.out_shape
        shares = _shares(node, in_shape)
        fork = Fork([], None, share=node.kind.name == "split")
        chain.items.append(fork)
        if shares is not None and (node is not self.failed or _visited(node)):
            for branch, share in zip(node.branches, shares):
                if self.stopped:
                    break
                fork.branches.append(self.chain(branch, _join(path, branch.name), level, share))
        if self.stopped:
            return
        failed = node is self.failed
        label = node.kind.figure.label(Args()) if node.kind.figure.label else node.kind.name
        fork.merge = self._box(Box(label, node.kind.figure.group, "merge", path, None if failed else node.out_shape,
                                   title=f"{node.kind.name}(...) (line {node.span.line})", failed=failed))
        if failed:
            self._fail(chain, None)

    def _frame(self, seq: SeqNode, path: str, level: int, chain: Chain) -> None:
        frame = Frame(_clip(_call_text(seq), MAX_LABEL), path, Chain(chain.out_shape))
        chain.items.append(frame)
        self._items(seq.items, path, level, frame.chain)

    def _collapsed(self, run: list[SeqNode], prefix: str, chain: Chain) -> None:
        """One box for a block call (and the calls repeating it right after), `×N` for N of them."""
        reached = []
        failed = False
        for seq in run:
            reached.append(seq)
            if id(seq) in self.on_failing_path:
                failed = True
                break
        first = reached[0]
        texts = {_call_text(seq) for seq in reached}
        label = texts.pop() if len(texts) == 1 else first.text  # calls of a ramp differ: show it as written
        if len(reached) > 1:
            label = f"{_clip(label, MAX_LABEL - 4)} ×{len(reached)}"
        layers = [layer for seq in reached for layer in _layers(seq)]
        shape = None if failed else _last_shape(reached[-1], chain.out_shape)
        params = sum(_params(layer) for layer in layers if layer.out_shape)
        repeat = f" * {len(reached)}" if len(reached) > 1 else ""
        box = self._box(Box(_clip(label, MAX_LABEL), "block", "block", _join(prefix, first.name), shape, params,
                            f"{first.text}{repeat} (line {first.span.line})" if first.span else first.text,
                            failed=failed, covers=tuple(_join(prefix, seq.name) for seq in reached)))
        chain.items.append(box)
        if failed:
            self._fail(chain, None)

    def _fail(self, chain: Chain, box: Box | None) -> None:
        if box is not None:
            chain.items.append(box)
        if self.note:
            chain.items.append(Note(self.note))
        self.stopped = True


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _call_text(seq: SeqNode) -> str:
    """A block call with its argument values (`vgg(2, 512)`) where the tree knows them, else as written."""
    return getattr(seq, "resolved", "") or seq.text or seq.name


def _repetition(items: list, start: int) -> list[SeqNode]:
    """The block call at `start` and the ones right after it that repeat it (`dense(32) * 4`)."""
    first = items[start]
    run = [first]
    for item in items[start + 1:]:
        if not (isinstance(item, SeqNode) and item.span == first.span and item.text == first.text):
            break
        run.append(item)
    return run


def _attach_to(chain: Chain) -> Box | None:
    """The box an activation is drawn attached to: the layer, block or join just before it."""
    last = chain.items[-1] if chain.items else None
    if isinstance(last, Fork):
        last = last.merge
    if isinstance(last, Box) and last.role in ("layer", "block", "merge") and not last.small:
        return last
    return None


def _params(node: LayerNode) -> int:
    return node.kind.cost(node.args, node.in_shape, node.out_shape).params


def _shares(node: MergeNode, in_shape: tuple | None) -> list[tuple] | None:
    """Each branch's input shape, or None when the merge cannot divide its input (a failed split)."""
    if in_shape is None:
        return None
    try:
        return [tuple(s) for s in node.kind.inputs(in_shape, len(node.branches))]
    except Exception:  # the registry's LayerError: the failure the diagnostic explains
        return None


def _layers(seq: SeqNode):
    for item in seq.items:
        if isinstance(item, LayerNode):
            yield item
        elif isinstance(item, SeqNode):
            yield from _layers(item)
        elif isinstance(item, MergeNode):
            for branch in item.branches:
                yield from _layers(branch)


def _visited(node: MergeNode) -> bool:
    """Whether inference ran the merge's branches (it fails before them when it cannot split its input)."""
    return any(layer.in_shape for branch in node.branches for layer in _layers(branch))


def _last_shape(seq: SeqNode, before: tuple | None) -> tuple | None:
    """The shape a sequence outputs: its last layer's or merge's; its input's when it has none."""
    for item in reversed(seq.items):
        if isinstance(item, (LayerNode, MergeNode)):
            return tuple(item.out_shape)
        if isinstance(item, SeqNode):
            return _last_shape(item, before)
    return before


def _ancestors(seq, target, stack: list[int], into: set[int]) -> bool:
    """Collect into `into` the ids of every sequence and merge on the way from `seq` to `target`."""
    stack.append(id(seq))
    for item in seq.items:
        if item is target:
            into.update(stack)
            return True
        if isinstance(item, SeqNode) and _ancestors(item, target, stack, into):
            return True
        if isinstance(item, MergeNode):
            stack.append(id(item))
            if any(_ancestors(branch, target, stack, into) for branch in item.branches):
                return True
            stack.pop()
    stack.pop()
    return False


# --- the public entry points -----------------------------------------------------------------
FORMATS = ("svg", "png", "dot")


class Drawn(NamedTuple):
    """What `specc draw` makes of a spec: the file's content (None when there is nothing to draw,
    a spec that does not parse) and the spec's error, if it has one."""

    content: str | bytes | None
    error: SpecError | None


def draw_spec(path: str, fmt: str = "svg", depth: int | None = None, horizontal: bool = False,
              params: bool = False, input_shape: tuple[int, ...] | None = None,
              overrides: dict[str, Any] | None = None) -> Drawn:
    """Draw the spec at `path`, or as much of it as checks; DrawError for a drawing too large to make."""
    overrides = overrides or {}
    try:
        net = load(path, input_shape=input_shape, **overrides)
    except SpecError as err:
        partial = _partial_file(path, input_shape, overrides)
        if partial is None:  # the mistake is before the shapes: there is no tree to draw
            return Drawn(None, err)
        return Drawn(render(partial_diagram(partial, depth, params), fmt, horizontal), partial.error)
    return Drawn(render(diagram(net, depth, params), fmt, horizontal), None)


def _partial_file(path: str, input_shape, overrides: dict[str, Any]) -> Partial | None:
    try:
        text = read_spec(path)
    except Unreadable:
        return None
    return _partial(text, str(path), input_shape, **overrides)


def render(drawing: Diagram, fmt: str, horizontal: bool = False) -> str | bytes:
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}, not one of {FORMATS}")
    return {"svg": to_svg, "png": to_png, "dot": to_dot}[fmt](drawing, horizontal)


@_shallow
def to_svg(drawing: Diagram, horizontal: bool = False) -> str:
    from .layout import layout
    from .svg import svg
    return svg(layout(drawing, horizontal))


@_shallow
def to_dot(drawing: Diagram, horizontal: bool = False) -> str:
    from .dot import dot
    return dot(drawing, horizontal)


@_shallow
def to_png(drawing: Diagram, horizontal: bool = False) -> bytes:
    from .layout import layout
    from .png import png  # imports matplotlib
    return png(layout(drawing, horizontal))


def fitting_diagram(net: Network, max_boxes: int = 400, params: bool = False) -> tuple[Diagram, int | None]:
    """The deepest drawing of `net` with at most `max_boxes` boxes (a notebook shows it inline) and its depth."""
    depth = None
    while True:
        try:
            drawing = diagram(net, depth, params)
        except DrawError:
            drawing = None
        if drawing is not None and (_count(drawing.chain) <= max_boxes or depth == 1):
            return drawing, depth
        depth = _nesting(net.graph) if depth is None else depth - 1  # collapse the innermost calls first
        if depth < 1:
            return diagram(net, 1, params), 1


def _count(chain: Chain) -> int:
    total = 0
    for item in chain.items:
        if isinstance(item, Box):
            total += 1 + len(item.tags)
        elif isinstance(item, Frame):
            total += _count(item.chain)
        elif isinstance(item, Fork):
            total += sum(_count(b) for b in item.branches) + (1 + len(item.merge.tags) if item.merge else 0)
    return total


def _nesting(seq: SeqNode) -> int:
    """How deep block calls nest in the tree (0: no block calls)."""
    deepest = 0
    for item in seq.items:
        if isinstance(item, SeqNode):
            deepest = max(deepest, 1 + _nesting(item))
        elif isinstance(item, MergeNode):
            deepest = max([deepest] + [_nesting(branch) for branch in item.branches])
    return deepest
