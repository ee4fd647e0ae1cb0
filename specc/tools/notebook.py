"""specc in Jupyter: a Network displays as its diagram and summary table, a SpecError as its
diagnostic, and the `%%cnn NAME` cell magic checks the cell's spec and binds the Network to NAME.

    %load_ext specc

    %%cnn lenet --set classes=100
    input 1x28x28
    conv 5x5 6 p2 -> sigmoid -> avgpool 2 s2 -> flatten -> fc classes

A cell with a mistake displays the diagnostic (and, when the shapes are what
fails, the network drawn up to the mistake) instead of a traceback, and binds nothing.
"""
from __future__ import annotations

import shlex
from html import escape

from ..lang.errors import ERROR_STYLE, SpecError
from ..network import Network, _partial, loads
from .draw import DrawError, _count, fitting_diagram, partial_diagram, to_svg

MAX_INLINE_BOXES = 400  # more, and a notebook's output gets too long to scroll: blocks are collapsed
CELL_PATH = "<cell>"  # what diagnostics name; imports are read relative to the kernel's directory


def network_svg(net: Network) -> str:
    return to_svg(fitting_diagram(net, MAX_INLINE_BOXES)[0])


def network_html(net: Network) -> str:
    from .summary import summary_table

    drawing, depth = fitting_diagram(net, MAX_INLINE_BOXES)
    note = ""
    if depth is not None:
        note = (f'<p style="color: #666">Block calls nested {depth} deep are drawn as one box each; '
                f'<code>specc draw FILE</code> draws every layer.</p>')
    return (f'<div class="specc-network" style="display: flex; flex-wrap: wrap; gap: 16px; '
            f'align-items: flex-start">'
            f'<div class="specc-diagram">{to_svg(drawing)}{note}</div>'
            f'<pre class="specc-summary" style="font-size: 11px">{escape(summary_table(net, 1))}</pre></div>')


class Failure:
    """What a failing %%cnn cell shows: the diagnostic, then the network drawn up to the mistake."""

    def __init__(self, error: SpecError, drawing_svg: str | None):
        self.error, self.drawing_svg = error, drawing_svg

    def _repr_html_(self) -> str:
        return self.error._repr_html_() + (self.drawing_svg or "")

    def __repr__(self) -> str:
        return str(self.error)


def _usage(message: str):
    from IPython.core.error import UsageError
    return UsageError(f"%%cnn: {message}; usage: %%cnn NAME [--input CxHxW] [--set PARAM=VALUE ...]")


def magic_arguments(line: str) -> tuple[str, tuple[int, ...] | None, dict]:
    """`NAME [--input CxHxW] [--set PARAM=VALUE ...]` -> (name, input shape, params)."""
    import keyword

    import click

    from ..cli import parse_assignments  # the command line's own rules for --set

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if not words or not words[0].isidentifier() or keyword.iskeyword(words[0]):
        raise _usage("give the Python name to bind the network to first")
    name, rest = words[0], words[1:]
    input_shape, pairs = None, []
    while rest:
        option, value, rest = _option(rest)
        if option == "--input":
            try:
                input_shape = tuple(int(d) for d in value.lower().split("x"))
            except ValueError:
                raise _usage(f"--input takes CxHxW or a number of features, not {value!r}") from None
        else:
            pairs.append(value)
    try:
        params = parse_assignments(tuple(pairs))
    except click.BadParameter as exc:
        raise _usage(exc.format_message()) from None
    return name, input_shape, params


def _option(words: list[str]) -> tuple[str, str, list[str]]:
    option, _, value = words[0].partition("=")
    if option not in ("--input", "--set"):
        raise _usage(f"unknown option {words[0]!r}")
    if value:
        return option, value, words[1:]
    if len(words) < 2:
        raise _usage(f"{option} needs a value")
    return option, words[1], words[2:]


def register(ipython) -> None:
    """Add the %%cnn cell magic to an IPython shell (what `%load_ext specc` calls)."""

    def cnn(line: str, cell: str):
        name, input_shape, params = magic_arguments(line)
        try:
            net = loads(cell, name=name, path=CELL_PATH, input_shape=input_shape, **params)
        except SpecError as err:
            from IPython.display import display
            display(Failure(err, _partial_svg(cell, input_shape, params)))
            return None
        ipython.user_ns[name] = net
        return net

    cnn.__doc__ = __doc__
    ipython.register_magic_function(cnn, magic_kind="cell", magic_name="cnn")


def _partial_svg(cell: str, input_shape, params: dict) -> str | None:
    partial = _partial(cell, CELL_PATH, input_shape, **params)
    if partial is None:
        return None
    try:
        drawing = partial_diagram(partial, None)
        if _count(drawing.chain) > MAX_INLINE_BOXES:
            drawing = partial_diagram(partial, 1)
        return to_svg(drawing)
    except DrawError:
        return None
