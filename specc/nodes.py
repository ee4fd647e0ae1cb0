"""The syntax tree of a .cnn file, as parse.py builds it from Lark's tree.

Nodes are plain data with a Span; expressions stay unevaluated until
expand.py resolves them in the scope of a block call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span


# --- expressions ---------------------------------------------------------
@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * //
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Dims:
    """A literal size such as 5x5 or 1x28x28."""

    values: tuple[int, ...]
    span: Span


Expr = Num | Name | BinOp | Neg | Dims


# --- layer arguments -------------------------------------------------------
@dataclass(frozen=True)
class Arg:
    """One argument as written: bare (`6`, `5x5`, `ceil`), shorthand (`s2`) or keyword (`stride=2`)."""

    key: str | None  # None for bare values
    value: Expr
    span: Span
    shorthand: bool = False


# --- chain elements --------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    op: str
    args: tuple[Arg, ...]
    span: Span
    text: str  # the layer as written, for summaries


@dataclass(frozen=True)
class Call:
    block: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr, Span], ...]
    span: Span
    text: str


@dataclass(frozen=True)
class Branch:
    mode: str  # "concat" or "add"
    chains: tuple["Chain", ...]
    span: Span


@dataclass(frozen=True)
class Group:
    chain: "Chain"
    span: Span


@dataclass(frozen=True)
class Element:
    primary: Layer | Call | Branch | Group
    repeat: Expr | None
    annotation: Dims | None
    span: Span


@dataclass(frozen=True)
class Chain:
    elements: tuple[Element, ...]
    span: Span


# --- top-level declarations ------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Default:
    op: str
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Block:
    name: str
    params: tuple[str, ...]
    body: Chain
    span: Span


@dataclass
class SpecFile:
    path: str
    source: str
    network: tuple[str, Span] | None = None
    input: Dims | None = None
    params: list[Param] = field(default_factory=list)
    defaults: list[Default] = field(default_factory=list)
    blocks: dict[str, Block] = field(default_factory=dict)
    body: Chain | None = None
