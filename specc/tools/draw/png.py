"""A placed drawing (layout.Picture) as PNG, rendered with matplotlib from the same layout as the SVG.

Only `specc draw -o FILE.png` imports this (and so matplotlib). The figure is
set up so that one layout pixel is one point: font sizes and line widths read
as in the SVG, and the resolution is a scale on top.
"""
from __future__ import annotations

import io
import math

from . import DrawError
from .layout import Picture, arrowhead

SCALE = 2.0  # pixels per layout pixel: sharp on high-density screens
MIN_SCALE = 0.5  # below this the labels are unreadable: refuse rather than write a blur
MAX_SIDE = 32_000  # pixels; Agg refuses images over 2**16 a side
MAX_PIXELS = 60_000_000  # about 240 MB of RGBA while rendering


def png_scale(picture: Picture) -> float:
    scale = min(SCALE, MAX_SIDE / max(picture.width, picture.height),
                math.sqrt(MAX_PIXELS / (picture.width * picture.height)))
    if scale < MIN_SCALE:
        raise DrawError(f"the drawing is too large for a PNG ({picture.width:,.0f} x {picture.height:,.0f} px): "
                        f"write an SVG, or draw blocks as one box each with --depth 1 (or 2, ...)")
    return scale


def png(picture: Picture) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch, Polygon

    scale = png_scale(picture)
    figure = Figure(figsize=(picture.width / 72, picture.height / 72), dpi=72 * scale)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, picture.width)
    axes.set_ylim(picture.height, 0)  # screen coordinates: y grows downwards
    axes.axis("off")

    def rect(r, z):
        style = f"round,pad=0,rounding_size={r.radius}"
        axes.add_patch(FancyBboxPatch((r.x, r.y), r.w, r.h, boxstyle=style, facecolor=r.fill if r.fill != "none"
                                      else "none", edgecolor=r.stroke, linewidth=r.width,
                                      linestyle=(0, (5, 3)) if r.dash else "solid", zorder=z))

    def text(t, z):
        axes.text(t.x, t.y, t.text, fontsize=t.size, ha="left" if t.anchor == "start" else "center",
                  va="baseline", color=t.color, family="DejaVu Sans Mono" if t.mono else "DejaVu Sans", zorder=z)

    for frame in picture.frames:
        rect(frame.rect, 1)
        for t in frame.texts:
            text(t, 1)
    for line in picture.lines:
        xs, ys = zip(*line.points)
        axes.plot(xs, ys, color=line.color, linewidth=1.2, linestyle=(0, (4, 3)) if line.dash else "solid", zorder=2)
        if line.arrow:
            axes.add_patch(Polygon(arrowhead(line.points), closed=True, facecolor=line.color, edgecolor="none",
                                   zorder=2))
    for shape in picture.boxes + picture.notes:
        rect(shape.rect, 3)
        for t in shape.texts:
            text(t, 4)
    for t in picture.labels + ([picture.caption] if picture.caption else []):
        text(t, 4)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
