"""`--convention seed-approx`: the founding document's rule of thumb,
FLOPs ≈ params x H x W x 2, applied to every layer with params.

Not a tool to match exactly, and not exact itself: it counts every parameter
(biases, BatchNorm's four vectors) once per position where the layer's weights
are applied. The document applies it to conv, dense and (lacking a formula) the
GRU; for a recurrent layer the positions are its timesteps.
"""

from __future__ import annotations

import sympy

from analyzer.conventions.base import RECURRENT, Profile, positions
from analyzer.conventions.registry import LAYER_TYPES, register_profile
from analyzer.report import LayerRow


def weight_positions(row: LayerRow) -> sympy.Expr:
    """Where the layer's weights are applied: the output positions (H x W, the product of every output axis but the
    channels); for a recurrent layer (GRU, LSTM, SimpleRNN, Bidirectional), its T timesteps (the weights act at
    every step, whatever return_sequences says)."""
    if row.type in (*RECURRENT, "Bidirectional"):
        return row.input_shapes[0][0]
    return positions(row)


def params_times_positions(row: LayerRow) -> sympy.Expr:
    """The founding document: "FLOPs = paras * H * W * 2" (0 for a layer without params)."""
    return 2 * row.counts.params * weight_positions(row)


PROFILE = register_profile(Profile(
    name="seed-approx",
    tool="the founding document's approximation",
    unit="2 · params · output positions (timesteps for a recurrent layer), layers with params only",
    per_copy=False,
    rules={type_name: params_times_positions for type_name in sorted(LAYER_TYPES)},
    approximate=True,
))
