"""`specc fmt`: one canonical layout for .cnn files.

Formatting is syntactic. It works on the parser's own tokens (Lark's interactive
parser yields every token its contextual lexer makes, keywords and punctuation
included) and on the comments between them, so a spec that fails shape analysis
is still formatted and the language's code is never touched. The layout:

- the author's line breaks are kept, a line being a stage; a line that ends with
  `->` or `|` hands it to the next line, which starts with it;
- one space between tokens; none just inside brackets or before `,`; `name=value`
  in layers, calls and block parameters, `name = value` in `param`, `train` and
  import settings; spaces around binary operators, none after a unary minus;
- `block` and `train` bodies are indented 4 spaces; inside brackets a line lines up
  with what follows the opening bracket (4 spaces in when the bracket ends its
  line), a `|` line 2 to the left of that so the branches line up, and a line that
  starts with the closing bracket starts where the opening bracket's line does;
- a `: SHAPE` that ends a line and a trailing comment are aligned, 2 spaces after
  the longest code, within a statement written on several lines (a chain, a block,
  the train section) or a run of one-line statements (`param` lines), as far as
  a blank line;
- comments stay on their lines; blank lines are kept, at most one in a row.

Tokens are never rewritten (an alias stays an alias, `stride=2` stays), and
format_source checks that: its output must lex to the same tokens and comments.
"""
from __future__ import annotations

import bisect
import collections
import difflib
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

from lark import Token
from lark.exceptions import UnexpectedInput

from ..lang.errors import SpecError
from ..lang.files import MAX_SPEC_BYTES, SPEC_SUFFIX, Unreadable, read_spec
from ..lang.parse import parse, parser

INDENT = 4  # a block or train body; a line after a bracket that ends its line
GAP = 2  # the fewest spaces before an aligned `: SHAPE` or trailing comment
BRANCH_INSET = 2  # a `|` line starts this far left of its branches, so `| ` lines them up
# Bounds that keep the output near the input's size: lines inside a bracket opened further right
# than MAX_VISUAL go 4 spaces in instead, and a line longer than MAX_ALIGN does not push its
# group's annotations and comments right (it gets its own 2 spaces).
MAX_VISUAL = 80
MAX_ALIGN = 100
LEADING = {"->", "|"}  # joiners that start a continuation line, never end one
OPENERS = {"CALL_NAME", "BRANCH", "SHORT_CALL", "LPAR"}  # tokens that open a bracket
CLOSERS = {"RPAR", "RBRACE"}
OPERAND_ENDS = {"INT", "FLOAT", "DIMS", "NAME", "RPAR"}  # a `-` after one of these subtracts
GAPS = re.compile(r"#[^\n]*|\n")  # what lies between tokens: comments, newlines (and spaces)


class FormatError(SpecError):
    """The layout would change the spec's tokens or comments: a bug in specc fmt, never the user's.
    A SpecError, so that callers which leave an unparsable text alone (the language server) leave
    this one alone too."""


class Piece(NamedTuple):
    """A token as it is written out."""

    kind: str  # the parser's token type (NAME, KEY, LPAR, __ANON_0 for `->`, ...)
    text: str  # the canonical text: `add(` for `add (`, `stride=` or `eps =` for a KEY
    start: int  # offset in the source
    tight: bool  # nothing between it and the next token: an opener, a unary minus, a `name=`


@dataclass
class Line:
    pieces: list[Piece] = field(default_factory=list)
    comment: str | None = None
    dropped: bool = False  # held only a `->` that moved to the next line
    statement: int = 0  # the top-level statement its first token belongs to
    indent: int = 0
    code: str = ""  # indentation and tokens, without a trailing `: SHAPE`
    annotation: str | None = None  # a trailing `: SHAPE`

    @property
    def blank(self) -> bool:
        return not self.pieces and self.comment is None


class Bracket(NamedTuple):
    content: int  # where a line inside it starts
    close: int  # where a line that starts with its closing bracket starts
    paren: bool  # a parenthesis (False: a `{ }` body)


TOP_LEVEL = Bracket(content=0, close=0, paren=False)


def format_source(text: str, path: str = "<string>") -> str:
    """`text` in specc's canonical layout; SpecError (located in `path`) when it does not parse."""
    parse(text, path)  # the same diagnostics as `specc check` for a file that does not parse
    tokens, tree = _lex(text)
    lines = _lines(text, tokens, _pieces(tokens, tree))
    _lay_out(lines, _statement_starts(tree), path)
    _number_statements(lines, [child.meta.start_pos for child in tree.children])
    formatted = _render(lines)
    if len(formatted) > MAX_SPEC_BYTES:
        raise _too_long(path)
    _check_same_tokens(text, formatted, tokens, path)
    return formatted


def _too_long(path: str) -> SpecError:
    return SpecError(f"formatted, the spec would be more than specc's limit of {MAX_SPEC_BYTES:,} characters",
                     path=path, hint="split it into files that import each other")


# --- tokens -------------------------------------------------------------------------------
def _lex(text: str):
    """Every token of `text` as the parser sees it, and the parse tree (text is known to parse)."""
    interactive = parser().parse_interactive(text)
    tokens = list(interactive.iter_parse())
    return tokens, interactive.resume_parse()


def _statement_starts(tree) -> set[int]:
    """Offsets of the tokens that begin a statement: a top-level declaration or the body chain,
    a block's chain, a train setting. A line that begins one starts at its bracket's indent; a
    line that continues one is indented further."""
    starts = set()
    for child in tree.children:
        starts.add(child.meta.start_pos)
        if child.data == "block":
            starts.add(child.children[-1].meta.start_pos)
        elif child.data == "train":
            starts.update(setting.meta.start_pos for setting in child.children)
    return starts


def _pieces(tokens: list[Token], tree) -> list[Piece]:
    loose = _loose_keys(tokens, tree)
    pieces, previous = [], None
    for tok in tokens:
        text, tight = str(tok), tok.type in OPENERS
        if tok.type == "BRANCH":  # `add (` -> `add(`
            text = text.rstrip("( \t") + "("
        elif tok.type == "KEY":
            name = text.rstrip("= \t")
            text, tight = (name + " =", False) if tok.start_pos in loose else (name + "=", True)
        elif tok.type == "MINUS" and (previous is None or previous.type not in OPERAND_ENDS):
            tight = True  # unary: `-2`, `(-0.2)`, `min=-2`, `lr = -1`
        pieces.append(Piece(tok.type, text, tok.start_pos, tight))
        previous = tok
    return pieces


def _loose_keys(tokens: list[Token], tree) -> set[int]:
    """Offsets of the KEY tokens written `name = value`: a param's name, a train setting's key and an
    import's settings (`import "lib/x.cnn" (eps = 0.001)`), as the shipped specs and the docs write them."""
    kinds = {child.meta.start_pos: child.data for child in tree.children}
    loose, statement, depth, previous = set(), None, 0, None
    for tok in tokens:
        if tok.start_pos in kinds:
            statement, depth = kinds[tok.start_pos], 0
        if tok.type == "KEY" and (statement == "train" or (statement == "param" and previous == "PARAM")
                                  or (statement == "import_" and depth == 1)):
            loose.add(tok.start_pos)
        depth += (tok.type in OPENERS) - (tok.type == "RPAR")
        previous = tok.type
    return loose


# --- lines --------------------------------------------------------------------------------
def _lines(text: str, tokens: list[Token], pieces: list[Piece]) -> list[Line]:
    """The source's lines as pieces and comments: `->` and `|` moved to the start of the next
    line, emptied lines dropped, runs of blank lines made one, none at either end."""
    lines, end = [Line()], 0
    for tok, piece in zip(tokens + [None], pieces + [None]):
        for match in GAPS.finditer(text, end, tok.start_pos if tok is not None else len(text)):
            if match.group() == "\n":
                lines.append(Line())
            else:
                lines[-1].comment = match.group().rstrip()
        if tok is not None:  # no token spans a newline
            lines[-1].pieces.append(piece)
            end = tok.end_pos
    _lead_with_joiners(lines)
    kept: list[Line] = []
    for line in lines:
        if not line.dropped and not (line.blank and (not kept or kept[-1].blank)):
            kept.append(line)
    while kept and kept[-1].blank:
        kept.pop()
    return kept


def _lead_with_joiners(lines: list[Line]) -> None:
    """`a ->` / `b` becomes `a` / `-> b`: a continuation line starts with its joiner."""
    carried: list[Piece] = []
    for line in lines:
        if not line.pieces:
            continue
        line.pieces[:0], carried = carried, []
        if line.pieces[-1].text in LEADING:
            carried = [line.pieces.pop()]
            line.dropped = line.blank


# --- layout -------------------------------------------------------------------------------
def _lay_out(lines: list[Line], starts: set[int], path: str) -> None:
    """Each line's indent and code, from the brackets open before it."""
    stack: list[Bracket] = []
    size = 0
    for line in lines:
        here = stack[-1] if stack else TOP_LEVEL
        if not line.pieces:  # a comment line sits where the code around it does
            line.indent = here.content
            continue
        line.indent = _indent(line.pieces[0], here, starts)
        pieces, line.annotation = _split_annotation(line.pieces)
        line.code = _code(pieces, line.indent, stack, line.pieces)
        size += len(line.code) + 1
        if size > MAX_SPEC_BYTES:  # stop before deep indentation of many lines takes gigabytes
            raise _too_long(path)


def _indent(first: Piece, here: Bracket, starts: set[int]) -> int:
    if first.kind in CLOSERS:
        return here.close
    if first.text == "|":
        return here.content - BRANCH_INSET
    if here.paren or first.start in starts or first.text == "->":
        return here.content
    return here.content + INDENT  # a statement continued on the next line: `param x =` / `  3`


def _split_annotation(pieces: list[Piece]) -> tuple[list[Piece], str | None]:
    """The code of a line and the `: SHAPE` that ends it, if one does."""
    if len(pieces) >= 2 and pieces[-2].kind == "COLON" and pieces[-1].kind == "SHAPE":
        return pieces[:-2], ": " + pieces[-1].text
    return pieces, None


def _code(pieces: list[Piece], indent: int, stack: list[Bracket], whole: list[Piece]) -> str:
    """The line's code (without its trailing annotation); opens and closes brackets on `stack`.

    `whole` is the full line: a bracket whose opener ends it is a hanging one."""
    out, column = [" " * indent], indent
    for i, piece in enumerate(pieces):
        if i and _spaced(pieces[i - 1], piece):
            out.append(" ")
            column += 1
        out.append(piece.text)
        column += len(piece.text)
        if piece.kind in OPENERS:
            hanging = piece is whole[-1] or column > MAX_VISUAL
            stack.append(Bracket(indent + INDENT if hanging else column, indent, paren=True))
        elif piece.kind == "LBRACE":  # a block or train body; the grammar has those only at top level
            stack.append(Bracket(INDENT, 0, paren=False))
        elif piece.kind in CLOSERS:
            stack.pop()
    return "".join(out)


def _spaced(left: Piece, right: Piece) -> bool:
    if left.tight or right.kind in ("RPAR", "COMMA"):
        return False
    return not (left.kind == "LBRACE" and right.kind == "RBRACE")


# --- alignment and output -----------------------------------------------------------------
def _number_statements(lines: list[Line], starts: list[int]) -> None:
    for line in lines:
        if line.pieces:
            line.statement = bisect.bisect_right(starts, line.pieces[0].start) - 1


def _render(lines: list[Line]) -> str:
    texts: dict[int, str] = {}
    for group in _alignment_groups(lines):
        texts.update(zip(map(id, group), _aligned(group)))
    return "".join(texts.get(id(line), "") + "\n" for line in lines)


def _alignment_groups(lines: list[Line]) -> list[list[Line]]:
    """Runs of lines, a blank line ending each: a statement on several lines, or one-line statements."""
    spans = collections.Counter(line.statement for line in lines if line.pieces)
    groups: list[list[Line]] = [[]]
    key = None
    for line in lines:
        if line.blank:
            groups.append([])
            key = None
            continue
        if line.pieces:
            here = line.statement if spans[line.statement] > 1 else "one-line"
            if key is not None and here != key:
                groups.append([])
            key = here
        groups[-1].append(line)
    return [group for group in groups if group]


def _aligned(group: list[Line]) -> list[str]:
    """The group's lines with trailing annotations, then trailing comments, in columns."""
    texts = _with_annotations(group)
    column = _column([text for text, line in zip(texts, group) if line.pieces and line.comment is not None])
    out = []
    for text, line in zip(texts, group):
        if not line.pieces:  # a comment line
            out.append(" " * line.indent + line.comment)
        else:
            out.append(text if line.comment is None else text.ljust(column or 0) + " " * GAP + line.comment)
    return out


def _column(codes: list[str]) -> int | None:
    """Where an aligned `: SHAPE` or comment goes after these codes, less GAP (None: nowhere yet)."""
    widths = [len(code) for code in codes if len(code) <= MAX_ALIGN]
    return max(widths) if widths else None


def _with_annotations(group: list[Line]) -> list[str]:
    """Each line's code with its trailing `: SHAPE` in the group's column ("" for a comment line)."""
    column = _column([line.code for line in group if line.annotation and line.code.strip()])
    texts = []
    for line in group:
        if line.annotation is None:
            texts.append(line.code)
        elif line.code.strip():
            texts.append(line.code.ljust(column or 0) + " " * GAP + line.annotation)
        else:  # an annotation on a line of its own: in the column, or where a continuation goes
            texts.append(" " * (line.indent if column is None else column + GAP) + line.annotation)
    return texts


def _check_same_tokens(before: str, after: str, tokens: list[Token], path: str) -> None:
    """The formatted text must lex to the same tokens (up to spaces inside `add (` and `x =`) and
    hold the same comments: then it is the same spec, whatever the layout rules above get wrong."""
    try:
        formatted = _lex(after)[0]
    except (UnexpectedInput, RecursionError):
        raise FormatError("specc fmt made text that does not parse; please report it", path=path) from None
    if _token_key(formatted) != _token_key(tokens) or _comments(after, formatted) != _comments(before, tokens):
        raise FormatError("specc fmt would change the spec's tokens or comments; please report it", path=path)


def _token_key(tokens: list[Token]) -> list[tuple[str, str]]:
    return [(tok.type, re.sub(r"[ \t]", "", str(tok))) for tok in tokens]


def _comments(text: str, tokens: list[Token]) -> list[str]:
    found, end = [], 0
    for tok in tokens + [None]:
        stop = tok.start_pos if tok is not None else len(text)
        found += [m.group().rstrip() for m in GAPS.finditer(text, end, stop) if m.group() != "\n"]
        if tok is not None:
            end = tok.end_pos
    return found


# --- specc fmt FILE... ----------------------------------------------------------------------
Echo = Callable[[str], None]


def format_paths(paths: tuple[str, ...], *, check: bool, diff: bool, out: Echo, err: Echo) -> int:
    """`specc fmt`: format files in place (or, with `check` or `diff`, only say what would change).

    A directory stands for its .cnn files, recursively; `-` reads standard input and writes the
    result to `out`. A file that does not parse is left as it is, its diagnostic sent to `err`.
    Returns the exit status: 1 when a file failed, or would change under `check`; else 0."""
    counts = collections.Counter()
    for path in _spec_paths(paths, err, counts):
        counts[_format_path(path, check, diff, out, err)] += 1
    err(_summary(counts, check or diff))
    return 1 if counts["failed"] or (check and counts["changed"]) else 0


def _spec_paths(paths: tuple[str, ...], err: Echo, counts: collections.Counter) -> Iterator[str]:
    for path in paths:
        if path != "-" and os.path.isdir(path):
            found = sorted(_walk(path))
            if not found:
                err(f"{path}: error: no {SPEC_SUFFIX} files in this directory")
                counts["failed"] += 1
            yield from found
        else:
            yield path


def _walk(directory: str) -> Iterator[str]:
    # Symlinked directories are not followed: a link to an ancestor would loop.
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        yield from (os.path.join(root, name) for name in files if name.endswith(SPEC_SUFFIX))


def _format_path(path: str, check: bool, diff: bool, out: Echo, err: Echo) -> str:
    """'changed', 'unchanged' or 'failed'; writes the file unless `check` or `diff`."""
    name = "<stdin>" if path == "-" else path
    try:
        before = _read_stdin() if path == "-" else read_spec(path)
    except Unreadable as exc:
        err(f"{name}: error: cannot read it: {exc.reason}" + (f"\nhint: {exc.hint}" if exc.hint else ""))
        return "failed"
    try:
        after = format_source(before, name)
    except SpecError as exc:  # does not parse (or, a bug, would not be the same spec): left untouched
        err(str(exc))
        return "failed"
    changed = after != before
    if diff and changed:
        out(_unified_diff(name, before, after))
    if check or diff:
        if changed and check:
            err(f"would reformat {name}")
    elif path == "-":
        out(after)
    elif changed:
        try:
            _write(path, after)
        except OSError as exc:
            err(f"{name}: error: cannot write it: {exc.strerror or exc}")
            return "failed"
        err(f"reformatted {path}")
    return "changed" if changed else "unchanged"


def _read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise Unreadable(f"it is more than specc's limit of {MAX_SPEC_BYTES:,} bytes", hint=None)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"it is not UTF-8 text (byte {exc.start})") from None


def _write(path: str, text: str) -> None:
    """Replace the file at once (a new file renamed over it), so an interruption never leaves half
    a spec; through a symlink, the file it points to is the one replaced."""
    real = os.path.realpath(path)
    mode = stat.S_IMODE(os.stat(real).st_mode)
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(real), prefix=".specc-fmt-", suffix=SPEC_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(text.encode("utf-8"))
        os.chmod(temporary, mode)
        os.replace(temporary, real)
    except BaseException:
        os.unlink(temporary)
        raise


def _unified_diff(path: str, before: str, after: str) -> str:
    def split(text: str) -> list[str]:  # at "\n" only, as the parser counts lines (splitlines has more)
        return re.findall(r"[^\n]*\n|[^\n]+$", text)
    lines = difflib.unified_diff(split(before), split(after), f"{path}\t(original)", f"{path}\t(formatted)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _summary(counts: collections.Counter, dry: bool) -> str:
    def files(n: int) -> str:
        return f"{n} file{'s' if n != 1 else ''}"
    parts = [f"{files(counts['changed'])} {'would be reformatted' if dry else 'reformatted'}",
             f"{counts['unchanged']} unchanged"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    return ", ".join(parts)
