"""Parsing a document again after an edit, reusing the statements the edit did not touch.

An editor re-analyses the whole document at every change, and parsing is the largest part of that for
a long spec (Lark's parser costs about 20 µs a token). Most edits change one statement. The text is cut
into top-level statements: a new one starts on a line whose first word is a declaration keyword
(`import network input param default block train`) outside any bracket, comment or string, and on the
line after a `block` or `train` section's closing brace (the body chain that follows a block). Each is
parsed alone as the file it would be with the lines above it blank, so every span and text is what
the whole file's parse gives, and kept by (line, text): an unchanged statement on an unchanged line is
not parsed again. A statement that does not parse alone, a second body chain, or a duplicate that
`assemble` refuses sends the document to the ordinary whole-file parse, whose result or error is
then exactly `specc check`'s. tests/test_reparse.py holds the two parses equal on every shipped spec,
generated specs and edits of them.
"""
from __future__ import annotations

import re
from collections import OrderedDict

from lark import v_args
from lark.exceptions import LarkError

from . import nodes as n
from .errors import SpecError
from .files import MAX_SPEC_BYTES
from .parse import ToNodes, assemble, parse, parser

KEYWORDS = ("import", "network", "input", "param", "default", "block", "train")
STATEMENT_START = re.compile(rf"[ \t]*(?:{'|'.join(KEYWORDS)})(?![A-Za-z0-9_])")
# What moves the bracket depth, skipping comments and strings (where a bracket is only text).
SCAN = re.compile(r'#[^\n]*|"[^"\n]*"?|[(){}]|\n')


@v_args(meta=True)
class _Items(ToNodes):
    """ToNodes, giving the statements of a text instead of assembling them into a file."""

    def start(self, meta, children):
        return children


class StatementCache:
    """Parsed statements by (first line, text): what one parse lends the next."""

    def __init__(self, size: int = 512):
        self.size = size
        self._parsed: OrderedDict[tuple[int, str], list] = OrderedDict()

    def items(self, line: int, text: str, path: str) -> list | None:
        """The statements of `text` starting at `line`, or None where it does not parse alone."""
        key = (line, text)
        items = self._parsed.get(key)
        if items is not None:
            self._parsed.move_to_end(key)
            return items
        padded = "\n" * (line - 1) + text  # every span and offset as in the whole file
        try:
            items = _Items(padded, path).transform(parser().parse(padded))
        except (LarkError, SpecError, RecursionError):
            return None
        self._parsed[key] = items
        if len(self._parsed) > self.size:
            self._parsed.popitem(last=False)
        return items


def reparse(source: str, path: str, cache: StatementCache) -> n.SpecFile:
    """`parse(source, path)`, reusing `cache`'s statements; the same SpecFile, or the same SpecError."""
    if len(source) > MAX_SPEC_BYTES:
        return parse(source, path)
    items = []
    for line, text in statements(source):
        parsed = cache.items(line, text, path)
        if parsed is None:
            return parse(source, path)
        items.extend(parsed)
    if sum(isinstance(item, n.Chain) for item in items) > 1:
        return parse(source, path)  # the grammar allows one body: let the parser say where
    try:
        return assemble(path, source, items)
    except SpecError:
        return parse(source, path)


def statements(source: str) -> list[tuple[int, str]]:
    """`source` cut before each line that starts a declaration outside brackets, and after the line
    where a `block` or `train` section's closing brace ends it: (first line, text) of each part."""
    cuts, depth, line, closed = [(1, 0)], 0, 1, False
    for token in SCAN.finditer(source):
        char = token.group()
        if char == "\n":
            line += 1
            start = token.end()
            if depth == 0 and (closed or STATEMENT_START.match(source, start)):
                cuts.append((line, start))
            closed = False
        elif char in "({":
            depth += 1
        elif char in ")}":
            depth = max(depth - 1, 0)
            closed = closed or (char == "}" and depth == 0)
    ends = [offset for _, offset in cuts[1:]] + [len(source)]
    return [(first, source[offset:end]) for (first, offset), end in zip(cuts, ends)]
