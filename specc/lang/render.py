"""A layer's resolved arguments written back in the language: `conv 1x1 64 s2`.

The summary shows this where a spec says `conv 1x1 c1` or `fc classes`: the
values the network was built with, in the syntax the user writes. Arguments at
their defaults are left out; the text parses back to the same arguments
(tests/test_render.py checks that on every layer of every shipped spec).
"""
from __future__ import annotations

from typing import Any

from .evaluate import SHORTHANDS, BlockRef, CallRef, LayerRef
from .registry import REQUIRED, Args, LayerKind

SHORTHAND_OF = {arg: letter for letter, arg in SHORTHANDS.items()}


def layer_text(kind: LayerKind, args: Args) -> str:
    """`kind` with `args` in spec syntax, positional forms first, defaults omitted."""
    words = [kind.name]
    written = set()
    if kind.dims is not None and args.get(kind.dims) is not None:
        words.append(_dims(args[kind.dims], square_as_int=kind.dims == kind.main))
        written.add(kind.dims)
    if kind.main is not None and kind.main not in written and _differs(kind, kind.main, args):
        words.append(_value(args[kind.main]))
        written.add(kind.main)
    for arg in kind.args:
        if arg.name in written or not _differs(kind, arg.name, args):
            continue
        words.append(_argument_text(kind, arg.name, args[arg.name]))
    return " ".join(words)


def call_text(block: str, values) -> str:
    """A block call with its argument values: `bneck(16, 3, 72, 24, squeeze, relu, 2)`."""
    return f"{block}({', '.join(ref_text(v) if is_ref(v) else _value(v) for v in values)})"


def is_ref(value: Any) -> bool:
    return isinstance(value, (LayerRef, BlockRef, CallRef))


def ref_text(value: LayerRef | BlockRef | CallRef) -> str:
    """A layer, block or block call passed as a value, as written: `relu`, `squeeze`, `squeeze(16, 64)`."""
    if isinstance(value, LayerRef):
        return value.kind.name
    if isinstance(value, BlockRef):
        return value.name
    return value.call.text


def _argument_text(kind: LayerKind, name: str, value: Any) -> str:
    if name in kind.flags and value is True:
        return name
    letter = SHORTHAND_OF.get(name)
    square = _square(value)
    if letter is not None and square is not None:
        return f"{letter}{square}"
    return f"{name}={_value(value)}"


def _differs(kind: LayerKind, name: str, args: Args) -> bool:
    """Whether `name` must be written: it has no default, or its value is not the default."""
    arg = kind.arg(name)
    value = args.get(name)
    if arg.default is REQUIRED:
        return True
    return not _same(value, arg.default)


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, tuple) and not isinstance(default, tuple) and default is not None:
        return all(v == default for v in value)
    return value == default and type(value) is type(default) or (value is None and default is None)


def _square(value: Any) -> int | None:
    """The single number of an int or a square pair; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] and isinstance(value[0], int):
        return value[0]
    return None


def _dims(value: Any, square_as_int: bool) -> str:
    if isinstance(value, tuple):
        if square_as_int and value[0] == value[1]:
            return str(value[0])
        return "x".join(str(v) for v in value)
    return str(value) if square_as_int else f"{value}x{value}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)
