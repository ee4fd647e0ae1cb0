"""Expressions: numbers, sizes, names, arithmetic, functions, and layers or blocks as values.

A value is an int, a float, a bool, a size (a tuple of ints, such as 1x7),
or a reference to something a chain can hold: a layer kind (`act=hardswish`),
a block (`se=squeeze`) or a block call (`se=squeeze(16, 64)`), so that a
block parameter can stand for a layer or a piece of chain. Arithmetic on a
size acts on each side (`p(k // 2)` with k = 1x7 gives 0x3).
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable, NamedTuple

from . import nodes as n
from .errors import SpecError, did_you_mean
from .registry import REGISTRY, LayerKind

# The shorthands sN, pN, dN, gN and the argument each sets (parse.py reads them; hints name them).
SHORTHANDS = {"s": "stride", "p": "padding", "d": "dilation", "g": "groups"}

# Integers beyond this are refused as they are computed: no real network needs
# them, and Python's unbounded ints would let `param a = (b * b)` chains eat memory.
MAX_INT = 2**63


class LayerRef(NamedTuple):
    """A layer kind used as a value: `act=relu`."""

    kind: LayerKind


class BlockRef(NamedTuple):
    """A block used as a value: `se=squeeze` (called later, with or without arguments)."""

    name: str


class CallRef(NamedTuple):
    """A block call used as a value: `se=squeeze(16, 64)`; its arguments are evaluated where it is written."""

    call: n.Call
    scope: dict


Ref = LayerRef | BlockRef | CallRef


ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "/": operator.truediv}
COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
               ">=": operator.ge}


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, LayerRef):
        return f"the layer {value.kind.name}"
    if isinstance(value, BlockRef):
        return f"the block {value.name}"
    if isinstance(value, CallRef):
        return value.call.text
    if isinstance(value, tuple):  # a size; after the refs, which are tuples too
        return "x".join(map(str, value))
    return str(value)


def divisible(value: float, divisor: int, minimum: int | None = None) -> int:
    """torchvision's _make_divisible: the nearest multiple of `divisor`, never below 90% of `value`."""
    minimum = divisor if minimum is None else minimum
    rounded = max(minimum, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class Function(NamedTuple):
    arity: tuple[int, int | None]  # least and most arguments (None: any number)
    apply: Callable[..., Any]
    summary: str


FUNCTIONS: dict[str, Function] = {
    "min": Function((2, None), min, "min(a, b, ...): the smallest"),
    "max": Function((2, None), max, "max(a, b, ...): the largest"),
    "ceil": Function((1, 1), math.ceil, "ceil(x): the least integer >= x"),
    "floor": Function((1, 1), math.floor, "floor(x): the greatest integer <= x"),
    "round": Function((1, 1), round, "round(x): the nearest integer, halves to even (as Python)"),
    "int": Function((1, 1), int, "int(x): x truncated toward zero (as Python's int())"),
    "divisible": Function((2, 3), divisible, "divisible(v, d): torchvision's _make_divisible, the nearest "
                                             "multiple of d not below 90% of v"),
    "size": Function((2, 2), lambda h, w: (h, w), "size(h, w): the size HxW from two integers"),
}


class Evaluator:
    """Evaluates expressions in a scope (a dict of names); `blocks` are the spec's block definitions."""

    def __init__(self, blocks: dict[str, n.Block]):
        self.blocks = blocks

    def evaluate(self, expr: n.Expr, scope: dict[str, Any]) -> Any:
        # By exact type, the commonest first: a deep network evaluates thousands of expressions.
        kind = type(expr)
        if kind is n.Name:
            return scope[expr.id] if expr.id in scope else self.name(expr, scope)
        if kind is n.Num:
            return self._bounded(expr.value, expr)
        if kind is n.Dims:
            return expr.values
        if kind is n.Func:
            return self.func(expr, scope)
        if kind is n.Neg:
            return self._arith("-", 0, self.operand(expr.operand, scope), expr)
        left, right = self.operand(expr.left, scope), self.operand(expr.right, scope)
        if expr.op in COMPARISONS:
            if isinstance(left, tuple) or isinstance(right, tuple):
                raise SpecError("sizes are not compared; compare their sides", expr.span)
            return COMPARISONS[expr.op](left, right)
        return self._arith(expr.op, left, right, expr)

    def name(self, expr: n.Name, scope: dict[str, Any]) -> Any:
        if expr.id in scope:
            return scope[expr.id]
        if expr.id in ("true", "false"):
            return expr.id == "true"
        if expr.id in REGISTRY:
            return LayerRef(REGISTRY[expr.id])
        if expr.id in self.blocks:
            return BlockRef(expr.id)
        raise SpecError(f"unknown name '{expr.id}'", expr.span, hint=_name_hint(expr.id, scope))

    def func(self, expr: n.Func, scope: dict[str, Any]) -> Any:
        if expr.name in self.blocks:  # a block call as a value: se=squeeze(16, 64)
            args = tuple(a for a in expr.args if not isinstance(a, n.KwArg))
            kwargs = tuple(a for a in expr.args if isinstance(a, n.KwArg))
            return CallRef(n.Call(expr.name, args, kwargs, expr.span, expr.text), scope)
        function = FUNCTIONS.get(expr.name)
        if function is None:
            known = sorted(FUNCTIONS) + sorted(self.blocks)
            raise SpecError(f"unknown function or block '{expr.name}'", expr.span,
                            hint=did_you_mean(expr.name, known) or f"functions: {', '.join(FUNCTIONS)}")
        if any(isinstance(a, n.KwArg) for a in expr.args):
            raise SpecError(f"{expr.name}() takes no keyword arguments", expr.span, hint=function.summary)
        least, most = function.arity
        if len(expr.args) < least or (most is not None and len(expr.args) > most):
            raise SpecError(f"{expr.name}() takes {_arity(function.arity)} but gets {len(expr.args)}",
                            expr.span, hint=function.summary)
        values = [self.number(a, scope) for a in expr.args]
        try:
            result = function.apply(*values)
        except (ValueError, OverflowError, ZeroDivisionError) as exc:
            raise SpecError(f"{expr.name}() cannot take {', '.join(map(describe, values))}: {exc}",
                            expr.span) from None
        return self._bounded(result, expr)

    def operand(self, expr: n.Expr, scope) -> int | float | tuple:
        """A number, or a size (arithmetic on a size acts on each side)."""
        value = self.evaluate(expr, scope)
        if isinstance(value, tuple) and not isinstance(value, (LayerRef, BlockRef, CallRef)) and all(
                isinstance(v, int) for v in value):
            return value
        return self._check_number(value, expr)

    def number(self, expr: n.Expr, scope) -> int | float:
        return self._check_number(self.evaluate(expr, scope), expr)

    @staticmethod
    def _check_number(value, expr) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"expected a number, got {describe(value)}", expr.span)
        return value

    def _arith(self, op: str, left, right, expr) -> Any:
        if isinstance(left, tuple) or isinstance(right, tuple):
            return self._sides(op, left, right, expr)
        if op in ("//", "/") and right == 0:
            raise SpecError("division by zero", expr.span)
        try:
            result = ARITHMETIC[op](left, right)
        except OverflowError:
            raise SpecError("the value is too large", expr.span) from None
        return self._bounded(result, expr)

    def _sides(self, op: str, left, right, expr) -> tuple:
        width = len(left) if isinstance(left, tuple) else len(right)
        lefts = left if isinstance(left, tuple) else (left,) * width
        rights = right if isinstance(right, tuple) else (right,) * width
        if len(lefts) != len(rights):
            raise SpecError(f"sizes {describe(left)} and {describe(right)} have different numbers of sides",
                            expr.span)
        return tuple(self._arith(op, a, b, expr) for a, b in zip(lefts, rights))

    @staticmethod
    def _bounded(value, expr):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise SpecError("the value is too large (specc's limit is 2**63)", expr.span)
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError("the value is not a finite number", expr.span)
        return value


def _arity(arity: tuple[int, int | None]) -> str:
    least, most = arity
    if most is None:
        return f"at least {least} arguments"
    if least == most:
        return f"{least} argument" + ("" if least == 1 else "s")
    return f"{least} to {most} arguments"


def _name_hint(name: str, scope) -> str | None:
    if len(name) > 1 and name[0] in SHORTHANDS and "x" in name[1:] and name[1:].replace("x", "").isdigit():
        key = SHORTHANDS[name[0]]
        return f"a shorthand takes one number; for a size write the keyword form {key}={name[1:]}"
    close = did_you_mean(name, list(scope))
    if close:
        return close
    names = sorted(scope)
    return f"known names: {', '.join(names)}" if names else None
