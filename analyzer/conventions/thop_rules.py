"""`--convention thop`: thop 0.1.1.post2209072238 (`thop.profile`) on nnspec's PyTorch export.

thop hooks leaf modules by exact type (`register_hooks` in thop/profile.py; a hook
adds on every call), counts one per multiply-accumulate and never the bias. Plain
calls (torch.relu, F.relu6, torch.softmax, torch.cos, the * + - operators,
torch.mean, reshapes) are no modules: thop does not see them.
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
    """nn.ConvNd -> `count_convNd` -> `calculate_conv2d_flops`: prod(output) · (in_c // groups) · prod(kernel);
    the bias is ignored. SeparableConv is two convs (depthwise with in_c // groups = 1, then 1x1)."""
    return sympy.Add(*(c.outputs * c.in_per_group * c.kernel for c in export.convs(row)))


def conv_transpose(row: LayerRow) -> sympy.Expr:
    """nn.ConvTransposeNd -> `count_convNd` -> `calculate_conv2d_flops`: prod(y) · in_c · prod(kernel), y being the
    module's own output (the full length (n - 1)·s + d·(k - 1) + 1, plus torch's output_padding, before the export's
    crop); the bias is ignored."""
    conv = export.conv_transpose(row)
    return conv.full_positions * conv.filters * conv.in_channels * conv.kernel


def merge_free(row: LayerRow) -> sympy.Expr:
    """Bidirectional's merge: torch.cat or the + * / operators, no module: 0."""
    return ZERO


def _linear(linear: export.Linear) -> sympy.Expr:
    """`count_linear` -> `calculate_linear`: in_features · y.numel() per call (the bias line is commented out)."""
    return linear.calls * linear.in_features * linear.positions * linear.out_features


def dense(row: LayerRow) -> sympy.Expr:
    """nn.Linear -> `count_linear`: in_features · y.numel() (no bias)."""
    return _linear(export.dense(row))


def _native_rnn(rnn: export.Rnn) -> sympy.Expr:
    i, h = rnn.input_size, rnn.units
    cell = 3 * ((h + i) * h + h) + (6 * h if rnn.bias else 0) + h + 3 * h  # _count_gru_cell
    return rnn.steps * cell


def _recurrent(row: LayerRow, native_gru: bool) -> sympy.Expr:
    rnn = export.native_rnn(row, native_gru)
    if rnn is not None:
        return _native_rnn(rnn)
    return sympy.Add(*(_linear(linear) for linear in export.loop_linears(row)))


def recurrent(row: LayerRow) -> sympy.Expr:
    """nn.GRU -> `count_gru` -> `_count_gru_cell` per step: 3·((H + I)·H + H) + 6H with bias + H (r hadamard) + 3H
    (h' = (1 - z)·n + z·h), times the steps. A loop (KerasGRU/KerasLSTM/KerasRNN) counts its nn.Linear calls
    with `count_linear`, and nothing for the gate arithmetic."""
    return _recurrent(row, native_gru=True)


def recurrent_loop_gru(row: LayerRow) -> sympy.Expr:
    """As `recurrent`, for to_torch's default: a reset_after=False GRU is KerasGRU, `count_linear` per call."""
    return _recurrent(row, native_gru=False)


def attention(row: LayerRow) -> sympy.Expr:
    """MultiHeadAttention: its nn.Linear projections (query, key, value, gate, output), `count_linear` each; the two
    torch.matmul of the heads, the softmax and the scaling are no modules: 0."""
    return sympy.Add(*(_linear(linear) for linear in export.attention(row).linears))


def batch_normalization(row: LayerRow) -> sympy.Expr:
    """nn.BatchNormNd -> `count_normalization`: `calculate_norm` = 2 · x.numel(), doubled if m.affine (4 per
    element; the export is affine only with center and scale). A lone gamma or beta is a plain * or +."""
    return 2 * export.normalized_elements(row) * (2 if export.batch_norm_affine(row) else 1)


def layer_normalization(row: LayerRow) -> sympy.Expr:
    """nn.LayerNorm -> `count_normalization`: 2 · x.numel(), doubled if elementwise_affine (the export's `scale`)."""
    return 2 * export.normalized_elements(row) * (2 if row.spec.scale else 1)


def group_normalization(row: LayerRow) -> sympy.Expr:
    """nn.GroupNorm is not in `register_hooks`: no rule, 0."""
    return ZERO


def pooling(row: LayerRow) -> sympy.Expr:
    """nn.MaxPoolNd -> `zero_ops`; nn.AvgPoolNd -> `count_avgpool` -> `calculate_avgpool`: y.numel() per call. An
    average 'same' pool is called twice: on the padded input and on a one-channel map of ones."""
    pool = export.pool(row)
    if pool.kind == "max":
        return ZERO
    return pool.output_elements + (pool.output_spatial if pool.same else ZERO)


def not_a_module(row: LayerRow) -> sympy.Expr:
    """Exported as plain calls (torch.relu, F.relu6, torch.sigmoid, torch.softmax, torch.cos, the * + - operators,
    torch.maximum, torch.mean, torch.amax), or nn.Embedding (no rule): 0."""
    return ZERO


def cost_free(row: LayerRow) -> sympy.Expr:
    """nn.Dropout -> `zero_ops`; nn.Flatten and nn.Identity have no rule; reshapes, padding, cropping, permutes,
    concatenation and the inputs are no modules: 0."""
    return ZERO


RULES = table(
    {"Dense": dense, "MultiHeadAttention": attention,
     "BatchNormalization": batch_normalization, "LayerNormalization": layer_normalization,
     "GroupNormalization": group_normalization},
    same={convolution: CONVOLUTIONS, conv_transpose: CONV_TRANSPOSES, recurrent: RECURRENT, pooling: POOLS,
          not_a_module: ("Activation", "Softmax", "Lambda", "Embedding", *MERGES, *GLOBAL_POOLS), cost_free: COST_FREE},
)
RULES.update(wrapper_rules(RULES, merge_free))
LOOP_GRU_RULES = {"GRU": recurrent_loop_gru}
LOOP_GRU_RULES.update(wrapper_rules({**RULES, **LOOP_GRU_RULES}, merge_free))

PROFILE = register_profile(Profile(
    name="thop",
    tool="thop 0.1.1.post2209072238 (thop.profile)",
    unit="MACs of conv / linear / RNN (no bias), BatchNorm and LayerNorm 2 or 4 per element, RNN gate arithmetic",
    rules=RULES,
    loop_gru_rules=LOOP_GRU_RULES,
))
