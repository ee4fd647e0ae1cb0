"""Parse phase: .cnn text -> nodes.SpecFile.

Lark's LALR parser reads grammar/cnn.lark; a Transformer turns its tree into
nodes carrying Spans, and Lark's exceptions become located SpecErrors.
"""
from __future__ import annotations

import contextvars
import functools
import math
import re
from pathlib import Path

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import nodes as n
from .errors import Span, SpecError, did_you_mean
from .evaluate import MAX_INT, SHORTHANDS
from .files import MAX_SPEC_BYTES
from .registry import MERGES

# How the parser's token kinds read in "expected ..." messages.
TOKEN_WORDS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "DIMS": "a size such as 3x3",
    "KEY": "a keyword argument such as stride=2", "SHORT": "a shorthand such as s2",
    "CALL_NAME": "a block call such as vgg(1, 64)", "WORD": "a word such as sgd",
    "STRING": 'a quoted string', "BRANCH": "a merge such as add(", "$END": "end of file",
    "SHORT_CALL": "a shorthand such as p(k // 2)", "SHAPE": "a shape such as 256x12x12 or 256x?x?",
}
TOKEN_NOUNS = {"NAME": "name", "INT": "integer", "FLOAT": "number", "DIMS": "size", "KEY": "keyword argument",
               "SHORT": "shorthand", "CALL_NAME": "block call", "BRANCH": "merge", "SHORT_CALL": "shorthand"}
# What may follow a layer's name; an "expected" list names them as one thing.
ARGUMENT_TOKENS = {"INT", "FLOAT", "DIMS", "NAME", "KEY", "SHORT", "SHORT_CALL", "LPAR"}


def grammar_path() -> Path:
    """grammar/cnn.lark: beside the package when installed, at the repository root in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "grammar" / "cnn.lark", package.parent / "grammar" / "cnn.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("specc's grammar (grammar/cnn.lark) is missing from this installation")


def grammar_text() -> str:
    """The grammar with the registry's merge kinds filled in (one place to add a merge)."""
    merges = "|".join(re.escape(name) for name in sorted(MERGES, key=len, reverse=True))
    return grammar_path().read_text().replace("@MERGES@", merges)


@functools.lru_cache(maxsize=1)
def parser() -> lark.Lark:
    # The LALR tables ship in the package (tables.py says why: never Lark's temp-dir pickle cache).
    from .tables import load_parser
    return load_parser(grammar_text())


# Set while parsing an imported file, so that every span names its file.
_ORIGIN: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("origin", default=None)


def parse(source: str, path: str = "<spec>", imported: bool = False) -> n.SpecFile:
    if len(source) > MAX_SPEC_BYTES:  # before parsing: 50 MB of `-> relu` would take minutes and GBs
        raise SpecError(f"the spec is {len(source):,} characters, more than specc's limit of "
                        f"{MAX_SPEC_BYTES:,}", path=path, hint="split it into files that import each other")
    origin = _ORIGIN.set((path, source) if imported else None)
    try:
        tree = parser().parse(source)
        return ToNodes(source, path).transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, source).located(path, source) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, SpecError):
            raise exc.orig_exc.located(path, source) from None
        if isinstance(exc.orig_exc, RecursionError):
            raise SpecError("the spec nests too deeply", path=path, source=source) from None
        raise
    except RecursionError:
        raise SpecError("the spec nests too deeply", path=path, source=source) from None
    finally:
        _ORIGIN.reset(origin)


def _token_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column, _ORIGIN.get())


def _meta_span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column, _ORIGIN.get())


def _describe(terminal: str) -> str:
    if terminal in TOKEN_WORDS:
        return TOKEN_WORDS[terminal]
    pattern = next((t.pattern for t in parser().terminals if t.name == terminal), None)
    return repr(pattern.value) if pattern is not None and pattern.type == "str" else terminal


def _syntax_error(exc: UnexpectedInput, source: str) -> SpecError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    hint = None
    if isinstance(exc, UnexpectedCharacters):
        char = source[exc.pos_in_stream] if exc.pos_in_stream < len(source) else ""
        message = f"unexpected character {char!r}"
        if char == "?":
            hint = "'?' (a side that may vary) is allowed only in a ': SHAPE' annotation"
        span = Span(line, column, line, column + 1)
        return SpecError(message, span, hint=hint)
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or token is None or token.type == "$END":
        # The last line as the parser counts lines (only "\n" ends one), a final newline ignored.
        lines = (source[:-1] if source.endswith("\n") else source).split("\n")
        line, column = len(lines), len(lines[-1]) + 1
        return SpecError("unexpected end of file" + _expected(exc.expected), Span(line, column, line, column + 1))
    span = _token_span(token)
    if str(token) in ("|", "->"):
        inside = _open_call(source, token.start_pos)
        if inside is not None and inside not in MERGES:
            return _not_a_merge(inside, source, span)
    if str(token) == "-" and {"INT", "DIMS"} & set(exc.expected):
        return SpecError("sizes, channels and counts are positive: unexpected '-'", span,
                         hint="a negative value (a slope, say) is written as an expression: (-0.2)")
    noun = TOKEN_NOUNS.get(token.type)
    message = f"unexpected {noun + ' ' if noun else ''}{str(token)!r}" + _expected(exc.expected)
    if "'->'" in {_describe(t) for t in exc.expected} and token.type in ("CALL_NAME", "BRANCH", "INT", "DIMS"):
        hint = "elements of a chain are joined by '->'"
    return SpecError(message, span, hint=hint)


def _expected(terminals) -> str:
    """'; expected A, B or C', naming a layer's many argument forms as one."""
    terminals = set(terminals)
    words = []
    if len(terminals & ARGUMENT_TOKENS) >= 3:
        terminals -= ARGUMENT_TOKENS
        words.append("a layer argument (such as 64, 3x3, s2 or stride=2)")
    words += sorted({_describe(t) for t in terminals})
    return "; expected " + _or_list(words) if words else ""


def _open_call(source: str, position: int) -> str | None:
    """The name of the innermost `name(` still open at `position` (comments skipped), if any."""
    stack: list[str | None] = []
    text = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), source[:position])
    for match in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*\(|\(|\)", text):
        if match.group() == ")":
            if stack:
                stack.pop()
        else:
            stack.append(match.group(1))
    return stack[-1] if stack else None


def _not_a_merge(name: str, source: str, span: Span) -> SpecError:
    merges = ", ".join(MERGES)
    blocks = re.findall(r"\bblock[ \t]+([A-Za-z_][A-Za-z0-9_]*)", source)
    if name in blocks:
        return SpecError(f"'{name}' is a block: its arguments are separated by ',', not branches", span,
                         hint=f"'|' separates the branches of a merge: {merges}")
    hint = did_you_mean(name, list(MERGES) + blocks)
    return SpecError(f"unknown block or merge '{name}'", span,
                     hint=(hint + "; " if hint else "") + f"the merges are {merges}")


def _or_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


# 2**63 has 19 digits: a longer literal is refused before int() converts it (Python refuses
# strings of 4,300+ digits, and a long one costs quadratic time).
MAX_DIGITS = len(str(MAX_INT))


def _int(text: str, tok: Token) -> int:
    """An integer literal (or one side of a size) of token `tok`, within specc's bound."""
    digits = text.lstrip("0") or "0"
    value = int(digits) if len(digits) <= MAX_DIGITS else MAX_INT + 1
    if value > MAX_INT:
        raise SpecError("the value is too large (specc's limit is 2**63)", _token_span(tok))
    return value


def _float(tok: Token) -> float:
    value = float(tok)
    if not math.isfinite(value):  # 1e999, or 400 digits before the point
        raise SpecError("the value is too large for a number", _token_span(tok))
    return value


def _key(tok: Token) -> str:
    return str(tok).rstrip("= \t")


@v_args(meta=True)
class ToNodes(Transformer):
    """Lark tree -> nodes; one method per grammar rule."""

    def __init__(self, source: str, path: str):
        super().__init__()
        self.source, self.path = source, path

    def _text(self, meta) -> str:
        return " ".join(self.source[meta.start_pos:meta.end_pos].split())

    # expressions
    def int(self, meta, children):
        return n.Num(_int(children[0], children[0]), _meta_span(meta))

    def float(self, meta, children):
        return n.Num(_float(children[0]), _meta_span(meta))

    def name(self, meta, children):
        return n.Name(str(children[0]), _meta_span(meta))

    def _binop(op):
        return lambda self, meta, c: n.BinOp(op, c[0], c[1], _meta_span(meta))

    plus, minus, times, floordiv, truediv = _binop("+"), _binop("-"), _binop("*"), _binop("//"), _binop("/")

    def compare(self, meta, children):
        return n.BinOp(str(children[1]), children[0], children[2], _meta_span(meta))

    def dims(self, meta, children):
        return self._expr(children[0])

    def func(self, meta, children):
        return n.Func(str(children[0])[:-1].rstrip(), tuple(children[1:]), _meta_span(meta), self._text(meta))

    def neg(self, meta, children):
        return n.Neg(children[0], _meta_span(meta))

    # arguments
    def value(self, meta, children):
        return n.Arg(None, self._expr(children[0]), _meta_span(meta))

    def _expr(self, item):
        if not isinstance(item, Token):
            return item
        span = _token_span(item)
        if item.type == "INT":
            return n.Num(_int(item, item), span)
        if item.type == "FLOAT":
            return n.Num(_float(item), span)
        if item.type == "DIMS":
            return n.Dims(tuple(_int(d, item) for d in item.split("x")), span)
        return n.Name(str(item), span)

    def shorthand(self, meta, children):
        tok = children[0]
        if tok.type == "SHORT_CALL":  # p(k // 2)
            value = children[1]
        else:
            value = n.Num(_int(tok[1:], tok), _token_span(tok))
        return n.Arg(SHORTHANDS[tok[0]], value, _meta_span(meta), shorthand=True)

    def signed(self, meta, children):
        value = self._expr(children[0])
        return n.Arg(None, n.Neg(value, _meta_span(meta)), _meta_span(meta))

    def kwarg(self, meta, children):
        key, value = children
        return n.Arg(_key(key), value.value, _meta_span(meta))

    # chain elements
    def layer(self, meta, children):
        return n.Layer(str(children[0]), tuple(children[1:]), _meta_span(meta), self._text(meta))

    def kwexpr(self, meta, children):
        return n.KwArg(_key(children[0]), children[1], _meta_span(meta))

    def call(self, meta, children):
        args = tuple(c for c in children[1:] if not isinstance(c, n.KwArg))
        kwargs = tuple(c for c in children[1:] if isinstance(c, n.KwArg))
        return n.Call(str(children[0])[:-1], args, kwargs, _meta_span(meta), self._text(meta))

    def branch(self, meta, children):
        mode = str(children[0]).rstrip("( \t")
        return n.Branch(mode, tuple(children[1:]), _meta_span(meta))

    def group(self, meta, children):
        return n.Group(children[0], _meta_span(meta))

    def repeat(self, meta, children):
        index = str(children[1]) if len(children) > 1 else None
        return ("repeat", (self._expr(children[0]), index))

    def annotation(self, meta, children):
        tok = children[0]
        sides = tuple(None if side == "?" else _int(side, tok) for side in str(tok).split("x"))
        return ("annotation", n.Dims(sides, _token_span(tok)))

    def element(self, meta, children):
        extras = dict(children[1:])
        count, index = extras.get("repeat", (None, None))
        return n.Element(children[0], count, extras.get("annotation"), _meta_span(meta), index)

    def chain(self, meta, children):
        return n.Chain(tuple(children), _meta_span(meta))

    # declarations
    def network(self, meta, children):
        return ("network", (str(children[0]), _meta_span(meta)))

    def input(self, meta, children):
        dims = self._expr(children[0])
        return ("input", dims if isinstance(dims, n.Dims) else n.Dims((dims.value,), dims.span))

    def param(self, meta, children):
        return ("param", n.Param(_key(children[0]), children[1], _meta_span(meta)))

    def default(self, meta, children):
        return ("default", n.Default(str(children[0]), tuple(children[1:]), _meta_span(meta)))

    def block(self, meta, children):
        name = str(children[0]).rstrip("(")
        params, defaults = [], {}
        for item in children[1:-1]:
            if isinstance(item, n.KwArg):  # act=relu
                params.append(item.key)
                defaults[item.key] = item.value
            else:
                if defaults:
                    raise SpecError(f"block '{name}': parameter '{item}' without a default follows one with a "
                                    f"default", _token_span(item), hint="put parameters with defaults last")
                params.append(str(item))
        return ("block", n.Block(name, tuple(params), children[-1], _meta_span(meta), defaults))

    def setting(self, meta, children):
        key, *sign, tok = children
        value = {"INT": lambda t: _int(t, t), "FLOAT": _float, "STRING": lambda t: t[1:-1]}.get(tok.type, str)(tok)
        value_span = _token_span(tok)
        if sign and tok.type not in ("INT", "FLOAT"):
            raise SpecError(f"'-' goes only before a number, not before {str(tok)!r}",
                            _token_span(sign[0]).cover(value_span),
                            hint='a word that starts with "-" is written quoted: "-mnist"')
        if sign:
            value, value_span = -value, _token_span(sign[0]).cover(value_span)
        name, start = _key(key), _token_span(key)
        return n.Setting(name, value, start._replace(end_column=start.column + len(name)), value_span)

    def train(self, meta, children):
        settings: dict[str, n.Setting] = {}
        for setting in children:
            if setting.key in settings:
                raise SpecError(f"train setting '{setting.key}' is given twice", setting.key_span,
                                hint=f"first given at line {settings[setting.key].key_span.line}")
            settings[setting.key] = setting
        return ("train", (settings, _meta_span(meta)))

    def import_(self, meta, children):
        settings = tuple(children[1:])
        keys = [s.key for s in settings]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                raise SpecError(f"import setting '{key}' is given twice", settings[i].span)
        return ("import", n.Import(str(children[0])[1:-1], _meta_span(meta), settings))

    def start(self, meta, children):
        return assemble(self.path, self.source, children)


def assemble(path: str, source: str, items) -> n.SpecFile:
    """The file's declarations and body (the `start` rule's children) gathered into a SpecFile."""
    spec = n.SpecFile(path, source)
    seen: dict[str, Span] = {}
    for item in items:
        if isinstance(item, n.Chain):
            spec.body = item
            continue
        kind, decl = item
        if kind in ("network", "input"):
            span = decl[1] if kind == "network" else decl.span
            _once(seen, kind, f"'{kind}' is given twice", span)
            setattr(spec, kind, decl)
        elif kind == "param":
            _once(seen, "param " + decl.name, f"param '{decl.name}' is defined twice", decl.span)
            spec.params.append(decl)
        elif kind == "default":
            spec.defaults.append(decl)
        elif kind == "import":
            spec.imports.append(decl)
        elif kind == "train":
            _once(seen, "train", "the 'train' section is given twice", decl[1])
            spec.train = dict(decl[0])  # its own: a reparsed statement's nodes are shared
        else:
            _once(seen, "block " + decl.name, f"block '{decl.name}' is defined twice", decl.span)
            if len(set(decl.params)) != len(decl.params):
                raise SpecError(f"block '{decl.name}' names a parameter twice", decl.span)
            spec.blocks[decl.name] = decl
    return spec


def _once(seen: dict[str, Span], key: str, message: str, span: Span) -> None:
    if key in seen:
        raise SpecError(message, span, hint=f"first given at line {seen[key].line}")
    seen[key] = span
