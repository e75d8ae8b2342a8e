"""Pydantic field types for spec values that are sizes.

A size is an integer or a string expression over the declared symbols (parsed by
analyzer.spec.expressions, never evaluated as Python). Validation needs the
declared symbols, so it reads them from the pydantic validation context
(`SpecContext`). Each size is checked at the symbols' default values at once;
a size that depends on symbols is also handed back as a pending constraint, so
the domain check can test it again at any other values (`--set`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import sympy
from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema

from analyzer.constraints import MAX_VALUE_BITS
from analyzer.spec.expressions import ExpressionSyntaxError, parse_expression
from analyzer.symbolic import evaluate


@dataclass
class PendingSize:
    """A symbolic size that must stay an integer >= minimum at every symbol value."""

    field: str
    expr: sympy.Expr
    minimum: int


@dataclass
class SpecContext:
    symbols: dict[str, sympy.Symbol]
    defaults: dict[sympy.Symbol, int]
    pending: list[PendingSize] = field(default_factory=list)


class SizeValueError(ValueError):
    """A size that is not acceptable; keeps the expression text and the parser's column."""

    def __init__(self, message: str, text: str | None = None, column: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.text = text
        self.column = column
        self.hint = hint


def _values_text(expr: sympy.Expr, defaults: dict[sympy.Symbol, int]) -> str:
    used = sorted(expr.free_symbols, key=lambda s: s.name)
    return ", ".join(f"{s.name}={defaults[s]}" for s in used if s in defaults)


def to_size(value: Any, info: ValidationInfo | None, minimum: int) -> sympy.Expr:
    context = info.context if info is not None else None
    if not isinstance(context, SpecContext):
        raise RuntimeError("size fields need a SpecContext in the validation context")
    if isinstance(value, bool):
        raise SizeValueError(f"expected an integer or an expression, got {str(value).lower()}")
    if isinstance(value, int):
        expr: sympy.Expr = sympy.Integer(value)
        text = str(value)
    elif isinstance(value, float):
        raise SizeValueError(f"{value} is not an integer: sizes are whole numbers")
    elif isinstance(value, str):
        text = value
        try:
            expr = parse_expression(value, context.symbols)
        except ExpressionSyntaxError as exc:
            raise SizeValueError(exc.message, value, exc.column, exc.hint) from None
    else:
        raise SizeValueError(f"expected an integer or an expression, got {type(value).__name__}")
    try:
        at_defaults = evaluate(expr, context.defaults)
    except ValueError:
        where = _values_text(expr, context.defaults)
        raise SizeValueError(f"{text} divides by zero" + (f" at {where}" if where else "")) from None
    if max(abs(at_defaults.p), at_defaults.q).bit_length() > MAX_VALUE_BITS:
        raise SizeValueError(f"{text} is larger than 2**{MAX_VALUE_BITS} at the symbols' defaults (nnspec's cap on numbers)")
    where = _values_text(expr, context.defaults)
    shown = f"{text} = {at_defaults} at {where}" if where and text != str(at_defaults) else str(at_defaults)
    if not at_defaults.is_Integer:
        raise SizeValueError(f"{shown}, which is not an integer", hint="use // for floor division")
    if at_defaults < minimum:
        raise SizeValueError(f"must be at least {minimum}, got {shown}")
    if expr.free_symbols and info is not None:
        context.pending.append(PendingSize(info.field_name or "?", expr, minimum))
    return expr


def _size(minimum: int) -> Any:
    return BeforeValidator(lambda value, info: to_size(value, info, minimum))


def _size_list(value: Any, info: ValidationInfo) -> tuple[sympy.Expr, ...]:
    """An int/expression or a list of them (Keras accepts both for kernel_size etc.)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise SizeValueError("expected at least one size")
    return tuple(to_size(item, info, 1) for item in items)


def _reshape_dims(value: Any, info: ValidationInfo) -> tuple[sympy.Expr, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise SizeValueError("target_shape must be a non-empty list of sizes (one may be -1)")
    dims = [sympy.Integer(-1) if item == -1 and not isinstance(item, bool) else to_size(item, info, 1) for item in value]
    if (inferred := sum(1 for d in dims if d == -1)) > 1:
        raise SizeValueError(f"{inferred} entries are -1, but only one axis can be inferred")
    return tuple(dims)


_SIZE_SCHEMA = WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]})
_SIZES_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"},
               {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}]}
)

Size = Annotated[Any, _size(1), _SIZE_SCHEMA]
"""An integer >= 1, or an expression over the spec's symbols."""

NonNegativeSize = Annotated[Any, _size(0), WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]})]

Sizes = Annotated[Any, BeforeValidator(_size_list), _SIZES_SCHEMA]
"""One size or a list of sizes (kernel_size, strides, dilation_rate)."""

ReshapeDims = Annotated[
    Any,
    BeforeValidator(_reshape_dims),
    WithJsonSchema({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}),
]

Rate = Annotated[float, Field(ge=0, lt=1, strict=True, allow_inf_nan=False)]
"""A fraction in [0, 1) such as a dropout rate: a number (not a string or boolean). Never enters a count."""

Real = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A finite number such as epsilon or momentum. Never enters a count."""
