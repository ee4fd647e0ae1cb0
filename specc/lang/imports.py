"""Import phase: `import "lib/resnet.cnn"` brings that file's blocks and params into scope.

Paths are relative to the importing file. An imported file's own imports are
followed too; a file reached twice (a diamond) is merged once; a cycle, a
missing file or a name defined in two places is a located error. Only blocks
and params cross files: an imported file's defaults stay with its own blocks
(expand.py compares the files spans come from), and its input, network name,
body and train section are ignored.

`import "lib/efficientnet.cnn" (eps = 0.001)` sets a param of the imported
file (or of a file it imports). Params share one scope across files, so the
setting holds for the whole network: a param set by two import lines is an
error, and `specc.load(..., eps=...)` / `--set` still win over it.
"""
from __future__ import annotations

import os
from pathlib import Path

from typing import Callable, Mapping

from . import nodes as n
from .errors import SpecError, Span, did_you_mean
from .files import Unreadable, checked_name, read_spec


ParseFile = Callable[[Path, str, str], n.SpecFile]  # (absolute path, path as shown, text) -> parsed


def link(spec: n.SpecFile, path: str, sources: dict[str, str] | None = None, *,
         unsaved: Mapping[str, str] | None = None, parse_file: ParseFile | None = None) -> n.SpecFile:
    """`spec` with everything its imports define merged into its blocks, params and defaults.

    `spec.sources` records the text of every imported file, keyed by its path relative to the
    importing spec's directory ("lib/resnet.cnn"); given such a mapping as `sources` (a
    checkpoint's), imports are served from it alone and the file system is never read.
    An editor passes `unsaved` (texts of open documents by absolute path, read instead of the
    disk) and `parse_file(target, display, text)` (its cache of parsed files).
    """
    embedded = sources is not None
    here = (Path(os.path.abspath(path)) if embedded else _real(path)) if not path.startswith("<") \
        else Path.cwd() / "<string>"
    defined = {**{f"block {b}": (here, block.span) for b, block in spec.blocks.items()},
               **{f"param {p.name}": (here, p.span) for p in spec.params}}
    reader = _Reader(here.parent, sources, unsaved or {}, parse_file or _parse)
    _follow(spec, spec, here, [here], {}, defined, reader)
    spec.sources = reader.read
    return spec


class _Reader:
    """Reads imported files from disk, or from a checkpoint's embedded copies; remembers what it read."""

    def __init__(self, root: Path, embedded: dict[str, str] | None, unsaved: Mapping[str, str],
                 parse_file: ParseFile):
        self.root, self.embedded, self.read = root, embedded, {}
        self.unsaved, self.parse_file = unsaved, parse_file

    def key(self, target: Path) -> str:
        return os.path.relpath(target, self.root).replace(os.sep, "/")

    def text(self, target: Path, imp: n.Import) -> str:
        key = self.key(target)
        if self.embedded is None and os.path.abspath(target) in self.unsaved:
            source = self.unsaved[os.path.abspath(target)]
        elif self.embedded is None:
            try:
                source = read_spec(target)
            except Unreadable as exc:
                raise _cannot_import(imp, exc, target) from None
        elif key in self.embedded:
            source = self.embedded[key]
        else:
            raise SpecError(f"cannot import '{imp.path}': the checkpoint's spec does not carry {key}", imp.span,
                            hint="a checkpoint holds the text of every file its spec imported when it was saved")
        self.read[key] = source
        return source


def _follow(into: n.SpecFile, spec: n.SpecFile, here: Path, stack: list[Path], done: dict[Path, set[str]],
            defined: dict[str, tuple[Path, Span]], reader: _Reader) -> None:
    """Merge `spec`'s imports into `into`; `done` maps each file read to the params it (and its imports) provide."""
    for imp in spec.imports:
        target = _target(here, imp, reader.embedded is not None)
        if target in stack:
            cycle = " -> ".join(p.name for p in stack[stack.index(target):] + [target])
            raise SpecError(f"import cycle: {cycle}", imp.span, hint="move the shared blocks into a file both import")
        if target not in done:
            imported = _parse_file(target, imp, reader)
            before = {p.name for p in into.params}
            done[target] = set()
            _follow(into, imported, target, stack + [target], done, defined, reader)
            _merge(into, imported, target, imp, defined)
            done[target] = {p.name for p in into.params} - before
        _apply_settings(into, imp, done[target])


def _apply_settings(into: n.SpecFile, imp: n.Import, provided: set[str]) -> None:
    for setting in imp.settings:
        if setting.key not in provided:
            hint = did_you_mean(setting.key, provided) or (
                f"its params: {', '.join(sorted(provided))}" if provided else "it defines no params")
            raise SpecError(f"'{imp.path}' has no param '{setting.key}' to set", setting.span, hint=hint)
        if setting.key in into.import_settings:
            first = into.import_settings[setting.key][1]
            raise SpecError(f"param '{setting.key}' is set by two import lines", setting.span,
                            hint=f"first set at line {first.span.line}; params share one scope across files")
        into.import_settings[setting.key] = (setting.value, imp)


def _real(path: str) -> Path:
    """`path` made absolute with symlinks resolved (so a file reached twice is known), never raising:
    a path the file system cannot take stays as written, and reading it fails with a located error."""
    try:
        checked_name(path, suffix="")
    except Unreadable:
        return Path(os.path.abspath(path))
    return Path(os.path.realpath(path))  # non-strict: a symlink loop is reported when read


def _target(here: Path, imp: n.Import, embedded: bool = False) -> Path:
    try:
        checked_name(imp.path)
    except Unreadable as exc:
        raise _cannot_import(imp, exc) from None
    joined = os.path.join(here.parent, imp.path)
    return Path(os.path.normpath(joined)) if embedded else _real(joined)


def _parse_file(target: Path, imp: n.Import, reader: _Reader) -> n.SpecFile:
    return reader.parse_file(target, _display(target), reader.text(target, imp))


def _parse(target: Path, display: str, text: str) -> n.SpecFile:
    from .parse import parse
    return parse(text, display, imported=True)


def _cannot_import(imp: n.Import, exc: Unreadable, target: Path | None = None) -> SpecError:
    where = f" ({_display(target)})" if target is not None and str(target) != imp.path else ""
    hint = exc.hint
    if exc.reason == "no such file":
        hint = "import paths are relative to the importing file"
    return SpecError(f"cannot import '{imp.path}'{where}: {exc.reason}", imp.span, hint=hint)


def _merge(into: n.SpecFile, imported: n.SpecFile, target: Path, imp: n.Import,
           defined: dict[str, tuple[Path, Span]]) -> None:
    named = [(f"block {name}", block.span) for name, block in imported.blocks.items()]
    named += [(f"param {p.name}", p.span) for p in imported.params]
    for key, span in named:
        if key in defined:
            where, first = defined[key]
            raise SpecError(f"{key} from '{imp.path}' clashes with the {key} of {_display(where)}:{first.line}",
                            imp.span, hint="rename one of them; imported names share one scope")
        defined[key] = (target, span)
    into.blocks.update(imported.blocks)
    # Imported params come first: the importing file's params may use them.
    into.params[:0] = imported.params
    into.defaults.extend(imported.defaults)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
