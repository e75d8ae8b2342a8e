"""Training rules of the decoder vocabulary (analyzer/layers/transformer.py; issue 16): the backward of
GroupedQueryAttention, GatedMLP, ReversibleEmbedding and PositionEmbedding in the nnspec convention (every op the
math needs, the masks' scores only) and as FlopCounterMode counts it on the torch export (torch_modules/
transformer.py: mm and bmm only, every Tq·Tv score), and what autograd saves for each
(docs/conventions.md#training, the decoder family).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers.attention import projection_input
from analyzer.layers.registry import saves_as, trains_as
from analyzer.layers.transformer import (
    ROTARY_FLOPS_PER_ELEMENT,
    full_products,
    gated_mlp_linears,
    reverse_linear,
    row_gqa_sizes,
)
from analyzer.symbolic import ZERO, product

if TYPE_CHECKING:
    from analyzer.report import LayerRow

# -- GroupedQueryAttention --


def gqa_reads(row: LayerRow) -> list[int]:
    """The input each projection reads: query, key (the value when no key is given), value."""
    return [0, 2 if len(row.inputs) > 2 else 1, 1]


def refuse_dropout(row: LayerRow) -> None:
    if row.spec.dropout > 0:
        raise train.NoBackwardRule("GroupedQueryAttention with dropout > 0: the attention dropout's mask is not in "
                                   "the torch export and has no training rule yet", layer=row.name)


def train_gqa(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Back from g = dL/dy, Rq = B·Tq, Rv = B·Tv rows, S scores per head (the mask's, as the forward), G = Hq/Hkv:
    the four projections as Dense layers (dL/dW, db; dL/dx of q, k, v where that input needs one, an input read by
    m projections summing its m gradients, m - 1 adds per element); grad other, the heads: the output projection's
    dL/dx Rq·Hq·hd·(2do - 1); o = a·v: da B·Hq·S·(2hd - 1), dv per query head B·Hq·hd·(2S - Tv) (key j's n_j
    queries), the group's G heads summed into each shared v head B·(Hq - Hkv)·Tv·hd; softmax B·Hq·(4S - Tq);
    s = q·kᵀ: dq B·Hq·hd·(2S - Tq), dk B·Hq·hd·(2S - Tv) and the group sum B·(Hq - Hkv)·Tv·hd; the 1/sqrt(hd)
    scale Rq·Hq·hd; the rotation, a linear map, back as forward: 3r·(Rq·Hq + Rv·Hkv); q/k norm, RMS normalization
    over hd: 6 per element of dq and dk, and its weights' 2N - hd each (grad weight)."""
    refuse_dropout(row)
    s = row_gqa_sizes(row)
    b, hq, hkv, hd = batch, s.heads, s.kv_heads, s.hd
    rq, rv = b * s.tq, b * s.tv
    grad_weight = sum((train.dot_product_gradients(x.in_features * x.out_features, b * x.positions)
                       + train.bias_gradient(x.out_features, b * x.positions, x.bias) for x in s.linears()), ZERO)
    reads = gqa_reads(row)
    grad_input = ZERO
    readers: dict[str, tuple[int, sympy.Expr]] = {}
    for linear, index in zip(s.linears()[:3], reads, strict=True):
        if not needs.input_needs(index):
            continue
        grad_input += train.dot_product_gradients(b * linear.positions * linear.in_features, linear.out_features)
        ref = row.inputs[index]
        count, _ = readers.get(ref, (0, ZERO))
        readers[ref] = (count + 1, b * product(row.input_shapes[index]))
    grad_input += sum(((count - 1) * elements for count, elements in readers.values()), ZERO)
    shared = b * (hq - hkv) * s.tv * hd  # G query heads' gradients summed into each key (value) head
    heads = (train.dot_product_gradients(rq * hq * hd, s.do)  # through the output projection
             + b * hq * s.scores * (2 * hd - 1)  # da
             + b * hq * hd * (2 * s.scores - s.tv) + shared  # dv
             + b * hq * (4 * s.scores - s.tq)  # softmax over each query's m_i keys
             + b * hq * hd * (2 * s.scores - s.tq)  # dq
             + b * hq * hd * (2 * s.scores - s.tv) + shared  # dk
             + rq * hq * hd  # the 1/sqrt(hd) scale
             + ROTARY_FLOPS_PER_ELEMENT * s.rotary * (rq * hq + rv * hkv))  # the rotation's transpose
    if s.qk_norm:
        nq, nk = rq * hq * hd, rv * hkv * hd
        heads += 6 * (nq + nk)  # RMS normalization's dx, 5N, and dh = g·w, N
        grad_weight += (2 * nq - hd) + (2 * nk - hd)
    return train.Backward(grad_input=grad_input, grad_weight=grad_weight, grad_other=heads)


def torch_train_gqa(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """FlopCounterMode on the export's backward: each nn.Linear's mm, 2·R·n·u for dL/dW and, where its input needs
    a gradient, for dL/dx (the output projection's always: the heads need it); the two torch.matmul's bmm, 2·B·
    their MACs per operand that needs a gradient, over every Tq·Tv score (eager masks after); q and k need one
    whenever the layer has a backward that reaches them. Softmax, norms, rotation, expand's sum: no formula."""
    refuse_dropout(row)
    s = row_gqa_sizes(row)
    *projections, output = s.linears()
    reads = gqa_reads(row)
    q, k, v = (needs.weights or needs.input_needs(i) for i in reads)
    grad_input = 2 * batch * sum((x.macs for x, i in zip(projections, reads, strict=True) if needs.input_needs(i)),
                                 ZERO)
    half = full_products(s) / 2  # one of the two products: Hq·Tq·Tv·hd MACs
    products = half * (int(q) + int(k)) + half * (int(q or k) + int(v))
    return train.Backward(grad_input=grad_input, grad_weight=2 * batch * sum((x.macs for x in s.linears()), ZERO),
                          grad_other=2 * batch * output.macs + 2 * batch * products)


trains_as("GroupedQueryAttention", rule=train_gqa, torch=torch_train_gqa)

# -- GatedMLP: y = down(act(gate(x)) · up(x)) --


def train_gated_mlp(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """P = B·positions rows, d in, I inner, do out: the three projections as Dense layers (dL/dW, db); grad input the
    gate's and up's dL/dx, 2·P·d·(2I - 1), and x's two gradients summed, P·d adds; grad other: down's dL/dx
    P·I·(2do - 1), dp·up and dp·act, 2·P·I, and the activation's backward on P·I."""
    gate, up, down = gated_mlp_linears(row)
    rows = batch * gate.positions
    grad_weight = sum((train.dot_product_gradients(x.in_features * x.out_features, rows)
                       + train.bias_gradient(x.out_features, rows, x.bias) for x in (gate, up, down)), ZERO)
    grad_input = 2 * train.dot_product_gradients(rows * gate.in_features, gate.out_features) + rows * gate.in_features
    hidden = rows * gate.out_features
    other = (train.dot_product_gradients(hidden, down.out_features) + 2 * hidden
             + train.activation_backward(row.spec.activation, (gate.out_features,), rows, row.name))
    return train.Backward(grad_input=grad_input, grad_weight=grad_weight, grad_other=other)


def torch_train_gated_mlp(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """The three nn.Linear's mm: dL/dW 2·R·n·u each; dL/dx of gate and up where x needs one; down's always (gate
    and up need it). The activation and * have no formula."""
    gate, up, down = gated_mlp_linears(row)
    return train.Backward(grad_input=2 * batch * (gate.macs + up.macs),
                          grad_weight=2 * batch * (gate.macs + up.macs + down.macs), grad_other=2 * batch * down.macs)


trains_as("GatedMLP", rule=train_gated_mlp, torch=torch_train_gated_mlp)

# -- ReversibleEmbedding: a lookup, or in reverse the logits x·Wᵀ --

NO_IDS_GRADIENT = "no gradient for the integer ids"


def train_reversible(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """The lookup: Embedding's rule, a scatter of B·S·d adds into the zeroed table, no gradient for the ids. In
    reverse (R = B·positions rows, V logits of d terms): dL/dx R·d·(2V - 1); dL/dW V·d·(2R - 1). Tied, the table
    is the embedding's parameter (0 params on this row): its gradient here is still computed, and summed into the
    lookup's, V·d adds, both under grad other (the optimizer counts the table once, on the embedding); none when
    that embedding is frozen. With a bias (this row's parameter, tied or not): dL/db, V sums of R, grad weight."""
    spec = row.spec
    if not spec.reverse:
        return train.Backward(grad_weight=batch * product(row.output_shape), no_gradient=NO_IDS_GRADIENT)
    linear = reverse_linear(row)
    rows, vocab, width = batch * linear.positions, spec.input_dim, spec.output_dim
    grad_input = train.dot_product_gradients(rows * width, vocab)
    table = train.dot_product_gradients(vocab * width, rows)
    bias = train.bias_gradient(vocab, rows, linear.bias)
    if spec.tie_weights:
        return train.Backward(grad_input=grad_input, grad_weight=bias,
                              grad_other=table + vocab * width if needs.tied_weights else ZERO)
    return train.Backward(grad_input=grad_input, grad_weight=table + bias)


def torch_train_reversible(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """The lookup: embedding_dense_backward, no formula, 0. Reverse: the mm's dL/dx 2·R·d·V; untied (nn.Linear)
    dL/dW the same; tied (TiedLMHead, F.linear on a buffer) no dL/dW at all. A bias's gradient is a sum, no
    formula."""
    spec = row.spec
    if not spec.reverse:
        return train.Backward(no_gradient=NO_IDS_GRADIENT)
    macs = batch * reverse_linear(row).macs
    return train.Backward(grad_input=2 * macs, grad_weight=ZERO if spec.tie_weights else 2 * macs)


trains_as("ReversibleEmbedding", rule=train_reversible, torch=torch_train_reversible)

# -- PositionEmbedding: the first T rows of a learned table, the same for every sample --


def train_position(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """The output depends on the input's length only: no gradient to it. dL/dW: each of the T·d used entries sums
    its gradient over the B samples, T·d·(B - 1) adds (the unused rows stay zero)."""
    return train.Backward(grad_weight=product(row.output_shape) * (batch - 1),
                          no_gradient="no gradient to the input: the positions depend on its length only")


def torch_train_position(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """nn.Embedding of the positions: embedding_dense_backward, no formula, 0."""
    return train.Backward(no_gradient="no gradient to the input: the positions depend on its length only")


trains_as("PositionEmbedding", rule=train_position, torch=torch_train_position)

# -- saved for the backward (docs/conventions.md#training, Memory) --

KEEPS_OUTPUT = {"relu", "sigmoid", "tanh", "exponential"}  # the rest of the gate activations keep their input


def saves_gated_mlp(ctx: saved.SaveContext) -> saved.Saves:
    """With the weights training, gate and up keep x (a view, or each its own folded copy) and down its input, the
    product (B·P·I); the activation keeps its input, the gate's output (relu, sigmoid, tanh, exponential: its
    output); the product keeps both factors, act(gate) and up's output (B·P·I each)."""
    activation = ctx.spec.activation
    if activation in ("hard_sigmoid", "softsign"):
        raise saved.NotCounted(f"GatedMLP with activation {activation}: not measured")
    hidden = ctx.batch * product(ctx.row.input_shapes[0][:-1]) * ctx.spec.intermediate_dim
    gate_out = saved.Saved.new("gate output", hidden)
    activated = gate_out if activation == "linear" else saved.Saved.new("activated", hidden)
    kept: list[saved.Saved] = []
    if ctx.trains:
        kept += [projection_input(ctx, 0, "gate rows"), projection_input(ctx, 0, "up rows")]
    if activation != "linear":
        kept.append(activated if activation in KEEPS_OUTPUT else gate_out)
    kept += [saved.Saved.new("up output", hidden), activated]
    if ctx.trains:
        kept.append(saved.Saved.new("product", hidden))
    return saved.Saves(tuple(kept))


def expanded_heads(ctx: saved.SaveContext, elements: sympy.Expr, expanded: sympy.Expr, kv_heads: sympy.Expr,
                   tag: str) -> saved.Saved:
    """The key (value) heads repeated for their query groups, as torch.matmul folds them for its bmm: a copy of
    `expanded` elements, but a view of the `elements` of the projection's output when there is one key/value head
    and B = 1 (the stride-0 group axis then merges): Max(2 - Hkv, 0) is 1 at Hkv = 1, 0 above; 1 - Min(B - 1, 1)
    is 1 at B = 1 only."""
    view = sympy.Max(2 - kv_heads, 0) * (1 - sympy.Min(ctx.batch - 1, 1))
    return saved.Saved.new(tag, expanded - (expanded - elements) * view)


def saves_gqa(ctx: saved.SaveContext) -> saved.Saves:
    """Measured with saved_tensors_hooks on torch_modules.transformer.GroupedQueryAttention (GQA, MQA, q/k norm plain
    and (1 + w), partial rotary, windows; B = 1, 2): with the weights training each projection's input (a view or
    its folded copy) and the merged heads B·Tq·Hq·hd (the output projection's); q/k norm, per side that needs a
    gradient, the projection's output, 1/rms per row and with (1 + w) that sum (hd), and the normalized heads when
    the weights train; the scores' bmm the q heads B·Tq·Hq·hd when k needs a gradient and the expanded k heads
    B·Tv·Hq·hd when q does (expanded_heads: a view at Hkv = 1, B = 1); the softmax output B·Hq·Tq·Tv (every score,
    masked after); the expanded v heads when q or k needs a gradient. The rotation keeps only its cos / sin
    buffers, the scale nothing."""
    if ctx.spec.dropout > 0:
        raise saved.NotCounted("attention dropout > 0: the torch export has none")
    s = row_gqa_sizes(ctx.row)
    b, t = ctx.batch, ctx.trains
    key_index = gqa_reads(ctx.row)[1]
    q_grad, v_grad = ctx.inputs[0].requires_grad or t, ctx.inputs[1].requires_grad or t
    k_grad = ctx.inputs[key_index].requires_grad or t
    nq, nk, nkx = b * s.tq * s.heads * s.hd, b * s.tv * s.kv_heads * s.hd, b * s.tv * s.heads * s.hd
    kept: list[saved.Saved] = []
    if t:
        kept += [projection_input(ctx, 0, "query rows"), projection_input(ctx, key_index, "key rows"),
                 projection_input(ctx, 1, "value rows")]
    if s.qk_norm:
        for side, needed, elements, rows in (("q", q_grad, nq, b * s.tq * s.heads), ("k", k_grad, nk,
                                                                                     b * s.tv * s.kv_heads)):
            if needed:
                kept += [saved.Saved.new(f"{side} projected", elements), saved.Saved.new(f"{side} 1/rms", rows, "float32")]
                if ctx.spec.qk_norm_scale_plus_one:
                    kept.append(saved.Saved.new(f"{side} 1 + w", s.hd))
            if t:
                kept.append(saved.Saved.new(f"{side} normalized", elements))
    if k_grad:
        kept.append(saved.Saved.new("q heads", nq))
    if q_grad:
        kept.append(expanded_heads(ctx, nk, nkx, s.kv_heads, "k heads"))
    if q_grad or k_grad or v_grad:
        kept.append(saved.Saved.new("softmax", b * s.heads * s.tq * s.tv))
    if q_grad or k_grad:
        kept.append(expanded_heads(ctx, nk, nkx, s.kv_heads, "v heads"))
    if t:
        kept.append(saved.Saved.new("heads merged", nq))
    return saved.Saves(tuple(kept))


def saves_reversible(ctx: saved.SaveContext) -> saved.Saves:
    """The lookup: Embedding's, the ids as int64 (x.long()) when the table trains. Untied reverse (nn.Linear): x
    when the weights train. Tied (F.linear on a buffer): the buffer only, never counted."""
    spec = ctx.spec
    if not spec.reverse:
        return saved.Saves((saved.Saved.new("ids (int64)", ctx.inputs[0].elements, "int64"),) if ctx.trains else ())
    if spec.tie_weights or not ctx.trains:
        return saved.Saves()
    return saved.Saves((projection_input(ctx, 0, "rows"),))


def saves_position(ctx: saved.SaveContext) -> saved.Saves:
    """nn.Embedding of torch.arange(T).expand(B, T): the T int64 positions (the expand is a view) when the table
    trains."""
    return saved.Saves((saved.Saved.new("positions (int64)", ctx.row.output_shape[0], "int64"),) if ctx.trains
                       else ())


saves_as("GroupedQueryAttention", rule=saves_gqa)
saves_as("GatedMLP", rule=saves_gated_mlp)
saves_as("ReversibleEmbedding", rule=saves_reversible)
saves_as("PositionEmbedding", rule=saves_position)
