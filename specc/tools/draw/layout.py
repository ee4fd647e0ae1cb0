"""Placing a Diagram: boxes, arrows and labels in pixels, for svg.py and png.py.

A chain is a column; a merge puts its branches side by side (its width is the
sum of theirs) between a fan-out and the join. The layout works in flow
coordinates, `a` along the flow from the input and `c` across it, so that one
layout serves both orientations; Canvas maps them to the screen (vertical: the
input at the bottom; horizontal: on the left). Text stays horizontal on the
screen and is measured with DejaVu Sans's advance widths (the font the PNG is
rendered with; Verdana's are close), so every label fits its box.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from ...lang.errors import shape_str
from . import Box, Chain, Diagram, Fork, Frame, Note

FONT, SMALL, MONO = 12, 10, 11  # label, tag and shape, diagnostic sizes (px)
BOX_H, PARAMS_H, SMALL_H, TAG_H = 26, 12, 18, 16
PAD_X = 10  # text to box side
GAP = 26  # along the flow between two boxes: room for the arrow and its shape label
FAN = 14  # from a merge's fan-out to its branches
BRANCH_GAP = 14  # between branches side by side
FRAME_PAD, FRAME_TITLE = 8, 14
MARGIN, CAPTION_H = 12, 22

COLOURS = {  # fills per colour group, pastel like the d2l figures
    "conv": "#c6dbef", "pool": "#fdd0a2", "fc": "#c7e9c0", "norm": "#dadaeb", "activation": "#fff3b0",
    "dropout": "#e3e3e3", "reshape": "#f2f2f2", "identity": "#ffffff", "merge": "#fcbba1",
    "other": "#e5d8bd", "block": "#d4eef0", "input": "#ffffff", "annotation": "#ffffff",
}
STROKE, FAILED_STROKE, FAILED_FILL, TEXT, MUTED = "#555555", "#cb181d", "#fee0d2", "#222222", "#666666"

# DejaVu Sans advance widths of the characters 32..126, in thousandths of an em (from the font).
_WIDTHS = (318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636,
           636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775,
           752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390,
           337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612,
           635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838)
_WIDE = 1000  # any other character: as wide as the widest
MONO_WIDTH = 602  # DejaVu Sans Mono: every character


@functools.lru_cache(maxsize=4096)  # a network repeats its labels and shapes many times
def text_width(text: str, size: float, mono: bool = False) -> float:
    if mono:
        return len(text) * MONO_WIDTH * size / 1000
    return sum(_WIDTHS[ord(ch) - 32] if 32 <= ord(ch) < 127 else _WIDE for ch in text) * size / 1000


# --- what the renderers draw, in screen pixels ------------------------------------------------
@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str = STROKE
    width: float = 1.0
    dash: bool = False
    radius: float = 3.0


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    text: str
    size: float
    anchor: str = "middle"  # or "start"
    mono: bool = False
    color: str = TEXT


@dataclass(frozen=True)
class Line:
    points: tuple[tuple[float, float], ...]
    arrow: bool = False  # an arrowhead at the last point
    color: str = STROKE
    dash: bool = False


@dataclass
class Shape:
    """A box (or a frame) with its texts; `meta` names what it stands for (path, role, group, title)."""

    rect: Rect
    texts: list[Text]
    meta: dict


@dataclass
class Picture:
    width: float
    height: float
    caption: Text | None = None
    frames: list[Shape] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    boxes: list[Shape] = field(default_factory=list)  # layers, joins, blocks, the input, tags
    labels: list[Text] = field(default_factory=list)  # output shapes on the arrows
    notes: list[Shape] = field(default_factory=list)


class Canvas:
    """Maps flow coordinates to the screen and collects what is drawn."""

    def __init__(self, vertical: bool, along: float, offset: tuple[float, float], picture: Picture):
        self.vertical, self.along, self.picture = vertical, along, picture
        self.x0, self.y0 = offset

    def point(self, a: float, c: float) -> tuple[float, float]:
        if self.vertical:
            return (self.x0 + c, self.y0 + self.along - a)
        return (self.x0 + a, self.y0 + c)

    def rect(self, a: float, c: float, along: float, across: float) -> tuple[float, float, float, float]:
        if self.vertical:
            return (self.x0 + c, self.y0 + self.along - a - along, across, along)
        return (self.x0 + a, self.y0 + c, along, across)

    def line(self, points, arrow: bool = False, color: str = STROKE, dash: bool = False) -> None:
        self.picture.lines.append(Line(tuple(self.point(a, c) for a, c in points), arrow, color, dash))

    def shape_label(self, a: float, c: float, shape: tuple | None) -> None:
        """A shape beside an arrow along the flow: right of it (vertical) or above it (horizontal)."""
        if shape is None:
            return
        x, y = self.point(a, c)
        if self.vertical:
            self.picture.labels.append(Text(x + 5, y + SMALL * 0.35, shape_str(shape), SMALL, "start", color=MUTED))
        else:
            self.picture.labels.append(Text(x, y - 4, shape_str(shape), SMALL, color=MUTED))


# --- the layout of each element ---------------------------------------------------------------
class Placed:
    """An element's extent in flow coordinates and where arrows enter and leave it (along offsets)."""

    along: float = 0.0
    across: float = 0.0
    entry: float = 0.0
    exit: float = 0.0
    head_in: bool = True  # an arrow into it ends in an arrowhead (not for a fan-out's bar)
    stretchable: bool = False

    def paint(self, canvas: Canvas, a: float, c: float) -> None:
        raise NotImplementedError


class Layout:
    def __init__(self, vertical: bool, params: bool):
        self.vertical, self.params = vertical, params

    def extent(self, w: float, h: float) -> tuple[float, float]:
        """(along, across) of a screen size."""
        return (h, w) if self.vertical else (w, h)

    def label_gap(self, shape: tuple | None, least: float = GAP) -> float:
        """Room along the flow for an arrow with a shape label."""
        if self.vertical or shape is None:
            return least
        return max(least, text_width(shape_str(shape), SMALL) + 16)

    def label_across(self, shape: tuple | None) -> float:
        """Room across the flow a shape label needs around an arrow on the centre line."""
        if shape is None:
            return 0.0
        return 2 * (text_width(shape_str(shape), SMALL) + 8) if self.vertical else 2 * (SMALL + 6)

    def element(self, item) -> Placed:
        if isinstance(item, Box):
            return BoxPlaced(self, item)
        if isinstance(item, Fork):
            return ForkPlaced(self, item)
        if isinstance(item, Frame):
            return FramePlaced(self, item)
        if isinstance(item, Note):
            return NotePlaced(self, item)
        raise TypeError(item)


class BoxPlaced(Placed):
    """A box and the activations attached after it."""

    def __init__(self, layout: Layout, box: Box):
        self.layout, self.box = layout, box
        self.font = SMALL if box.small else FONT
        self.params_line = f"{box.params:,} params" if layout.params and box.params else None
        width = text_width(box.label, self.font) + 2 * (PAD_X if not box.small else 6)
        if self.params_line:
            width = max(width, text_width(self.params_line, SMALL) + 2 * PAD_X)
        height = SMALL_H if box.small else BOX_H + (PARAMS_H if self.params_line else 0)
        self.main = list(layout.extent(width, height))
        self.tags = [layout.extent(text_width(tag.label, SMALL) + 12, TAG_H if layout.vertical else height)
                     for tag in box.tags]
        self.along = self.main[0] + sum(t[0] for t in self.tags)
        self.across = max([self.main[1]] + [t[1] for t in self.tags])
        self.exit = self.along
        self.stretchable = not box.small

    def paint(self, canvas: Canvas, a: float, c: float) -> None:
        box = self.box
        x, y, w, h = canvas.rect(a, c, self.main[0], self.across)
        lines = [(box.label, self.font)] + ([(self.params_line, SMALL)] if self.params_line else [])
        canvas.picture.boxes.append(_shape(box, Rect(x, y, w, h, *_paint(box)), _centred(lines, x, y, w, h)))
        a += self.main[0]
        for tag, (along, _) in zip(box.tags, self.tags):
            x, y, w, h = canvas.rect(a, c, along, self.across)
            canvas.picture.boxes.append(_shape(tag, Rect(x, y, w, h, *_paint(tag), radius=2),
                                               _centred([(tag.label, SMALL)], x, y, w, h)))
            a += along


def _paint(box: Box) -> tuple[str, str, float]:
    if box.failed:
        return (FAILED_FILL, FAILED_STROKE, 2.5)
    return (COLOURS.get(box.group, COLOURS["other"]), STROKE, 1.0)


def _shape(box: Box, rect: Rect, texts: list[Text]) -> Shape:
    return Shape(rect, texts, {"path": box.path, "role": box.role, "group": box.group, "title": box.title,
                               "failed": box.failed})


def _centred(lines: list[tuple[str, float]], x: float, y: float, w: float, h: float) -> list[Text]:
    """Lines of text centred in a rectangle, each baseline placed by its font size."""
    heights = [size * 1.25 for _, size in lines]
    top = y + (h - sum(heights)) / 2
    texts = []
    for (text, size), height in zip(lines, heights):
        texts.append(Text(x + w / 2, top + height * 0.5 + size * 0.36, text, size))
        top += height
    return texts


class ChainPlaced(Placed):
    """A column: elements one after the other, an arrow with the shape between each two."""

    def __init__(self, layout: Layout, chain: Chain):
        self.layout = layout
        self.items = chain.items
        self.parts = [layout.element(item) for item in chain.items]
        widest = max([p.across for p in self.parts if p.stretchable], default=0.0)
        for part in self.parts:  # boxes of one column share its width, as in the figures
            if part.stretchable:
                part.across = widest
        self.gaps = [self._gap(item, after) for item, after in zip(chain.items, chain.items[1:])]
        needs = [layout.label_across(item.out_shape) for item in chain.items[:-1]]
        self.across = max([p.across for p in self.parts] + needs + [20.0])
        self.along = sum(p.along for p in self.parts) + sum(self.gaps)
        if self.parts:
            self.entry, self.head_in = self.parts[0].entry, self.parts[0].head_in
            self.exit = self.along - self.parts[-1].along + self.parts[-1].exit
        else:
            self.head_in = False

    def _gap(self, item, after) -> float:
        if isinstance(after, Note):
            return FAN
        return self.layout.label_gap(item.out_shape)

    def paint(self, canvas: Canvas, a: float, c: float) -> None:
        centre = c + self.across / 2
        for i, (item, part) in enumerate(zip(self.items, self.parts)):
            part.paint(canvas, a, centre - part.across / 2)
            if i + 1 == len(self.parts):
                break
            start, edge = a + part.exit, a + part.along  # a frame's exit lies inside it
            a = edge + self.gaps[i]
            after = self.parts[i + 1]
            end = a + after.entry
            if isinstance(self.items[i + 1], Note):
                canvas.line([(start, centre), (end, centre)], color=FAILED_STROKE, dash=True)
            else:
                canvas.line([(start, centre), (end, centre)], arrow=after.head_in)
                canvas.shape_label((edge + a) / 2, centre, item.out_shape)  # in the gap, clear of frames


class ForkPlaced(Placed):
    """A merge: a fan-out bar, the branches side by side, the bar joining them, the join's box."""

    head_in = False

    def __init__(self, layout: Layout, fork: Fork):
        self.layout, self.fork = layout, fork
        self.branches = [ChainPlaced(layout, branch) for branch in fork.branches]
        self.merge = BoxPlaced(layout, fork.merge) if fork.merge else None
        share = [branch.in_shape if fork.share else None for branch in fork.branches]
        tails = [branch.out_shape if fork.merge else None for branch in fork.branches]
        self.widths = [max(b.across, layout.label_across(s), layout.label_across(t))
                       for b, s, t in zip(self.branches, share, tails)]
        self.fan = max([FAN] + [layout.label_gap(s) for s in share if s is not None])
        spread = sum(self.widths) + BRANCH_GAP * max(0, len(self.widths) - 1)
        self.across = max(spread, self.merge.across if self.merge else 0.0, 20.0)
        region = max([b.along for b in self.branches], default=0.0)
        self.bar = self.fan + region  # where the joining bar runs
        if self.merge:
            # past each branch's end (a frame ends beyond its exit), with room for its shape label
            self.bar = max([self.bar] + [self.fan + b.along + layout.label_gap(t, least=22)
                                         for b, t in zip(self.branches, tails)])
            self.merge_at = self.bar + FAN
            self.along = self.merge_at + self.merge.along
            self.exit = self.merge_at + self.merge.exit
        else:
            self.along = self.exit = self.bar
        self.shares, self.tails = share, tails

    def paint(self, canvas: Canvas, a: float, c: float) -> None:
        centre = c + self.across / 2
        left = centre - (sum(self.widths) + BRANCH_GAP * max(0, len(self.widths) - 1)) / 2
        centres = []
        for branch, width, share, tail in zip(self.branches, self.widths, self.shares, self.tails):
            mid = left + width / 2
            centres.append(mid)
            start = a + self.fan
            if branch.parts:
                canvas.line([(a, mid), (start + branch.entry, mid)], arrow=branch.head_in)
                branch.paint(canvas, start, mid - branch.across / 2)
            else:  # a branch repeated 0 times passes its input straight on
                canvas.line([(a, mid), (start, mid)])
            canvas.shape_label(a + self.fan / 2, mid, share)
            if self.merge:
                canvas.line([(start + branch.exit, mid), (a + self.bar, mid)])
                end = start + branch.along
                canvas.shape_label(end + self.layout.label_gap(tail, least=22) / 2, mid, tail)
            left += width + BRANCH_GAP
        span = centres + [centre]
        if not centres:  # a split that could not divide its input: straight to its (failed) join
            canvas.line([(a, centre), (a + self.bar, centre)])
        if len(span) > 1:
            canvas.line([(a, min(span)), (a, max(span))])
        if self.merge:
            canvas.line([(a + self.bar, min(span)), (a + self.bar, max(span))])
            canvas.line([(a + self.bar, centre), (a + self.merge_at + self.merge.entry, centre)], arrow=True)
            self.merge.paint(canvas, a + self.merge_at, centre - self.merge.across / 2)


class FramePlaced(Placed):
    """An expanded block call: its layers inside a dashed frame, the call written at its top left."""

    def __init__(self, layout: Layout, frame: Frame):
        self.layout, self.frame = layout, frame
        self.inner = ChainPlaced(layout, frame.chain)
        title = text_width(frame.title, SMALL) + 4
        if layout.vertical:  # the title above the layers, left of the arrow that leaves up the middle
            self.across = max(self.inner.across + 2 * FRAME_PAD, 2 * (title + FRAME_PAD))
            self.along = self.inner.along + 2 * FRAME_PAD + FRAME_TITLE
            self.start = FRAME_PAD
        else:  # the title above the layers; the same room below keeps the arrows on the centre line
            self.across = self.inner.across + 2 * (FRAME_PAD + FRAME_TITLE)
            self.along = max(self.inner.along, title) + 2 * FRAME_PAD
            self.start = (self.along - self.inner.along) / 2
        self.entry = self.start + self.inner.entry
        self.exit = self.start + self.inner.exit
        self.head_in = self.inner.head_in

    def paint(self, canvas: Canvas, a: float, c: float) -> None:
        x, y, w, h = canvas.rect(a, c, self.along, self.across)
        title = Text(x + FRAME_PAD / 2 + 2, y + FRAME_PAD / 2 + SMALL, self.frame.title, SMALL, "start", color=MUTED)
        canvas.picture.frames.append(Shape(Rect(x, y, w, h, "none", "#8c8c8c", 1.0, dash=True, radius=6), [title],
                                           {"path": self.frame.path, "role": "frame", "title": self.frame.title}))
        self.inner.paint(canvas, a + self.start, c + (self.across - self.inner.across) / 2)


class NotePlaced(Placed):
    """The diagnostic in a red-edged box, in a fixed-width font so that its caret lines up."""

    head_in = False

    def __init__(self, layout: Layout, note: Note):
        self.note = note
        width = max(text_width(line, MONO, mono=True) for line in note.lines) + 16
        self.size = (width, len(note.lines) * MONO * 1.3 + 12)
        self.along, self.across = layout.extent(*self.size)
        self.exit = self.along

    def paint(self, canvas: Canvas, a: float, c: float) -> None:
        x, y, w, h = canvas.rect(a, c, self.along, self.across)
        texts = [Text(x + 8, y + 6 + MONO * (1.3 * i + 1.0), line, MONO, "start", mono=True, color="#67000d")
                 for i, line in enumerate(self.note.lines)]
        canvas.picture.notes.append(Shape(Rect(x, y, w, h, "#fff5f0", FAILED_STROKE, 1.5), texts,
                                          {"role": "note", "title": "\n".join(self.note.lines)}))


def layout(drawing: Diagram, horizontal: bool = False) -> Picture:
    """Place `drawing`: the input at the bottom, or on the left when `horizontal`."""
    engine = Layout(not horizontal, drawing.params_shown)
    body = ChainPlaced(engine, drawing.chain)
    tail = engine.label_gap(drawing.output) if drawing.output is not None else 0.0
    along, across = body.along + tail, max(body.across, engine.label_across(drawing.output))
    caption = text_width(drawing.caption, SMALL + 1)
    width, height = (across, along) if engine.vertical else (along, across)
    picture = Picture(max(width, caption) + 2 * MARGIN, height + 2 * MARGIN + CAPTION_H)
    picture.caption = Text(MARGIN, MARGIN + SMALL + 2, drawing.caption, SMALL + 1, "start", color=MUTED)
    left = MARGIN + (picture.width - 2 * MARGIN - width) / 2
    canvas = Canvas(engine.vertical, along, (left, MARGIN + CAPTION_H), picture)
    c = (across - body.across) / 2
    body.paint(canvas, 0.0, c)
    if drawing.output is not None:  # the network's output leaves the last box
        centre = c + body.across / 2
        canvas.line([(body.exit, centre), (along, centre)], arrow=True)
        canvas.shape_label((body.along + along) / 2, centre, drawing.output)
    return picture


def arrowhead(points: tuple[tuple[float, float], ...], size: float = 6.0) -> tuple[tuple[float, float], ...]:
    """The triangle at the end of a line, pointing along its last segment."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    bx, by = x1 - ux * size, y1 - uy * size
    return ((x1, y1), (bx - uy * size * 0.45, by + ux * size * 0.45), (bx + uy * size * 0.45, by - ux * size * 0.45))
