"""MultiHeadAttention (Keras 3 semantics). `inputs: [query, value]` or
`[query, value, key]` (key defaults to value); self-attention is `[x, x]`.

Query (*Q, dq), value (*V, dv), key (*V, dk); Tq = prod(Q), Tv = prod(V);
h heads, kd = key_dim, vd = value_dim (default key_dim), output (*Q, *out)
with out = output_shape (default dq), do = prod(out); b = 1 with use_bias.

attention_axes (Keras' argument; default: every axis but the batch and the last)
splits the position axes in two: attention runs over the listed ones, and the
others are batch axes of the attention (query and value must match on them). With
B = prod of the other axes, Qa, Va = prod of the listed axes of query and value
(so Tq = B·Qa, Tv = B·Va; by default B = 1), the scores and the weighted sum below
count h·B·Qa·Va and h·B·Qa·vd outputs: Keras' einsums
`dot_product_equation` and `combine_equation` (multi_head_attention.py) keep the
other axes as batch axes, and its softmax runs over the Va key positions.
The projections do not change: they act on the last axis at every position.

  params: h·kd·dq + h·kd·dk + h·vd·dv + h·vd·do + b·(2h·kd + h·vd + do)
  Q, K, V projections (dot products, with bias):
      Tq·h·kd outputs of dq terms, Tv·h·kd of dk terms, Tv·h·vd of dv terms
  scaling the query by 1/sqrt(kd): Tq·h·kd multiplies (other)
  scores Q·K^T: h·B·Qa·Va outputs of kd terms;  softmax over Va: h·B·Qa·(3Va - 1) (activation)
  attention·V: h·B·Qa·vd outputs of Va terms
  output projection: Tq·do outputs of h·vd terms (with bias)
  use_gate: a sigmoid projection of the query, Tq·h·vd outputs of dq terms (with bias),
      4 FLOPs each (sigmoid), and Tq·h·vd multiplies of the attention output (other).
Dropout and masks cost nothing at inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sympy
from pydantic import StrictBool, StrictInt, field_validator

from analyzer.layers import backward as train
from analyzer.layers import saved
from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import PER_ELEMENT_FLOPS, softmax_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, one_or_tuple
from analyzer.layers.registry import counted_as, register, saves_as, trains_as
from analyzer.layers.sizes import OptionalSize, OptionalSizes
from analyzer.layers.torch_ops import Linear, has_bias
from analyzer.spec.fields import Rate, Size
from analyzer.symbolic import ONE, ZERO, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


class MultiHeadAttention(LayerSpec):
    type: Literal["MultiHeadAttention"]
    num_heads: Size
    key_dim: Size
    value_dim: OptionalSize = None  # None: key_dim
    output_shape: OptionalSizes = None  # None: the query's last axis
    use_bias: StrictBool = True
    use_gate: StrictBool = False
    dropout: Rate = 0.0
    attention_axes: list[StrictInt] | None = None  # Keras' axes (0 is the batch); None: every position axis
    seed: StrictInt | None = None
    arity: ClassVar[int | None] = None  # two or three: query, value[, key]

    @field_validator("attention_axes", mode="before")
    @classmethod
    def _one_axis_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value


def attention_positions(layer: MultiHeadAttention, rank: int, ctx: LayerContext) -> list[int]:
    """The position axes (0-based, batch excluded) attention runs over, for inputs of `rank` (features included).
    Keras counts the batch as axis 0 and reads a negative axis from the end of the input."""
    positions = rank - 1
    if layer.attention_axes is None:
        return list(range(positions))
    chosen: list[int] = []
    for axis in layer.attention_axes:
        resolved = keras_axis(axis, rank)
        if not 1 <= resolved <= positions:
            ctx.fail(f"attention_axes: axis {axis} is not a position axis of inputs of rank {rank} plus the batch "
                     f"(1 to {positions}, or {-positions - 1} to -2; the batch and the feature axis are not)", "attention_axes")
        if resolved - 1 in chosen:
            ctx.fail(f"attention_axes: axis {resolved} is listed twice", "attention_axes")
        chosen.append(resolved - 1)
    if not chosen:
        ctx.fail("attention_axes: list at least one axis (or leave it out: every position axis)", "attention_axes")
    return sorted(chosen)


def keras_axis(axis: int, rank: int) -> int:
    """A Keras axis of inputs of `rank` (features included) counted with the batch as 0."""
    return axis if axis >= 0 else axis + rank + 1


def attention_extent(attended: list[int], query: Shape, value: Shape) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """(B, Qa, Va) of the module docstring, for the attended position axes (0-based, batch excluded)."""
    others = [i for i in range(len(query) - 1) if i not in attended]
    return (product([query[i] for i in others]), product([query[i] for i in attended]),
            product([value[i] for i in attended]))


def projection(outputs: sympy.Expr, terms: sympy.Expr, bias: bool) -> dict[str, sympy.Expr]:
    """Counts of `outputs` dot products of `terms` terms each, with or without a bias."""
    return {"macs": outputs * terms, "dot": outputs * (2 * terms - 1), "bias": outputs if bias else ZERO}


def query_value_key(inputs: list[Shape], ctx: LayerContext) -> tuple[Shape, Shape, Shape]:
    """Keras' attention call order, [query, value] or [query, value, key]; the key defaults to the value."""
    if len(inputs) > 3:
        ctx.fail(f"takes two or three inputs (query, value[, key]), got {len(inputs)}", "inputs")
    query, value = inputs[0], inputs[1]
    return query, value, inputs[2] if len(inputs) == 3 else value


@register(MultiHeadAttention)
def multi_head_attention(layer: MultiHeadAttention, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    query, value, key = query_value_key(inputs, ctx)
    for name, shape in (("query", query), ("value", value), ("key", key)):
        if len(shape) < 2:
            ctx.fail(f"the {name} needs rank 2 or more (positions, features), got {shape_str(shape)}", "inputs")
    if not len(query) == len(value) == len(key):
        ctx.fail(f"query, value and key must have the same rank, got {shape_str(query)}, {shape_str(value)}, {shape_str(key)}",
                 "inputs")
    for axis, (v, k) in enumerate(zip(value[:-1], key[:-1], strict=True), start=1):
        ctx.require_equal(k, v, f"key and value must match on every axis but the last (axis {axis}: {render(k)} vs {render(v)})",
                          "inputs", violation=f"key and value differ on axis {axis} ({render(k)} vs {render(v)})")
    heads, kd = layer.num_heads, layer.key_dim
    vd = layer.value_dim if layer.value_dim is not None else kd
    dq, dv, dk = query[-1], value[-1], key[-1]
    out = tuple(layer.output_shape) if layer.output_shape else (dq,)
    do = product(out)
    attended = attention_positions(layer, len(query), ctx)
    others = [i for i in range(len(query) - 1) if i not in attended]
    for i in others:  # batch axes of Keras' attention einsums: sizes must agree
        ctx.require_equal(value[i], query[i], f"query and value must match on axis {i + 1}, which is not in attention_axes "
                          f"({render(query[i])} vs {render(value[i])})", "attention_axes",
                          violation=f"query and value differ on axis {i + 1} ({render(query[i])} vs {render(value[i])}), "
                                    "which is not in attention_axes")
    sizes = AttentionSizes(product(query[:-1]), product(value[:-1]), dq, dk, dv, heads, kd, vd, do,
                           *attention_extent(attended, query, value), ctx.use_bias(layer.use_bias), layer.use_gate)
    parts = forward_parts(sizes)
    params = heads * kd * (dq + dk) + heads * vd * (dv + do) + ((2 * heads * kd + heads * vd + do) if sizes.bias else 0)
    if layer.use_gate:
        params += heads * vd * dq + (heads * vd if sizes.bias else 0)
    return LayerResult(
        (*query[:-1], *out),
        trainable_params=params,
        macs=sum((p["macs"] for p in parts), ZERO),
        dot=sum((p["dot"] for p in parts), ZERO),
        bias=sum((p["bias"] for p in parts), ZERO),
        activation=gate_and_softmax(sizes),
        other=scaling_and_gate(sizes),
    )


@dataclass(frozen=True)
class AttentionSizes:
    """The module docstring's sizes, per sample: Tq, Tv; dq, dk, dv; h, kd, vd, do; B, Qa, Va (`batch`, `qa`, `va`);
    whether the projections have a bias and whether there is a gate."""

    tq: sympy.Expr
    tv: sympy.Expr
    dq: sympy.Expr
    dk: sympy.Expr
    dv: sympy.Expr
    heads: sympy.Expr
    kd: sympy.Expr
    vd: sympy.Expr
    do: sympy.Expr
    batch: sympy.Expr
    qa: sympy.Expr
    va: sympy.Expr
    bias: bool
    gate: bool

    @property
    def pairs(self) -> sympy.Expr:
        """Attention weights: h·B·Qa·Va (a score, a softmax output each)."""
        return self.heads * self.batch * self.qa * self.va


def forward_parts(s: AttentionSizes) -> list[dict[str, sympy.Expr]]:
    h = s.heads
    parts = [
        projection(s.tq * h * s.kd, s.dq, s.bias),  # query
        projection(s.tv * h * s.kd, s.dk, s.bias),  # key
        projection(s.tv * h * s.vd, s.dv, s.bias),  # value
        projection(s.pairs, s.kd, False),  # scores
        projection(h * s.batch * s.qa * s.vd, s.va, False),  # attention-weighted values
        projection(s.tq * s.do, h * s.vd, s.bias),  # output
    ]
    if s.gate:
        parts.append(projection(s.tq * h * s.vd, s.dq, s.bias))
    return parts


def gate_and_softmax(s: AttentionSizes) -> sympy.Expr:
    """The activation FLOPs: softmax over Va, and the gate's sigmoid."""
    gate = PER_ELEMENT_FLOPS["sigmoid"] * s.tq * s.heads * s.vd if s.gate else ZERO
    return softmax_flops(s.va, s.heads * s.batch * s.qa) + gate


def scaling_and_gate(s: AttentionSizes) -> sympy.Expr:
    """The other FLOPs: the query scaled by 1/sqrt(kd), and the attention output times the gate."""
    return s.tq * s.heads * s.kd + (s.tq * s.heads * s.vd if s.gate else ZERO)


def attended_axes(spec: MultiHeadAttention, rank: int) -> list[int]:
    """The position axes attention runs over (0-based, batch excluded), for inputs of `rank` (checked by the handler)."""
    if spec.attention_axes is None:
        return list(range(rank - 1))
    return sorted(keras_axis(axis, rank) - 1 for axis in spec.attention_axes)


def row_sizes(row: LayerRow) -> AttentionSizes:
    spec = row.spec
    query, value = row.input_shapes[0], row.input_shapes[1]
    key = row.input_shapes[2] if len(row.input_shapes) > 2 else value
    key_dim = spec.key_dim
    value_dim = spec.value_dim if spec.value_dim is not None else key_dim
    out = product(spec.output_shape) if spec.output_shape else query[-1]
    return AttentionSizes(product(query[:-1]), product(value[:-1]), query[-1], key[-1], value[-1], spec.num_heads,
                          key_dim, value_dim, out, *attention_extent(attended_axes(spec, len(query)), query, value),
                          has_bias(row), bool(spec.use_gate))

# -- what each counting tool counts on the torch export (torch_modules.attention.MultiHeadAttention) --

@dataclass(frozen=True)
class AttentionCall:
    """torch_modules' MultiHeadAttention: nn.Linear projections (query, key, value, gate with use_gate, output),
    q / sqrt(key_dim), two torch.matmul per head (q k^T over the key positions, then times v), torch.softmax,
    and with use_gate torch.sigmoid and a * . With attention_axes the two products are torch.einsum calls
    (Keras' equations), over the attended axes only."""

    linears: list[Linear]
    score_macs: sympy.Expr  # heads · B · Qa · Va · key_dim (B = 1, Qa = Pq, Va = Pk without attention_axes)
    value_macs: sympy.Expr  # heads · B · Qa · Va · value_dim
    gate: bool
    einsum: bool  # attention over some position axes only: torch.einsum instead of torch.matmul

    @property
    def projection_macs(self) -> sympy.Expr:
        return sum((linear.macs for linear in self.linears), ZERO)

    def fvcore_unsupported_ops(self) -> list[str]:
        """The scaling divide, softmax, the gate's sigmoid and *: no fvcore handle."""
        return ["aten::div", "aten::softmax", *(("aten::sigmoid", "aten::mul") if self.gate else ())]


def attention_call(row: LayerRow) -> AttentionCall:
    spec = row.spec
    query, value = row.input_shapes[0], row.input_shapes[1]
    key = row.input_shapes[2] if len(row.input_shapes) > 2 else value
    heads, key_dim = spec.num_heads, spec.key_dim
    value_dim = spec.value_dim if spec.value_dim is not None else key_dim
    out = product(spec.output_shape) if spec.output_shape else query[-1]
    pq, pk, pv = product(query[:-1]), product(key[:-1]), product(value[:-1])
    attended = attended_axes(spec, len(query))
    batch, qa, va = attention_extent(attended, query, value)
    bias = has_bias(row)
    linears = [Linear(ONE, pq, query[-1], heads * key_dim, bias), Linear(ONE, pk, key[-1], heads * key_dim, bias),
               Linear(ONE, pv, value[-1], heads * value_dim, bias)]
    if spec.use_gate:
        linears.append(Linear(ONE, pq, query[-1], heads * value_dim, bias))
    linears.append(Linear(ONE, pq, heads * value_dim, out, bias))
    pairs = heads * batch * qa * va
    # to_torch takes the matmul path when the axes listed are every position axis (torch_attention_axes)
    einsum = attended != list(range(len(query) - 1))
    return AttentionCall(linears, pairs * key_dim, pairs * value_dim, bool(spec.use_gate), einsum)


def torch_attention(row: LayerRow) -> sympy.Expr:
    """MultiHeadAttention: its nn.Linear projections (addmm / mm) and the heads' two torch.matmul (bmm), `mm_flop` /
    `bmm_flop` each: 2 per multiply-accumulate."""
    att = attention_call(row)
    return 2 * (att.projection_macs + att.score_macs + att.value_macs)


def thop_attention(row: LayerRow) -> sympy.Expr:
    """MultiHeadAttention: its nn.Linear projections (query, key, value, gate, output), `count_linear` each; the two
    torch.matmul of the heads, the softmax and the scaling are no modules: 0."""
    return sympy.Add(*(tools.thop_linear(linear) for linear in attention_call(row).linears))


def ptflops_attention(row: LayerRow) -> sympy.Expr:
    """MultiHeadAttention: its nn.Linear projections (`linear_flops_counter_hook`, bias included), plus the two
    torch.matmul of the heads, which ptflops patches (`_matmul_tensor_flops_hook`: prod(input.shape) ·
    other.shape[-1]); the divide, torch.softmax and the gate's torch.sigmoid and * are not patched, nor is
    torch.einsum (the products with attention_axes): only the projections then."""
    att = attention_call(row)
    products = ZERO if att.einsum else att.score_macs + att.value_macs
    return sum((tools.ptflops_linear(linear) for linear in att.linears), ZERO) + products


def fvcore_attention(row: LayerRow) -> tools.Outcome:
    """MultiHeadAttention: its projections (aten::linear, `linear_flop_jit`) and the heads' two aten::matmul
    (`matmul_flop_jit`: prod(first shape) · last dim of the second; with attention_axes two aten::einsum,
    `einsum_flop_jit`: numpy's optimal-path FLOP count / 2, the MACs of one contraction); the scaling
    (aten::div), aten::softmax and the gate's aten::sigmoid and aten::mul are unsupported."""
    att = attention_call(row)
    counted = att.projection_macs + att.score_macs + att.value_macs
    return tools.Skipped(tools.fvcore_unsupported(att.fvcore_unsupported_ops()), counted)


counted_as("MultiHeadAttention", torch=torch_attention, thop=thop_attention, ptflops=ptflops_attention,
           fvcore=fvcore_attention)


# -- export --

def torch_attention_axes(axes: Any, rank: int) -> tuple[int, ...] | None:
    """Keras' attention_axes, or None for every position axis (the module's matmul path, as without them)."""
    if axes is None or sorted(keras_axis(a, rank) for a in axes) == list(range(1, rank)):
        return None
    return tuple(axes)


@TORCH_BUILDERS.register("MultiHeadAttention")
def torch_builder(layer: MultiHeadAttention, plan: LayerPlan) -> Construct:
    query, value = plan.input_shapes[0], plan.input_shapes[1]
    key = plan.input_shapes[2] if len(plan.input_shapes) > 2 else value
    key_dim = plan.int(layer.key_dim)
    value_dim = plan.int(layer.value_dim) if layer.value_dim is not None else key_dim
    output_shape = plan.ints(layer.output_shape) if layer.output_shape else (query[-1],)
    return Construct.of("MultiHeadAttention", query_dim=query[-1], key_dim_in=key[-1], value_dim_in=value[-1],
                        num_heads=plan.int(layer.num_heads), key_dim=key_dim, value_dim=value_dim,
                        output_shape=output_shape, use_bias=plan.use_bias(layer.use_bias), use_gate=layer.use_gate,
                        attention_axes=torch_attention_axes(layer.attention_axes, len(query)))


@KERAS_BUILDERS.register("MultiHeadAttention")
def keras_builder(layer: MultiHeadAttention, plan: LayerPlan) -> Construct:
    output_shape = plan.ints(layer.output_shape) if layer.output_shape else None
    return Construct("MultiHeadAttention", dict(
        num_heads=plan.int(layer.num_heads),
        key_dim=plan.int(layer.key_dim),
        value_dim=plan.int(layer.value_dim) if layer.value_dim is not None else None,
        output_shape=one_or_tuple(output_shape) if output_shape else None,
        use_bias=plan.use_bias(layer.use_bias),
        use_gate=layer.use_gate,
        dropout=layer.dropout,
        attention_axes=tuple(layer.attention_axes) if layer.attention_axes is not None else None,
    ), call="args")


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

# Keras' attention dropout (on the softmax output, training only, when dropout > 0) as the Dropout layer counts it:
# the mask scaled by 1/(1 - rate), then times it, 2 per weight; back, g·mask, 1.
DROPOUT_FORWARD, DROPOUT_BACKWARD = 2, 1


def input_gradient_sums(row: LayerRow, s: AttentionSizes, batch: sympy.Symbol,
                        needed: list[bool] | None = None) -> sympy.Expr:
    """The adds that sum an input's gradients: a tensor read by m projections (query, key, value, gate; self-attention
    `[x, x]` is one tensor read by three, four with the gate) gets m gradients, m - 1 adds per element."""
    references = [row.inputs[0], row.inputs[1], row.inputs[2] if len(row.inputs) > 2 else row.inputs[1]]
    shapes = [row.input_shapes[0], row.input_shapes[1], row.input_shapes[-1]]
    reads = [2 if s.gate else 1, 1, 1]  # query (and the gate), value, key
    seen: dict[str, tuple[int, sympy.Expr]] = {}
    wanted = needed or [True] * len(row.inputs)
    for index, reference, shape, count in zip([0, 1, len(row.inputs) - 1], references, shapes, reads, strict=True):
        if not wanted[index]:
            continue
        previous, _ = seen.get(reference, (0, ZERO))
        seen[reference] = (previous + count, product(shape))
    return sum(((count - 1) * batch * elements for count, elements in seen.values()), ZERO)


def train_attention(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """Back from g = dL/dy (Rq = B·Tq query rows, Rv = B·Tv value rows, A = B·h·B_a·Qa·Va attention weights):
    the output projection as a Dense (dL/dW, db; its dL/dx, the heads' gradient, needed for either); with the gate,
    g·gate and g·o (2 per element) and the sigmoid's backward (3); the weighted sum o = a·v: da = do·vᵀ, A gradients
    of vd terms, dv = aᵀ·do, B·h·B_a·Va·vd of Qa terms; the dropout's g·mask (1 per weight); the softmax's per row of
    Va (4Va - 1); the scores s = q·kᵀ: dq, B·h·B_a·Qa·kd of Va terms, dk, B·h·B_a·Va·kd of Qa terms; the 1/sqrt(kd)
    scale, 1 per element of q; then the query, key, value (and gate) projections as Dense layers: dL/dW, db (grad
    weight) and dL/dx (grad input), an input read by several projections summing its gradients (1 add each). All
    of the heads' gradients are needed for either the weights or the inputs: grad other. The inputs' gradients are
    counted for the inputs that need one (a cross-attention reading a model input as its memory computes no key or
    value input gradient); the heads' gradients are counted whole whenever the layer has a backward."""
    s, spec = row_sizes(row), row.spec
    h, rq, rv = s.heads, batch * s.tq, batch * s.tv
    weights = batch * s.pairs
    projections = [(rq, s.dq, h * s.kd), (rv, s.dk, h * s.kd), (rv, s.dv, h * s.vd)]  # (rows, in, out): q, k, v
    if s.gate:
        projections.append((rq, s.dq, h * s.vd))
    dense_weights = [*projections, (rq, h * s.vd, s.do)]  # and the output projection
    grad_weight = sum((train.dot_product_gradients(n * u, r) + train.bias_gradient(u, r, s.bias)
                       for r, n, u in dense_weights), ZERO)
    reads = [0, 2 if len(row.inputs) > 2 else 1, 1, 0]  # the input each projection reads: query, key, value, gate
    grad_input = sum((train.dot_product_gradients(r * n, u) for (r, n, u), i in zip(projections, reads, strict=False)
                      if needs.input_needs(i)), ZERO)
    gate = 2 * rq * h * s.vd + train.activation_backward("sigmoid", (h * s.vd,), rq, row.name) if s.gate else ZERO
    heads = (train.dot_product_gradients(rq * h * s.vd, s.do)  # through the output projection
             + gate
             + train.dot_product_gradients(weights, s.vd)  # da
             + train.dot_product_gradients(batch * h * s.batch * s.va * s.vd, s.qa)  # dv
             + (DROPOUT_BACKWARD * weights if spec.dropout > 0 else ZERO)
             + train.activation_backward("softmax", (h * s.batch * s.qa, s.va), batch, row.name)
             + train.dot_product_gradients(batch * h * s.batch * s.qa * s.kd, s.va)  # dq (scaled)
             + train.dot_product_gradients(batch * h * s.batch * s.va * s.kd, s.qa)  # dk
             + rq * h * s.kd)  # the 1/sqrt(kd) scale
    forward = None
    if spec.dropout > 0:
        parts = forward_parts(s)
        inference = (sum((p["dot"] + p["bias"] for p in parts), ZERO) + gate_and_softmax(s) + scaling_and_gate(s))
        forward = batch * inference + DROPOUT_FORWARD * weights
    sums = input_gradient_sums(row, s, batch, needed=[needs.input_needs(i) for i in range(len(row.inputs))])
    return train.Backward(grad_input=grad_input + sums, grad_weight=grad_weight,
                          grad_other=heads, forward=forward)


def torch_train_attention(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """FlopCounterMode on the module's backward (measured: torch_modules.attention.MultiHeadAttention, forward and
    backward, inputs with and without requires_grad, the layer with and without requires_grad_(False)): each
    nn.Linear's addmm / mm backward, `mm_flop` 2·R·n·u for dL/dW and, where its input needs a gradient, for dL/dx
    (the output projection's always: the heads need it); each of the two products' bmm backward (matmul, or the
    einsums' bmm with attention_axes), `bmm_flop` twice the forward's, one per operand. The softmax, the scale, the
    sigmoid and *, the bias gradients and the sums of an input's gradients have no formula. Per layer as nnspec's
    rule: with only some of query / key / value needing a gradient torch computes fewer."""
    att = attention_call(row)
    *projections, output = att.linears
    # which input each projection reads: query, key (the value when no key is given), value, the gate the query
    reads = [0, 2 if len(row.input_shapes) > 2 else 1, 1, 0][:len(projections)]
    inputs = [needs.input_needs(i) for i in reads]
    # a projection's output needs a gradient where its weights train or its input needs one
    q, k, v = (needs.weights or needs.input_needs(i) for i in reads[:3])
    grad_input = 2 * batch * sum((linear.macs for linear, need in zip(projections, inputs, strict=True) if need), ZERO)
    products = att.score_macs * (int(q) + int(k)) + att.value_macs * (int(q or k) + int(v))
    return train.Backward(grad_input=grad_input, grad_weight=2 * batch * att.projection_macs,
                          grad_other=2 * batch * output.macs + 2 * batch * products)


trains_as("MultiHeadAttention", rule=train_attention, torch=torch_train_attention)


# -- saved for the backward (docs/conventions.md#training, Memory) --

def projection_input(ctx: saved.SaveContext, index: int, tag: str) -> saved.Saved:
    """What one nn.Linear projection keeps of input `index` (as saves_dense): the input folded into rows, a view
    when its rows merge, else a copy of its own (each projection copies for itself)."""
    x = ctx.inputs[index]
    return saved.Saved.input(index) if x.mergeable(range(x.rank - 1)) else saved.Saved.new(tag, x.elements)


def saves_attention(ctx: saved.SaveContext) -> saved.Saves:
    """The export's ops (torch_modules.attention), each keeping what its backward needs of the others' operands
    (measured with saved_tensors_hooks: inputs with and without requires_grad, the layer frozen; the einsums of
    attention_axes keep the same tensors as the matmuls). With the weights training, each projection's nn.Linear
    keeps its input (a view, or the copy it folds a non-contiguous input into). The scores' bmm keeps the heads of
    q (B·Tq·h·kd, the copy torch.matmul folds the scaled q into, or q itself) when k needs a gradient, and those of
    k (B·Tv·h·kd) when q does; softmax keeps its output (B·h·B_a·Qa·Va); the weighted sum's bmm keeps that output
    (a view of it) when v needs a gradient and the heads of v (B·Tv·h·vd) when the weights do; the heads merged
    back (B·Tq·h·vd, a copy or a view) are the output projection's input. With use_gate: the sigmoid keeps its
    output and the product keeps both factors (the merged heads when the gate needs a gradient), and the output
    projection's input is the product. Keras' attention dropout is not in the export (nothing to measure): refused."""
    spec = ctx.spec
    if spec.dropout > 0:
        raise saved.NotCounted("attention dropout > 0: the torch export has none; Keras would keep a mask per weight")
    s = row_sizes(ctx.row)
    b, h, t = ctx.batch, s.heads, ctx.trains
    key_index = 2 if len(ctx.inputs) > 2 else 1
    query_grad, value_grad = ctx.inputs[0].requires_grad or t, ctx.inputs[1].requires_grad or t
    key_grad = ctx.inputs[key_index].requires_grad or t
    scores_grad = query_grad or key_grad
    weighted_grad = scores_grad or value_grad
    kept: list[saved.Saved] = []
    if t:
        kept += [projection_input(ctx, 0, "query rows"), projection_input(ctx, key_index, "key rows"),
                 projection_input(ctx, 1, "value rows")]
    if key_grad:
        kept.append(saved.Saved.new("q heads", b * s.tq * h * s.kd))
    if query_grad:
        kept.append(saved.Saved.new("k heads", b * s.tv * h * s.kd))
    if scores_grad or value_grad:  # softmax's own, or the weighted sum's bmm's (a view of it)
        kept.append(saved.Saved.new("softmax", b * s.pairs))
    if scores_grad:
        kept.append(saved.Saved.new("v heads", b * s.tv * h * s.vd))
    merged = saved.Saved.new("heads merged", b * s.tq * h * s.vd)
    if s.gate:
        gate_grad = ctx.inputs[0].requires_grad or t
        sigmoid = saved.Saved.new("gate sigmoid", b * s.tq * h * s.vd)
        if t:
            kept.append(projection_input(ctx, 0, "gate rows"))
        if gate_grad:
            kept += [sigmoid, merged]
        if weighted_grad:
            kept.append(sigmoid)
        merged = saved.Saved.new("gated", b * s.tq * h * s.vd)
    if t:
        kept.append(merged)
    return saved.Saves(tuple(kept))


saves_as("MultiHeadAttention", rule=saves_attention)
