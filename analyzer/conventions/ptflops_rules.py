"""`--convention ptflops`: ptflops 0.7.5, `get_model_complexity_info(backend='pytorch')`, on
nnspec's PyTorch export.

Module hooks by exact type (`MODULES_MAPPING` in ptflops/pytorch_ops.py) count one per
multiply-accumulate plus one per biased output. ptflops also patches some functions
while it runs (`FUNCTIONAL_MAPPING`: F.relu, F.relu6, F.elu, F.gelu, F.silu, F.softmax,
the pooling functions; `TENSOR_OPS_MAPPING`: torch.mul, torch.add, torch.matmul, ...),
each call counting its input's numel. The export calls F.relu6 / F.elu / F.gelu /
F.silu for those activations (counted), but torch.relu, torch.sigmoid, torch.tanh,
torch.softmax, torch.cos, torch.maximum and the * + - operators, which ptflops does
not patch. nn.MaxPool/AvgPool call the patched F.*_pool: counted twice.
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

# Activations whose export calls a function ptflops patches (`patch_functional`).
PATCHED = frozenset({"relu6", "elu", "gelu", "silu", "swish", "hard_sigmoid"})


def _activations(activations: list[export.Activation]) -> sympy.Expr:
    """`_numel_functional_flops_hook`: input.numel() per call of a patched function (F.relu6 for relu6 and
    hard_sigmoid, F.elu, F.gelu, F.silu for silu and swish); other activations are not patched: 0."""
    return sympy.Add(*(a.calls * a.elements for a in activations if a.name in PATCHED))


def convolution(row: LayerRow) -> sympy.Expr:
    """nn.ConvNd -> `conv_flops_counter_hook`: prod(kernel) · in_channels · (out_channels // groups) per output
    position, + output.numel() with a bias; then the fused activation if patched. SeparableConv: two convs."""
    convs = sum((c.macs + (c.outputs if c.bias else ZERO) for c in export.convs(row)), ZERO)
    return convs + _activations(export.fused_activation(row))


def conv_transpose(row: LayerRow) -> sympy.Expr:
    """nn.ConvTransposeNd -> `conv_flops_counter_hook(transpose=True)`: prod(kernel) · in_channels · out_channels per
    *input* position, + output.numel() with a bias, output being the module's own (the full length plus torch's
    output_padding, before the export's crop); then the fused activation if patched."""
    conv = export.conv_transpose(row)
    bias = conv.full_positions * conv.filters if conv.bias else ZERO
    return conv.macs + bias + _activations(export.fused_activation(row))


def merge_free(row: LayerRow) -> sympy.Expr:
    """Bidirectional's merge: torch.cat or the + * / operators, which ptflops does not patch (it patches torch.add /
    torch.mul, not the operators): 0."""
    return ZERO


def _linear(linear: export.Linear) -> sympy.Expr:
    """`linear_flops_counter_hook`: (in · out + out if bias) · prod(input.shape[:-1]) per call."""
    return linear.calls * (linear.in_features * linear.out_features + (linear.out_features if linear.bias else ZERO)) \
        * linear.positions


def dense(row: LayerRow) -> sympy.Expr:
    """nn.Linear -> `linear_flops_counter_hook`: (in · out + out if bias) · positions; then the fused activation."""
    return _linear(export.dense(row)) + _activations(export.fused_activation(row))


def _native_rnn(rnn: export.Rnn) -> sympy.Expr:
    i, h = rnn.input_size, rnn.units
    step = 3 * h * i + 3 * h * h + h + 3 * h + 3 * h  # rnn_flops: W_ih, W_hh, r hadamard, both states, last ops
    return rnn.steps * (step + (6 * h if rnn.bias else ZERO))


def _recurrent(row: LayerRow, native_gru: bool) -> sympy.Expr:
    rnn = export.native_rnn(row, native_gru)
    if rnn is not None:
        return _native_rnn(rnn)
    linears = sum((_linear(linear) for linear in export.loop_linears(row)), ZERO)
    return linears + _activations(export.loop_activations(row))


def recurrent(row: LayerRow) -> sympy.Expr:
    """nn.GRU -> `rnn_flops_counter_hook` + `rnn_flops` per step: numel(W_ih) + numel(W_hh) + H (r hadamard) + 3H
    (adding both states) + 3H (last hadamards and add) + len(b_ih) + len(b_hh) with bias; times batch · seq_length.
    A loop (KerasGRU, KerasLSTM, KerasRNN) counts its nn.Linear calls (`linear_flops_counter_hook`) and its patched
    activations."""
    return _recurrent(row, native_gru=True)


def recurrent_loop_gru(row: LayerRow) -> sympy.Expr:
    """As `recurrent`, for to_torch's default: a reset_after=False GRU is KerasGRU (nn.Linear calls)."""
    return _recurrent(row, native_gru=False)


def attention(row: LayerRow) -> sympy.Expr:
    """MultiHeadAttention: its nn.Linear projections (`linear_flops_counter_hook`, bias included), plus the two
    torch.matmul of the heads, which ptflops patches (`_matmul_tensor_flops_hook`: prod(input.shape) ·
    other.shape[-1]); the divide, torch.softmax and the gate's torch.sigmoid and * are not patched, nor is
    torch.einsum (the products with attention_axes): only the projections then."""
    att = export.attention(row)
    products = ZERO if att.einsum else att.score_macs + att.value_macs
    return sum((_linear(linear) for linear in att.linears), ZERO) + products


def batch_normalization(row: LayerRow) -> sympy.Expr:
    """nn.BatchNormNd -> `bn_flops_counter_hook`: input.numel(), doubled if module.affine (the export: center and
    scale). A lone gamma or beta is a plain * or +, not counted."""
    return export.normalized_elements(row) * (2 if export.batch_norm_affine(row) else 1)


def layer_normalization(row: LayerRow) -> sympy.Expr:
    """nn.LayerNorm -> `bn_flops_counter_hook`: input.numel(); nn.LayerNorm has no `affine` attribute, so never doubled."""
    return export.normalized_elements(row)


def group_normalization(row: LayerRow) -> sympy.Expr:
    """nn.GroupNorm -> `bn_flops_counter_hook`: input.numel(), doubled if affine."""
    return export.normalized_elements(row) * (2 if row.spec.scale else 1)


def pooling(row: LayerRow) -> sympy.Expr:
    """nn.MaxPoolNd / nn.AvgPoolNd -> `pool_flops_counter_hook`: input.numel(); their forward calls the patched
    F.max_poolNd / F.avg_poolNd, which adds input.numel() again. 'same' pools the padded input; average 'same'
    also pools a one-channel map of ones."""
    pool = export.pool(row)
    count = 2 * pool.input_elements
    if pool.kind == "average" and pool.same:
        count += 2 * pool.padded_spatial
    return count


def activation(row: LayerRow) -> sympy.Expr:
    """Activation: the export's call, counted only if it is a patched function (F.relu6, F.elu, F.gelu, F.silu)."""
    name = row.spec.activation
    return _activations([export.Activation(name, export.normalized_elements(row))]) if name != "linear" else ZERO


def not_patched(row: LayerRow) -> sympy.Expr:
    """torch.softmax (Softmax), torch.cos / torch.sin / ... (Lambda), the * + - operators and torch.maximum /
    torch.minimum (merges), torch.mean / torch.amax (global pooling): no module, not patched; nn.Embedding is not
    in `MODULES_MAPPING`: 0."""
    return ZERO


def cost_free(row: LayerRow) -> sympy.Expr:
    """nn.Dropout, nn.Flatten, nn.Identity are not in `MODULES_MAPPING` (zero-ops); F.pad, narrow, permute,
    repeat_interleave, reshapes and the inputs are not patched: 0."""
    return ZERO


RULES = table(
    {"Dense": dense, "MultiHeadAttention": attention,
     "BatchNormalization": batch_normalization, "LayerNormalization": layer_normalization,
     "GroupNormalization": group_normalization, "Activation": activation},
    same={convolution: CONVOLUTIONS, conv_transpose: CONV_TRANSPOSES, recurrent: RECURRENT, pooling: POOLS,
          not_patched: ("Softmax", "Lambda", "Embedding", *MERGES, *GLOBAL_POOLS), cost_free: COST_FREE},
)
RULES.update(wrapper_rules(RULES, merge_free))
LOOP_GRU_RULES = {"GRU": recurrent_loop_gru}
LOOP_GRU_RULES.update(wrapper_rules({**RULES, **LOOP_GRU_RULES}, merge_free))

PROFILE = register_profile(Profile(
    name="ptflops",
    tool="ptflops 0.7.5 (get_model_complexity_info, backend='pytorch')",
    unit="MACs of conv / linear / RNN + 1 per biased output, normalization 1 or 2 per element, "
         "pooling, some activations and RNN gate arithmetic",
    rules=RULES,
    loop_gru_rules=LOOP_GRU_RULES,
))
