"""`--convention nnspec` (the default): nnspec's own FLOPs, dot + bias + activation
+ other, as docs/conventions.md defines them per layer."""

from __future__ import annotations

import sympy

from analyzer.conventions.base import Profile
from analyzer.conventions.registry import LAYER_TYPES, register_profile
from analyzer.report import LayerRow


def flops(row: LayerRow) -> sympy.Expr:
    """nnspec's FLOPs of the layer (`Counts.flops`: dot + bias + activation + other)."""
    return row.counts.flops


PROFILE = register_profile(Profile(
    name="nnspec",
    tool="nnspec (docs/conventions.md)",
    unit="FLOPs: 2n-1 per n-term dot product output, +1 per bias, activations and elementwise work",
    per_copy=False,
    rules={type_name: flops for type_name in sorted(LAYER_TYPES)},
))
