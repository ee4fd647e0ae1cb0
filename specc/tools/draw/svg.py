"""A placed drawing (layout.Picture) as SVG text: real <text> labels, one <g> per box.

Every box is `<g class="layer|merge|block|input|annotation" data-path="..."
data-kind="...">` holding its <title> (the spec's text and line, shown on
hover), its <rect> and its <text>, so tools and tests can find each layer.
"""
from __future__ import annotations

import re
from xml.sax.saxutils import escape as _escape, quoteattr as _quoteattr

from .layout import Line, Picture, Rect, Shape, Text, arrowhead

SANS = "DejaVu Sans, Verdana, Arial, sans-serif"
# XML 1.0 refuses control characters (a form feed in a block call written over lines): shown as spaces.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    return _escape(_CONTROL.sub(" ", text))


def quoteattr(text: str) -> str:
    return _quoteattr(_CONTROL.sub(" ", text))
MONO_FONTS = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def svg(picture: Picture) -> str:
    w, h = _n(picture.width), _n(picture.height)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           f'font-family={quoteattr(SANS)}>',
           f'<rect class="background" x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>']
    if picture.caption:
        out.append(_text(picture.caption, 'class="caption" '))
    out += [_shape(frame, "frame") for frame in picture.frames]
    out += [_line(line) for line in picture.lines]
    out += [_shape(box, box.meta["role"]) for box in picture.boxes]
    out += [_text(label, 'class="shape" ') for label in picture.labels]
    out += [_shape(note, "note") for note in picture.notes]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _n(value: float) -> str:
    return f"{value:.1f}"


def _shape(shape: Shape, role: str) -> str:
    meta = shape.meta
    attrs = f'class="{role}{" failed" if meta.get("failed") else ""}"'
    if meta.get("path"):
        attrs += f' data-path={quoteattr(meta["path"])}'
    if meta.get("group"):
        attrs += f' data-kind={quoteattr(meta["group"])}'
    parts = [f"<g {attrs}>"]
    if meta.get("title"):
        parts.append(f"<title>{escape(meta['title'])}</title>")
    parts.append(_rect(shape.rect))
    parts += [_text(text) for text in shape.texts]
    parts.append("</g>")
    return "".join(parts)


def _rect(r: Rect) -> str:
    dash = ' stroke-dasharray="5 3"' if r.dash else ""
    return (f'<rect x="{_n(r.x)}" y="{_n(r.y)}" width="{_n(r.w)}" height="{_n(r.h)}" rx="{_n(r.radius)}" '
            f'fill="{r.fill}" stroke="{r.stroke}" stroke-width="{_n(r.width)}"{dash}/>')


def _text(t: Text, attrs: str = "") -> str:
    font = f' font-family={quoteattr(MONO_FONTS)} xml:space="preserve"' if t.mono else ""
    return (f'<text {attrs}x="{_n(t.x)}" y="{_n(t.y)}" font-size="{_n(t.size)}" text-anchor="{t.anchor}" '
            f'fill="{t.color}"{font}>{escape(t.text)}</text>')


def _line(line: Line) -> str:
    points = " ".join(f"{_n(x)},{_n(y)}" for x, y in line.points)
    dash = ' stroke-dasharray="4 3"' if line.dash else ""
    out = f'<polyline points="{points}" fill="none" stroke="{line.color}" stroke-width="1.2"{dash}/>'
    if line.arrow:
        head = " ".join(f"{_n(x)},{_n(y)}" for x, y in arrowhead(line.points))
        out += f'<polygon points="{head}" fill="{line.color}"/>'
    return out
