"""Parse phase: .cnn text -> nodes.SpecFile.

Lark's LALR parser reads grammar/cnn.lark; a Transformer turns its tree into
nodes carrying Spans, and Lark's exceptions become located SpecErrors.
"""
from __future__ import annotations

import contextvars
import functools
from pathlib import Path

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import nodes as n
from .errors import Span, SpecError

SHORTHANDS = {"s": "stride", "p": "padding", "d": "dilation", "g": "groups"}

# How the parser's token kinds read in "expected ..." messages.
TOKEN_WORDS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "DIMS": "a size such as 3x3",
    "KEY": "a keyword argument such as stride=2", "SHORT": "a shorthand such as s2",
    "CALL_NAME": "a block call such as vgg(1, 64)", "WORD": "a word such as sgd",
    "STRING": 'a quoted string', "BRANCH": "'concat(' or 'add('", "$END": "end of file",
}
TOKEN_NOUNS = {"NAME": "name", "INT": "integer", "FLOAT": "number", "DIMS": "size", "KEY": "keyword argument",
               "SHORT": "shorthand", "CALL_NAME": "block call", "BRANCH": "branch"}


def grammar_path() -> Path:
    """grammar/cnn.lark: beside the package when installed, at the repository root in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "grammar" / "cnn.lark", package.parent / "grammar" / "cnn.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("specc's grammar (grammar/cnn.lark) is missing from this installation")


@functools.lru_cache(maxsize=1)
def parser() -> lark.Lark:
    # cache=True stores the LALR tables keyed by the grammar's hash, so a changed
    # grammar is never served stale; it halves `specc check`'s start-up.
    return lark.Lark(grammar_path().read_text(), parser="lalr", propagate_positions=True,
                     maybe_placeholders=False, cache=True)


# Set while parsing an imported file, so that every span names its file.
_ORIGIN: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("origin", default=None)


def parse(source: str, path: str = "<spec>", imported: bool = False) -> n.SpecFile:
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
        if char == "/":
            hint = "integer division is written //"
        span = Span(line, column, line, column + 1)
    else:
        token = getattr(exc, "token", None)
        expected = sorted({_describe(t) for t in exc.expected})
        if isinstance(exc, UnexpectedEOF) or token is None or token.type == "$END":
            message = "unexpected end of file"
            lines = source.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
            span = Span(line, column, line, column + 1)
        else:
            noun = TOKEN_NOUNS.get(token.type)
            message = f"unexpected {noun + ' ' if noun else ''}{str(token)!r}"
            span = _token_span(token)
            if "'->'" in expected and token.type in ("CALL_NAME", "BRANCH", "INT", "DIMS"):
                hint = "elements of a chain are joined by '->'"
        if expected:
            message += "; expected " + _or_list(expected if len(expected) <= 8 else expected[:7] + ["..."])
    return SpecError(message, span, hint=hint)


def _or_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


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
        return n.Num(int(children[0]), _meta_span(meta))

    def float(self, meta, children):
        return n.Num(float(children[0]), _meta_span(meta))

    def name(self, meta, children):
        return n.Name(str(children[0]), _meta_span(meta))

    def _binop(op):
        return lambda self, meta, c: n.BinOp(op, c[0], c[1], _meta_span(meta))

    plus, minus, times, floordiv = _binop("+"), _binop("-"), _binop("*"), _binop("//")

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
            return n.Num(int(item), span)
        if item.type == "FLOAT":
            return n.Num(float(item), span)
        if item.type == "DIMS":
            return n.Dims(tuple(int(d) for d in item.split("x")), span)
        return n.Name(str(item), span)

    def shorthand(self, meta, children):
        tok = children[0]
        value = n.Num(int(tok[1:]), _token_span(tok))
        return n.Arg(SHORTHANDS[tok[0]], value, _meta_span(meta), shorthand=True)

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
        return ("repeat", self._expr(children[0]))

    def annotation(self, meta, children):
        return ("annotation", self._expr(children[0]))

    def element(self, meta, children):
        extras = dict(children[1:])
        annotation = extras.get("annotation")
        if isinstance(annotation, n.Num):
            annotation = n.Dims((annotation.value,), annotation.span)
        return n.Element(children[0], extras.get("repeat"), annotation, _meta_span(meta))

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
        params = tuple(str(c) for c in children[1:-1])
        return ("block", n.Block(name, params, children[-1], _meta_span(meta)))

    def setting(self, meta, children):
        key, *sign, tok = children
        value = {"INT": int, "FLOAT": float, "STRING": lambda t: t[1:-1]}.get(tok.type, str)(tok)
        value_span = _token_span(tok)
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
        return ("import", n.Import(str(children[0])[1:-1], _meta_span(meta)))

    def start(self, meta, children):
        spec = n.SpecFile(self.path, self.source)
        seen: dict[str, Span] = {}
        for item in children:
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
                spec.train = decl[0]
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
