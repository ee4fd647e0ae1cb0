"""Diagnostics: SpecError and its compiler-style rendering.

Every phase raises SpecError with a Span taken from the parser, so a user
always sees `file:line:col: error: ...`, the source line and a caret.
"""
from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """A region of source text; lines and columns are 1-based, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int
    # (path, source) of an imported file; None for the file being loaded.
    origin: tuple[str, str] | None = None

    def cover(self, other: "Span | None") -> "Span":
        if other is None:
            return self
        start = min((self.line, self.column), (other.line, other.column))
        end = max((self.end_line, self.end_column), (other.end_line, other.end_column))
        return Span(start[0], start[1], end[0], end[1], self.origin)


class SpecError(Exception):
    """A located mistake in a spec. str(err) is the rendered diagnostic."""

    def __init__(self, message: str, span: Span | None = None, *, hint: str | None = None,
                 path: str | None = None, source: str | None = None,
                 notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.path = path
        self.source = source
        self.notes = tuple(notes)

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def located(self, path: str, source: str) -> "SpecError":
        """Fill in the file this error belongs to, unless an inner phase already did.

        A span from an imported file names that file, so a mistake inside a
        shared block library is shown there, not at the importing line.
        """
        if self.path is None:
            self.path, self.source = self.span.origin if self.span and self.span.origin else (path, source)
        return self

    def with_note(self, note: str) -> "SpecError":
        self.notes = self.notes + (note,)
        return self

    def __str__(self) -> str:
        return render(self)

    def _repr_html_(self) -> str:
        """The rendered diagnostic, for Jupyter."""
        from html import escape
        return f'<pre class="specc-error" style="{ERROR_STYLE}">{escape(render(self))}</pre>'


ERROR_STYLE = "color: #67000d; background: #fff5f0; border-left: 3px solid #cb181d; padding: 6px 10px"


class TrainError(Exception):
    """A training run, evaluation or prediction that cannot start or go on; the message says why and what to do.

    Defined here, beside SpecError, so the CLI can catch it without importing torch.
    """


def render(err: SpecError) -> str:
    where = err.path or "<spec>"
    if err.span:
        where += f":{err.span.line}:{err.span.column}"
    lines = [f"{where}: error: {err.message}"]
    lines += _excerpt(err.source, err.span)
    lines += [f"note: {note}" for note in err.notes]
    if err.hint:
        lines.append(f"hint: {err.hint}")
    return _printable("\n".join(lines))


def _printable(text: str) -> str:
    # A path from the command line may hold surrogates (undecodable bytes) or a NUL: escape them so
    # that the diagnostic can always be printed.
    return text.replace("\0", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


def _excerpt(source: str | None, span: Span | None) -> list[str]:
    if not source or not span:
        return []
    # Split on "\n" only, as the parser counts lines: str.splitlines would also break at a form
    # feed, \x0b, \x85 or U+2028 inside a comment and show the wrong line.
    text_lines = source.split("\n")
    if not 1 <= span.line <= len(text_lines):
        return []
    text = text_lines[span.line - 1].rstrip("\r").expandtabs(1)
    end = span.end_column if span.end_line == span.line else len(text) + 1
    width = max(1, min(end, len(text) + 1) - span.column)
    gutter = f"{span.line:>5} | "
    return [gutter + text, " " * (len(gutter) - 2) + "| " + " " * (span.column - 1) + "^" * width]


def did_you_mean(word: str, candidates) -> str | None:
    """A hint naming the closest known word, or None when nothing is close."""
    import difflib  # only a failing spec needs it; keeps `specc check` start-up short
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)
