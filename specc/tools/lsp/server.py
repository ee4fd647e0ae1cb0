"""`specc lsp`: a language server over stdio (pygls) with live shapes.

Every open and change re-analyses the document at once (no debounce) and publishes the same
SpecError `specc check` reports; inlay hints show each line's output shape, hovers a layer's
shapes, costs and PyTorch module. The analysis is analysis.py and the features
features.py; this module speaks the protocol and converts positions. Torch is
never imported (tests/test_lsp.py checks).
"""
from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from ... import __version__
from ...lang.errors import Span, SpecError
from ...lang.parse import parser
from . import features
from .analysis import Analysis, AnalysisCache, analyse, line_offsets

SOURCE = "specc"
REQUEST_FAILED = -32803  # the LSP's RequestFailed error code
SYMBOL_KINDS = {"block": types.SymbolKind.Function, "param": types.SymbolKind.Constant,
                "body": types.SymbolKind.Module}
ITEM_KINDS = {"layer": types.CompletionItemKind.Class, "merge": types.CompletionItemKind.Operator,
              "block": types.CompletionItemKind.Function, "param": types.CompletionItemKind.Constant,
              "keyword": types.CompletionItemKind.Keyword, "argument": types.CompletionItemKind.Property,
              "value": types.CompletionItemKind.Variable}


class SpecServer(LanguageServer):
    """The analyses of the open documents, and who published diagnostics for which file."""

    def __init__(self):
        super().__init__("specc", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.analyses: dict[str, Analysis] = {}  # uri -> the latest analysis
        self.cache = AnalysisCache()
        # uri of an analysed document -> {uri of an imported file: its diagnostics from that analysis}
        self.foreign: dict[str, dict[str, list[types.Diagnostic]]] = {}
        self.shut_down = False

    # --- analysis and diagnostics ----------------------------------------------------------------
    def refresh(self, uri: str) -> Analysis:
        document = self.workspace.get_text_document(uri)
        analysis = analyse(document.source, uri_to_path(uri), self.open_texts(), self.cache)
        self.analyses[uri] = analysis
        self.publish(uri, analysis)
        # Documents that import this one see its unsaved text: analyse them again.
        path = os.path.abspath(analysis.path)
        for other, known in list(self.analyses.items()):
            if other != uri and path in known.imported:
                self.analyses[other] = again = analyse(known.text, known.path, self.open_texts(), self.cache)
                self.publish(other, again)
        return analysis

    def analysis(self, uri: str) -> Analysis:
        """The latest analysis of an open document (analysed now if a request comes before any change)."""
        return self.analyses.get(uri) or self.refresh(uri)

    def open_texts(self) -> dict[str, str]:
        return {os.path.abspath(uri_to_path(uri)): doc.source
                for uri, doc in self.workspace.text_documents.items()}

    def publish(self, uri: str, analysis: Analysis) -> None:
        own, elsewhere = self.diagnostics(uri, analysis)
        touched = set(self.foreign.get(uri, {})) | set(elsewhere)
        self.foreign[uri] = elsewhere
        self._send(uri, own)
        for other in touched - {uri}:
            self._send(other, self._own(other))

    def _own(self, uri: str) -> list[types.Diagnostic]:
        analysis = self.analyses.get(uri)
        return self.diagnostics(uri, analysis)[0] if analysis is not None else []

    def _send(self, uri: str, diagnostics: list[types.Diagnostic]) -> None:
        """Publish a file's own diagnostics with those other documents' analyses found in it."""
        extra = [d for src, found in self.foreign.items() if src != uri for d in found.get(uri, [])]
        unique = {(d.range.start.line, d.range.start.character, d.message): d for d in diagnostics + extra}
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=list(unique.values())))

    def diagnostics(self, uri: str, analysis: Analysis) -> tuple[list[types.Diagnostic], dict[str, list]]:
        """The document's diagnostics, and those for the imported file an error is in."""
        err = analysis.error
        if err is None:
            return [], {}
        message = _message(err)
        span = err.span
        if span is None or span.origin is None:
            return [self._diagnostic(analysis.text, span, message)], {}
        origin_path, origin_text = span.origin
        origin_uri = path_to_uri(os.path.abspath(origin_path))
        inside = self._diagnostic(origin_text, span._replace(origin=None), message)
        at_import = _import_leading_to(analysis, os.path.abspath(origin_path), self.cache)
        where = f"{origin_path}:{span.line}:{span.column}"
        shown = self._diagnostic(analysis.text, at_import, f"in {where}: {message}")
        shown.related_information = [types.DiagnosticRelatedInformation(
            location=types.Location(uri=origin_uri, range=inside.range), message=err.message)]
        return [shown], {origin_uri: [inside]}

    def _diagnostic(self, text: str, span: Span | None, message: str) -> types.Diagnostic:
        return types.Diagnostic(range=self.to_range(text, span), message=message,
                                severity=types.DiagnosticSeverity.Error, source=SOURCE)

    # --- positions: the parser's 1-based character columns <-> the client's 0-based units ---------
    def to_range(self, text: str, span: Span | None) -> types.Range:
        if span is None:
            return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
        lines = text.split("\n")
        start = self.to_position(lines, span.line, span.column)
        end = self.to_position(lines, span.end_line, span.end_column)
        return types.Range(start=start, end=end)

    def to_position(self, lines: list[str], line: int, column: int) -> types.Position:
        if line > len(lines):
            return types.Position(line=len(lines), character=0)
        text = lines[line - 1]
        units = self.workspace.position_codec.client_num_units(text[:max(column - 1, 0)])
        return types.Position(line=line - 1, character=units)

    def from_position(self, text: str, position: types.Position) -> tuple[int, int, int]:
        """(line, column) 1-based in characters, and the offset, of a client position."""
        lines = text.split("\n")
        line = min(position.line, len(lines) - 1)
        codec, units, column = self.workspace.position_codec, 0, 0
        for char in lines[line]:
            if units >= position.character:
                break
            units += codec.client_num_units(char)
            column += 1
        return line + 1, column + 1, line_offsets(text)[line] + column

    def location(self, analysis: Analysis, span: Span) -> types.Location:
        if span.origin is None:
            return types.Location(uri=path_to_uri(os.path.abspath(analysis.path)), range=self.to_range(analysis.text, span))
        path, text = span.origin
        return types.Location(uri=path_to_uri(os.path.abspath(path)), range=self.to_range(text, span._replace(origin=None)))


def _message(err: SpecError) -> str:
    """The message with its notes and hint, as `specc check` prints them after the excerpt."""
    lines = [err.message] + [f"note: {note}" for note in err.notes]
    if err.hint:
        lines.append(f"hint: {err.hint}")
    return "\n".join(lines)


def _import_leading_to(analysis: Analysis, target: str, cache: AnalysisCache) -> Span | None:
    """The document's import line through which `target` is reached (directly or not)."""
    if analysis.spec is None:
        return None
    here = os.path.dirname(os.path.abspath(analysis.path))
    for imp in analysis.spec.imports:
        if _reaches(os.path.normpath(os.path.join(here, imp.path)), target, cache, set()):
            return imp.span
    return analysis.spec.imports[0].span if analysis.spec.imports else None


def _reaches(path: str, target: str, cache: AnalysisCache, seen: set[str]) -> bool:
    if os.path.realpath(path) == os.path.realpath(target):
        return True
    if path in seen:
        return False
    seen.add(path)
    spec = cache.latest.get(os.path.realpath(path))
    here = os.path.dirname(path)
    return spec is not None and any(
        _reaches(os.path.normpath(os.path.join(here, imp.path)), target, cache, seen) for imp in spec.imports)


def _renamed(ls: SpecServer, params) -> tuple[Analysis, tuple]:
    """The document and (occurrence, spans) of the name a rename request points at; a refusal as an error."""
    analysis = ls.analysis(params.text_document.uri)
    line, column, _ = ls.from_position(analysis.text, params.position)
    found = features.rename_spans(analysis, line, column)
    if isinstance(found, str):
        raise JsonRpcException(found, REQUEST_FAILED)
    return analysis, found


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def path_to_uri(path: str) -> str:
    return Path(path).as_uri()


def make_server() -> SpecServer:
    ls = SpecServer()

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SpecServer, params: types.DidOpenTextDocumentParams):
        ls.refresh(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SpecServer, params: types.DidChangeTextDocumentParams):
        ls.refresh(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SpecServer, params: types.DidSaveTextDocumentParams):
        ls.refresh(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SpecServer, params: types.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        ls.analyses.pop(uri, None)
        for other in ls.foreign.pop(uri, {}):
            ls._send(other, ls._own(other))
        ls._send(uri, [])  # what other open documents found in it stays

    @ls.feature(types.SHUTDOWN)
    def shutdown(ls: SpecServer, params=None):
        ls.shut_down = True

    @ls.feature(types.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hint(ls: SpecServer, params: types.InlayHintParams):
        analysis = ls.analysis(params.text_document.uri)
        lines = analysis.lines
        first, last = params.range.start.line + 1, params.range.end.line + 1
        return [types.InlayHint(position=ls.to_position(lines, h.line, h.column), label=h.label,
                                kind=types.InlayHintKind.Type, padding_left=True)
                for h in features.inlay_hints(analysis) if first <= h.line <= last]

    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: SpecServer, params: types.HoverParams):
        analysis = ls.analysis(params.text_document.uri)
        line, column, _ = ls.from_position(analysis.text, params.position)
        found = features.hover(analysis, line, column)
        if found is None:
            return None
        text, span = found
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                           range=ls.to_range(analysis.text, span))

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION,
                types.CompletionOptions(trigger_characters=["(", ",", "=", ">"]))
    def completion(ls: SpecServer, params: types.CompletionParams):
        analysis = ls.analysis(params.text_document.uri)
        _, _, offset = ls.from_position(analysis.text, params.position)
        items = [types.CompletionItem(label=i.label, kind=ITEM_KINDS[i.kind], detail=i.detail, insert_text=i.insert)
                 for i in features.completions(analysis, offset)]
        return types.CompletionList(is_incomplete=False, items=items)

    @ls.feature(types.TEXT_DOCUMENT_SIGNATURE_HELP, types.SignatureHelpOptions(trigger_characters=["(", ","]))
    def signature_help(ls: SpecServer, params: types.SignatureHelpParams):
        analysis = ls.analysis(params.text_document.uri)
        _, _, offset = ls.from_position(analysis.text, params.position)
        found = features.signature_help(analysis, offset)
        if found is None:
            return None
        label, ranges, active = found
        parameters = [types.ParameterInformation(label=(start, end)) for start, end in ranges]
        return types.SignatureHelp(signatures=[types.SignatureInformation(label=label, parameters=parameters)],
                                   active_signature=0, active_parameter=active)

    @ls.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: SpecServer, params: types.DefinitionParams):
        analysis = ls.analysis(params.text_document.uri)
        line, column, _ = ls.from_position(analysis.text, params.position)
        imp = features.import_at(analysis, line, column)
        if imp is not None:
            target = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(analysis.path)), imp.path))
            start = types.Position(line=0, character=0)
            return types.Location(uri=path_to_uri(target), range=types.Range(start=start, end=start))
        occ = features.occurrence_at(analysis, line, column)
        span = features.definition_span(analysis, occ.target) if occ is not None else None
        return ls.location(analysis, span) if span is not None else None

    @ls.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: SpecServer, params: types.DocumentSymbolParams):
        analysis = ls.analysis(params.text_document.uri)
        return [types.DocumentSymbol(name=s.name, kind=SYMBOL_KINDS[s.kind], detail=s.detail,
                                     range=ls.to_range(analysis.text, s.span),
                                     selection_range=ls.to_range(analysis.text, s.selection))
                for s in features.symbols(analysis)]

    @ls.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: SpecServer, params: types.DocumentFormattingParams):
        analysis = ls.analysis(params.text_document.uri)
        try:
            from ..fmt import format_source  # written alongside; only formatting needs it
        except ImportError:
            return None
        try:
            formatted = format_source(analysis.text, analysis.path)
        except SpecError:  # a text that does not parse is left alone; its diagnostic says why
            return None
        if formatted == analysis.text:
            return []
        lines = analysis.lines
        end = ls.to_position(lines, len(lines), len(lines[-1]) + 1)
        return [types.TextEdit(range=types.Range(start=types.Position(line=0, character=0), end=end),
                               new_text=formatted)]

    @ls.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    def prepare_rename(ls: SpecServer, params: types.PrepareRenameParams):
        analysis, (occ, _) = _renamed(ls, params)
        return ls.to_range(analysis.text, occ.span)

    @ls.feature(types.TEXT_DOCUMENT_RENAME)
    def rename(ls: SpecServer, params: types.RenameParams):
        analysis, (occ, spans) = _renamed(ls, params)
        why = features.check_new_name(analysis, occ.target, params.new_name)
        if why:
            raise JsonRpcException(why, REQUEST_FAILED)
        edits = [types.TextEdit(range=ls.to_range(analysis.text, span), new_text=params.new_name) for span in spans]
        return types.WorkspaceEdit(changes={params.text_document.uri: edits})

    return ls


def quiet_collector() -> None:
    """Freeze the objects built at start (grammar tables, registry, pygls) out of the cyclic garbage
    collector's full collections, which then scan only what the analyses keep (bench/lsp_latency.py:
    those pauses reached 50 ms on a large spec before the analyses' caches; now about 30 ms, rarely)."""
    parser()  # the grammar's tables, loaded before they are frozen
    gc.collect()
    gc.freeze()


def serve() -> int:
    """Run the server on stdin/stdout until `exit`; 0 after a `shutdown` request, 1 without one."""
    logging.getLogger("pygls").setLevel(logging.WARNING)
    ls = make_server()
    quiet_collector()
    ls.start_io()
    return 0 if ls.shut_down else 1
