"""`--convention fvcore`: fvcore 0.1.5.post20221221 (`FlopCountAnalysis(model).total()`) on
nnspec's PyTorch export in eval mode.

fvcore traces the model with torch.jit and counts the aten ops it has a handle for
(`_DEFAULT_SUPPORTED_OPS` in fvcore/nn/flop_count.py), one per multiply-accumulate
("We count one fused multiply-add as one flop"), never the bias. Ops in
`_IGNORED_OPS` (relu, dropout, reshape, cat, pad, ...) count 0 on purpose. Any other
op is *unsupported*: fvcore counts it 0 and only warns. A layer with unsupported
arithmetic is reported as skipped, naming the ops, with what fvcore still counts.
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
    Outcome,
    Profile,
    Skipped,
    table,
    wrapper_rules,
)
from analyzer.conventions.registry import register_profile
from analyzer.report import LayerRow
from analyzer.symbolic import ZERO

STRING_PADDING = "padding='same' traces to aten::_convolution_mode, which fvcore has no handle for"


def _unsupported(ops: list[str] | tuple[str, ...]) -> str:
    names = list(dict.fromkeys(op for op in ops if op != "aten::relu"))  # aten::relu is ignored, not unsupported
    return f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} unsupported" if names else ""


def _outcome(counted: sympy.Expr, *reasons: str) -> Outcome:
    reasons = tuple(r for r in reasons if r)
    return Skipped("; ".join(reasons), counted) if reasons else counted


def _activation_reason(activations: list[export.Activation], what: str = "activation") -> str:
    ops = [op for a in activations for op in export.ACTIVATION_OPS[a.name]]
    text = _unsupported(ops)
    return f"{what}: {text}" if text else ""


def convolution(row: LayerRow) -> Outcome:
    """aten::_convolution -> `conv_flop_jit` -> `conv_flop_count`: batch · prod(w_shape) · prod(out spatial) =
    out_channels · (in_channels/groups) · prod(kernel) per position; "bias is ignored". A padding='same' conv at
    stride 1 (torch's string padding) traces to aten::_convolution_mode: skipped (for SeparableConv only the
    depthwise part; the 1x1 pointwise conv has padding 0)."""
    counted, reasons = ZERO, []
    for conv in export.convs(row):
        if conv.string_padding:
            part = "depthwise conv: " if row.type.startswith("Separable") else ""
            reasons.append(part + STRING_PADDING)
        else:
            counted += conv.macs
    return _outcome(counted, *reasons, _activation_reason(export.fused_activation(row)))


def conv_transpose(row: LayerRow) -> Outcome:
    """nn.ConvTransposeNd (padding 0) traces to aten::_convolution with transposed=True -> `conv_flop_jit` ->
    `conv_flop_count`: batch · prod(w_shape) · prod(*input* spatial) = in · out · prod(kernel) per input position; the
    bias is ignored, the crop is a slice (ignored). A fused activation other than relu is unsupported."""
    return _outcome(export.conv_transpose(row).macs, _activation_reason(export.fused_activation(row)))


def bidirectional_merge(row: LayerRow) -> Outcome:
    """Bidirectional's merge: concat is aten::cat (ignored); sum, mul, ave are aten::add, aten::mul, aten::add and
    aten::div: unsupported."""
    text = _unsupported(export.MERGE_MODE_OPS[row.spec.merge_mode])
    return _outcome(ZERO, f"merge: {text}" if text else "")


def dense(row: LayerRow) -> Outcome:
    """aten::linear -> `linear_flop_jit`: prod(input shape) · out_features (no bias); a fused activation other than
    relu is unsupported."""
    return _outcome(export.dense(row).macs, _activation_reason(export.fused_activation(row)))


def _recurrent(row: LayerRow, native_gru: bool) -> Outcome:
    rnn = export.native_rnn(row, native_gru)
    if rnn is not None:
        return Skipped("aten::gru (torch.nn.GRU) is unsupported")
    linears = sum((linear.macs for linear in export.loop_linears(row)), ZERO)
    ops = [*export.LOOP_OPS[row.type], *(op for a in export.loop_activations(row) for op in export.ACTIVATION_OPS[a.name])]
    return Skipped(f"gate arithmetic: {_unsupported(ops)}", linears)


def recurrent(row: LayerRow) -> Outcome:
    """torch.nn.GRU traces to aten::gru, which fvcore has no handle for (fvcore#98): the whole layer counts 0.
    A loop (KerasGRU, KerasLSTM, KerasRNN) counts its nn.Linear calls (`linear_flop_jit`,
    prod(input) · out_features each); its gate arithmetic (aten::add, mul, rsub, sigmoid, tanh) is unsupported."""
    return _recurrent(row, native_gru=True)


def recurrent_loop_gru(row: LayerRow) -> Outcome:
    """As `recurrent`, for to_torch's default: a reset_after=False GRU is KerasGRU, counted by its nn.Linear calls."""
    return _recurrent(row, native_gru=False)


def attention(row: LayerRow) -> Outcome:
    """MultiHeadAttention: its projections (aten::linear, `linear_flop_jit`) and the heads' two aten::matmul
    (`matmul_flop_jit`: prod(first shape) · last dim of the second; with attention_axes two aten::einsum,
    `einsum_flop_jit`: numpy's optimal-path FLOP count / 2, the MACs of one contraction); the scaling
    (aten::div), aten::softmax and the gate's aten::sigmoid and aten::mul are unsupported."""
    att = export.attention(row)
    counted = sum((linear.macs for linear in att.linears), ZERO) + att.score_macs + att.value_macs
    return Skipped(_unsupported(export.attention_ops(att)), counted)


def embedding(row: LayerRow) -> sympy.Expr:
    """aten::embedding is a lookup, no arithmetic (fvcore lists it as unsupported; nothing is missed): 0."""
    return ZERO


def batch_normalization(row: LayerRow) -> Outcome:
    """aten::batch_norm -> `batchnorm_flop_jit`, eval mode: input numel · (2 if affine else 1). A lone gamma or beta
    is a plain * or + (aten::mul / aten::add): unsupported."""
    counted = export.normalized_elements(row) * (2 if export.batch_norm_affine(row) else 1)
    op = export.batch_norm_extra_op(row)
    return _outcome(counted, _unsupported([op]) if op else "")


def layer_normalization(row: LayerRow) -> sympy.Expr:
    """aten::layer_norm -> `norm_flop_counter(2)`: input numel · (5 if a weight is given else 4)."""
    return export.normalized_elements(row) * (5 if row.spec.scale else 4)


def group_normalization(row: LayerRow) -> sympy.Expr:
    """aten::group_norm -> `norm_flop_counter(2)`: input numel · (5 if a weight is given else 4)."""
    return export.normalized_elements(row) * (5 if row.spec.scale else 4)


def activation(row: LayerRow) -> Outcome:
    """relu: aten::relu is in `_IGNORED_OPS` (0 on purpose); linear: no op; every other activation's op (aten::sigmoid,
    aten::tanh, aten::softmax, aten::relu6, aten::gelu, ...) is unsupported."""
    name = row.spec.activation
    return _outcome(ZERO, _unsupported(export.ACTIVATION_OPS[name]))


def softmax(row: LayerRow) -> Outcome:
    """Softmax: aten::softmax is unsupported."""
    return Skipped("aten::softmax is unsupported")


def elementwise(row: LayerRow) -> Outcome:
    """Lambda cos / sin / exp / ...: aten::cos, aten::sin, aten::exp, ... are unsupported."""
    return Skipped(_unsupported([export.LAMBDA_OPS[row.spec.function]]))


def merge(row: LayerRow) -> Outcome:
    """Add / Subtract / Multiply / Maximum / Minimum / Average: aten::add, sub, mul, maximum, minimum, div are
    unsupported."""
    return Skipped(_unsupported(export.MERGE_OPS[row.type]))


def pooling(row: LayerRow) -> Outcome:
    """aten::max_poolNd / aten::avg_poolNd are unsupported (only adaptive_avg_pool2d has a handle); average 'same'
    also divides (aten::div)."""
    pool = export.pool(row)
    rank = len(row.output_shape) - 1
    ops = [f"aten::{'max' if pool.kind == 'max' else 'avg'}_pool{rank}d"]
    if pool.kind == "average" and pool.same:
        ops.append("aten::div")
    return Skipped(_unsupported(ops))


def global_pooling(row: LayerRow) -> Outcome:
    """The export reduces with torch.amax / torch.mean: aten::amax / aten::mean are unsupported."""
    return Skipped(_unsupported(["aten::amax" if "Max" in row.type else "aten::mean"]))


def cost_free(row: LayerRow) -> sympy.Expr:
    """aten::dropout, reshape, view, flatten, permute, transpose, narrow, cat, constant_pad_nd, unsqueeze, expand are
    in `_IGNORED_OPS`; movedim and repeat_interleave move data only: 0."""
    return ZERO


RULES = table(
    {"Dense": dense, "MultiHeadAttention": attention, "Embedding": embedding,
     "BatchNormalization": batch_normalization, "LayerNormalization": layer_normalization,
     "GroupNormalization": group_normalization, "Activation": activation, "Softmax": softmax,
     "Lambda": elementwise},
    same={convolution: CONVOLUTIONS, conv_transpose: CONV_TRANSPOSES, recurrent: RECURRENT, merge: MERGES,
          pooling: POOLS, global_pooling: GLOBAL_POOLS, cost_free: COST_FREE},
)
RULES.update(wrapper_rules(RULES, bidirectional_merge))
LOOP_GRU_RULES = {"GRU": recurrent_loop_gru}
LOOP_GRU_RULES.update(wrapper_rules({**RULES, **LOOP_GRU_RULES}, bidirectional_merge))

PROFILE = register_profile(Profile(
    name="fvcore",
    tool="fvcore 0.1.5.post20221221 (FlopCountAnalysis.total(), model in eval mode)",
    unit="MACs of traced conv / linear (no bias), normalization 2, 4 or 5 per element; unsupported ops count 0",
    rules=RULES,
    loop_gru_rules=LOOP_GRU_RULES,
))
