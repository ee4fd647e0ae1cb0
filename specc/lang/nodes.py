"""The syntax tree of a .cnn file, as parse.py builds it from Lark's tree.

Nodes are plain data with a Span; expressions stay unevaluated until
expand.py resolves them in the scope of a block call.
"""
from __future__ import annotations

from typing import NamedTuple

from .errors import Span


# --- expressions ---------------------------------------------------------
class Num(NamedTuple):
    value: int | float
    span: Span


class Name(NamedTuple):
    id: str
    span: Span


class BinOp(NamedTuple):
    op: str  # one of + - * // / and the comparisons == != < <= > >=
    left: "Expr"
    right: "Expr"
    span: Span


class Neg(NamedTuple):
    operand: "Expr"
    span: Span


class Dims(NamedTuple):
    """A literal size such as 5x5 or 1x28x28 (None for a `?` side of an annotation)."""

    values: tuple[int | None, ...]
    span: Span


class Func(NamedTuple):
    """`name(arg, ...)` inside an expression: a function such as divisible(), or a block call as a value."""

    name: str
    args: tuple["Expr", ...]
    span: Span
    text: str


Expr = Num | Name | BinOp | Neg | Dims | Func


# --- layer arguments -------------------------------------------------------
class Arg(NamedTuple):
    """One argument as written: bare (`6`, `5x5`, `ceil`), shorthand (`s2`) or keyword (`stride=2`)."""

    key: str | None  # None for bare values
    value: Expr
    span: Span
    shorthand: bool = False


# --- chain elements --------------------------------------------------------
class Layer(NamedTuple):
    op: str
    args: tuple[Arg, ...]
    span: Span
    text: str  # the layer as written, for summaries


class KwArg(NamedTuple):
    """`name=value` in a block call."""

    key: str
    value: Expr
    span: Span


class Call(NamedTuple):
    block: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    text: str


class Branch(NamedTuple):
    mode: str  # a merge kind of the registry: concat, add, mul, split
    chains: tuple["Chain", ...]
    span: Span


class Group(NamedTuple):
    chain: "Chain"
    span: Span


class Element(NamedTuple):
    primary: Layer | Call | Branch | Group
    repeat: Expr | None
    annotation: Dims | None
    span: Span
    index: str | None = None  # `* n as i`: the name bound to 0..n-1


class Chain(NamedTuple):
    elements: tuple[Element, ...]
    span: Span


# --- top-level declarations ------------------------------------------------
class Param(NamedTuple):
    name: str
    value: Expr
    span: Span


class Default(NamedTuple):
    op: str
    args: tuple[Arg, ...]
    span: Span


class Block(NamedTuple):
    name: str
    params: tuple[str, ...]
    body: Chain
    span: Span
    defaults: dict[str, "Expr"] = {}  # parameter -> default expression, evaluated at each call


class Setting(NamedTuple):
    """One `key = value` line of the train section."""

    key: str
    value: int | float | str
    key_span: Span
    value_span: Span


class Import(NamedTuple):
    path: str  # as written, relative to the importing file
    span: Span
    settings: tuple[KwArg, ...] = ()  # `(eps = 0.001)`: values for the imported files' params


class SpecFile:
    """A whole file: its declarations and its body chain."""

    def __init__(self, path: str, source: str):
        self.path, self.source = path, source
        self.network: tuple[str, Span] | None = None
        self.input: Dims | None = None
        self.params: list[Param] = []
        self.defaults: list[Default] = []
        self.blocks: dict[str, Block] = {}
        self.body: Chain | None = None
        self.train: dict[str, Setting] = {}
        self.imports: list[Import] = []
        # param -> (value, the import line that set it), filled in by imports.py
        self.import_settings: dict[str, tuple[Expr, Import]] = {}
        # the text of every imported file, keyed by its path relative to this file's directory (imports.py)
        self.sources: dict[str, str] = {}
