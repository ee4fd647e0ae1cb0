"""The language server's analysis of one document: `specc check`'s pipeline, keeping what it got.

`analyse()` runs the phases of `specc.loads` (parse, link imports, expand, input shape, infer) in
the same order, so the first SpecError is exactly the one `specc check` reports. Unlike `loads`
it does not stop at that error: it keeps the tree expanded and inferred up to it, so the editor
still shows the shapes before a mistake. A text that does not parse is parsed again cut at the
mistake (with open brackets closed) for the same purpose.

Imported files are parsed once per text (a cache keyed by path and text: most edits are to the
document, not its libraries); the document's unchanged statements (lang/reparse.py), the imported
blocks' expansions (expand.Memo) and layers' shapes carry over from one analysis to the next; an
import that names a document open in the editor reads the editor's unsaved text. Torch-free, like
everything `specc check` runs.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ...lang import nodes as n
from ...lang.errors import SpecError
from ...lang.expand import Expander, Memo, SeqNode, expand
from ...lang.imports import link
from ...lang.files import MAX_SPEC_BYTES
from ...lang.infer import infer
from ...lang.parse import parse
from ...lang.reparse import StatementCache, reparse
from ...network import _input_shape

# Most repairs a text that does not parse gets before its shapes are given up (each is one parse).
MAX_REPAIRS = 3
# Parsed imported files kept (a torchvision spec imports one or two libraries).
IMPORT_CACHE_SIZE = 64


@dataclass
class Analysis:
    """What the server knows about a document at one version."""

    path: str  # the document's file-system path (imports resolve relative to it)
    text: str
    spec: n.SpecFile | None = None  # linked; from a repaired prefix when the text does not parse
    graph: SeqNode | None = None  # expanded and inferred up to the first error
    error: SpecError | None = None  # the first error, as `specc check` reports it
    scope: dict[str, Any] = field(default_factory=dict)  # the params' values
    imported: set[str] = field(default_factory=set)  # absolute paths of every file the imports read
    library: bool = False  # no input and no body: a block library, not a network
    parsed: bool = True  # False when `spec` comes from a repaired prefix

    @property
    def lines(self) -> list[str]:
        # "\n" only, as the parser counts lines (a form feed in a comment is not a line break).
        return self.text.split("\n")


class AnalysisCache:
    """What the server's analyses share: parsed imported files by (absolute path, text), the documents'
    parsed statements, the expansions of the imported blocks, and the shapes and costs of layers."""

    def __init__(self, size: int = IMPORT_CACHE_SIZE):
        self.size = size
        self._parsed: OrderedDict[tuple[str, str, str], n.SpecFile] = OrderedDict()
        self.latest: dict[str, n.SpecFile] = {}  # real path -> its last parse, to follow import chains
        # The expansions of the imported files' blocks, lent from one analysis to the next.
        self.memo = Memo()
        self.shapes: dict = {}  # infer()'s shapes and costs of layers, kept the same way
        self.statements = StatementCache()  # the documents' parsed statements (reparse.py)

    def parse(self, target: Path, display: str, text: str) -> n.SpecFile:
        key = (str(target), display, text)
        spec = self._parsed.get(key)
        if spec is None:
            spec = parse(text, display, imported=True)  # a SpecError is not cached: it is cheap to repeat
            self._parsed[key] = spec
            if len(self._parsed) > self.size:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(key)
        self.latest[os.path.realpath(target)] = spec
        if len(self.latest) > self.size:
            self.latest.pop(next(iter(self.latest)))
        return spec


def analyse(text: str, path: str, open_texts: Mapping[str, str] | None = None,
            cache: AnalysisCache | None = None) -> Analysis:
    """Analyse `text` as the spec at `path`; `open_texts` maps absolute paths to editors' texts."""
    result = Analysis(path, text)
    try:
        _run(result, open_texts or {}, cache or AnalysisCache())
    except RecursionError:
        result.error = result.error or SpecError("the spec nests too deeply", path=path, source=text)
    if result.error is not None:
        result.error.located(path, text)
    return result


def _run(result: Analysis, open_texts: Mapping[str, str], cache: AnalysisCache) -> None:
    spec = _parse(result, cache)
    if spec is None:
        return
    result.spec = spec
    _record(result, lambda: link(spec, result.path, unsaved=open_texts,
                                 parse_file=_through(cache, result.imported)))
    result.library = spec.body is None and spec.input is None
    expander = _record(result, lambda: Expander(spec, {}, cache.memo))
    if expander is None:
        return
    result.scope = expander.globals
    if result.library:  # `specc check` would say "no layers"; in an editor a library is fine
        return
    if spec.body is None:
        _record(result, lambda: expand(spec))  # raises "the spec has no layers" as `specc check` does
        return
    root = SeqNode(spec.body.span)
    _record(result, lambda: expander.expand_into(root))  # keeps what expanded before an error
    result.graph = root
    shape = _record(result, lambda: _input_shape(spec, None))
    if shape is not None:
        _record(result, lambda: infer(root, shape, check_annotations=True, known=cache.shapes))


def _record(result: Analysis, phase: Callable[[], Any]) -> Any:
    """Run one phase; its SpecError becomes the result's error unless an earlier phase's is there."""
    try:
        return phase()
    except SpecError as err:
        if result.error is None and result.parsed:
            result.error = err
        return None


def _parse(result: Analysis, cache: AnalysisCache) -> n.SpecFile | None:
    try:
        return reparse(result.text, result.path, cache.statements)
    except SpecError as err:
        result.error = err
    result.parsed = False
    for text in _repairs(result.text, result.error):
        try:
            return reparse(text, result.path, cache.statements)  # the statements before the cut are known
        except (SpecError, RecursionError):
            continue
    return None


# --- repairing a text that does not parse, for the shapes before the mistake ---------------
TRAILING_JOINS = re.compile(r"(\s|->|\||,|\*|:|=|#[^\n]*$)+$")
BRACKETS = {"(": ")", "{": "}"}


def _repairs(text: str, err: SpecError) -> Iterator[str]:
    """Texts that keep everything before the mistake: cut at it, then cut at its line."""
    if err.span is None or err.span.origin is not None or len(text) > MAX_SPEC_BYTES:
        return
    offsets = line_offsets(text)
    if err.span.line > len(offsets):
        return
    at_line = offsets[err.span.line - 1]
    at_error = min(at_line + err.span.column - 1, len(text))
    seen = set()
    for cut in (at_error, at_line)[:MAX_REPAIRS]:
        repaired = _closed(text[:cut])
        if repaired not in seen:
            seen.add(repaired)
            yield repaired


def _closed(prefix: str) -> str:
    """`prefix` without a dangling `->`, `|` or `,`, its open brackets closed."""
    prefix = TRAILING_JOINS.sub("", prefix)
    opened = []
    for token in re.finditer(r'#[^\n]*|"[^"\n]*"?|[(){}]', prefix):
        char = token.group()
        if char in BRACKETS:
            opened.append(BRACKETS[char])
        elif char in ")}" and opened:
            opened.pop()
    return prefix + " " + "".join(reversed(opened)) if opened else prefix


def line_offsets(text: str) -> list[int]:
    """The offset where each line starts ("\n"-separated, as the parser counts lines)."""
    offsets = [0]
    for match in re.finditer("\n", text):
        offsets.append(match.end())
    return offsets


# --- imports parsed through the cache, reading the editor's open documents -------------------
def _through(cache: AnalysisCache, imported: set[str]):
    """link()'s parse_file: each imported file parsed through `cache`, its path recorded."""
    def parse_file(target: Path, display: str, text: str) -> n.SpecFile:
        imported.add(os.path.abspath(target))
        return cache.parse(target, display, text)
    return parse_file
