"""`--convention torch`: torch.utils.flop_counter.FlopCounterMode (torch 2.13, CPU) on nnspec's
PyTorch export.

FlopCounterMode counts dispatched aten ops that have a formula in its `flop_registry`:
mm, addmm, bmm, baddbmm, convolution, attention. Each counts 2 FLOPs per
multiply-accumulate ("Should be 2 * k - 1 technically"), never the bias (`addmm_flop`
= `mm_flop`; `conv_flop_count`: "Computation for bias are ignored"). Every other op
(normalization, activations, elementwise math, pooling, softmax) counts 0.
"""

from __future__ import annotations

import sympy

from analyzer.conventions import torch_export as export
from analyzer.conventions.base import (
    CONV_TRANSPOSES,
    CONVOLUTIONS,
    COST_FREE,
    GLOBAL_POOLS,
    MERGES,
    POOLS,
    RECURRENT,
    Profile,
    table,
    wrapper_rules,
)
from analyzer.conventions.registry import register_profile
from analyzer.report import LayerRow
from analyzer.symbolic import ZERO


def convolution(row: LayerRow) -> sympy.Expr:
    """aten.convolution -> `conv_flop_count`: prod(out spatial) · prod(kernel) · batch · c_out · (c_in/groups) · 2;
    the bias is ignored. SeparableConv: two convolutions."""
    return 2 * sympy.Add(*(c.macs for c in export.convs(row)))


def conv_transpose(row: LayerRow) -> sympy.Expr:
    """aten.convolution (transposed) -> `conv_flop_count` with transposed=True: prod(*input* spatial) · prod(kernel) ·
    batch · c_out · c_in · 2 (the scatter of every input position); the crop after it is a slice, no formula."""
    return 2 * export.conv_transpose(row).macs


def merge_free(row: LayerRow) -> sympy.Expr:
    """Bidirectional's merge: torch.cat or the + * / operators (aten add, mul, div, cat): no formula, 0."""
    return ZERO


def dense(row: LayerRow) -> sympy.Expr:
    """nn.Linear dispatches aten.addmm (or mm + add): `mm_flop` = m · n · 2 · k; the bias add is not counted."""
    return 2 * export.dense(row).macs


def recurrent(row: LayerRow) -> sympy.Expr:
    """nn.GRU on CPU decomposes to mm/addmm: the input projection (T x I)·(I x 3H) and one (1 x H)·(H x 3H) per step,
    `mm_flop` each: 2 · T · 3H · (I + H); a loop's nn.Linear calls (KerasGRU, KerasLSTM, KerasRNN) give the same,
    2 · T · G·H · (I + H) for G gate blocks."""
    steps, features, units = export.recurrent_dims(row)
    gates = {"GRU": 3, "LSTM": 4, "SimpleRNN": 1}[row.type]
    return 2 * steps * gates * units * (features + units)


def attention(row: LayerRow) -> sympy.Expr:
    """MultiHeadAttention: its nn.Linear projections (addmm / mm) and the heads' two torch.matmul (bmm), `mm_flop` /
    `bmm_flop` each: 2 per multiply-accumulate."""
    att = export.attention(row)
    return 2 * (sum((linear.macs for linear in att.linears), ZERO) + att.score_macs + att.value_macs)


def no_formula(row: LayerRow) -> sympy.Expr:
    """No entry in `flop_registry` for the aten ops of this layer (batch_norm, layer_norm, relu, softmax, cos, mul,
    add, max_pool, mean, pad, embedding, ...): 0."""
    return ZERO


RULES = table(
    {"Dense": dense, "MultiHeadAttention": attention},
    same={convolution: CONVOLUTIONS, conv_transpose: CONV_TRANSPOSES, recurrent: RECURRENT,
          no_formula: ("BatchNormalization", "LayerNormalization", "GroupNormalization", "Activation", "Softmax",
                       "Lambda", "Embedding", *MERGES, *POOLS, *GLOBAL_POOLS, *COST_FREE)},
)
RULES.update(wrapper_rules(RULES, merge_free))

PROFILE = register_profile(Profile(
    name="torch",
    tool="torch.utils.flop_counter.FlopCounterMode (torch 2.13.0, CPU)",
    unit="FLOPs = 2 per multiply-accumulate of conv / matmul; no bias, no other op",
    rules=RULES,
))
