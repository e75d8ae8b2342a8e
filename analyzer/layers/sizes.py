"""Size-field types some layer families need beyond analyzer.spec.fields:
optional size lists, non-negative size lists, and Keras' padding / cropping
forms (an int, a pair, or one pair per spatial axis).

All values go through analyzer.spec.fields.to_size, so expressions over the
spec's symbols work and are checked like every other size.
"""

from __future__ import annotations

from typing import Annotated, Any

import sympy
from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema

from analyzer.spec.fields import SizeValueError, to_size

_ITEM_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}


def _sizes(value: Any, info: ValidationInfo, minimum: int) -> tuple[sympy.Expr, ...] | None:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise SizeValueError("expected at least one size")
    return tuple(to_size(item, info, minimum) for item in items)


OptionalSize = Annotated[
    Any, BeforeValidator(lambda v, info: None if v is None else to_size(v, info, 1)),
    WithJsonSchema({"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1}, {"type": "string"}]}),
]
"""None, or one size (e.g. MultiHeadAttention's value_dim, whose None means 'key_dim')."""

OptionalSizes = Annotated[
    Any, BeforeValidator(lambda v, info: _sizes(v, info, 1)),
    WithJsonSchema({"anyOf": [{"type": "null"}, _ITEM_SCHEMA, {"type": "array", "items": _ITEM_SCHEMA}]}),
]
"""None, one size, or a list of sizes (e.g. pooling strides, whose None means 'the pool size')."""

OptionalNonNegativeSizes = Annotated[
    Any, BeforeValidator(lambda v, info: _sizes(v, info, 0)),
    WithJsonSchema({"anyOf": [{"type": "null"}, _ITEM_SCHEMA, {"type": "array", "items": _ITEM_SCHEMA}]}),
]
"""As OptionalSizes, but 0 is allowed (output_padding)."""


def _pair(value: Any, info: ValidationInfo) -> tuple[sympy.Expr, sympy.Expr]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SizeValueError(f"expected one size or a pair (before, after), got {len(value)} values")
        return to_size(value[0], info, 0), to_size(value[1], info, 0)
    size = to_size(value, info, 0)
    return size, size


def _one_d_pairs(value: Any, info: ValidationInfo) -> tuple[tuple[sympy.Expr, sympy.Expr], ...]:
    """Keras 1D padding / cropping: an int (both sides) or a pair (before, after)."""
    return (_pair(value, info),)


def _two_d_pairs(value: Any, info: ValidationInfo) -> tuple[tuple[sympy.Expr, sympy.Expr], ...]:
    """Keras 2D padding / cropping: an int (all four sides), a pair (symmetric height,
    symmetric width), or ((top, bottom), (left, right))."""
    if not isinstance(value, (list, tuple)):
        size = to_size(value, info, 0)
        return (size, size), (size, size)
    if len(value) != 2:
        raise SizeValueError(f"expected an int, a pair, or a pair of pairs, got {len(value)} values")
    return _pair(value[0], info), _pair(value[1], info)


_PAIRS_SCHEMA = WithJsonSchema({"anyOf": [_ITEM_SCHEMA, {"type": "array"}]})
OneDPairs = Annotated[Any, BeforeValidator(_one_d_pairs), _PAIRS_SCHEMA]
TwoDPairs = Annotated[Any, BeforeValidator(_two_d_pairs), _PAIRS_SCHEMA]
