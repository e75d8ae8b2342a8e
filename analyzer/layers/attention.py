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

from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import PER_ELEMENT_FLOPS, softmax_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, one_or_tuple
from analyzer.layers.registry import counted_as, register
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


@register(MultiHeadAttention)
def multi_head_attention(layer: MultiHeadAttention, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    if len(inputs) > 3:
        ctx.fail(f"takes two or three inputs (query, value[, key]), got {len(inputs)}", "inputs")
    query, value = inputs[0], inputs[1]
    key = inputs[2] if len(inputs) == 3 else value
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
    tq, tv = product(query[:-1]), product(value[:-1])
    batch, qa, va = attention_extent(attended, query, value)
    bias = ctx.use_bias(layer.use_bias)
    parts = [
        projection(tq * heads * kd, dq, bias),  # query
        projection(tv * heads * kd, dk, bias),  # key
        projection(tv * heads * vd, dv, bias),  # value
        projection(heads * batch * qa * va, kd, False),  # scores
        projection(heads * batch * qa * vd, va, False),  # attention-weighted values
        projection(tq * do, heads * vd, bias),  # output
    ]
    params = heads * kd * (dq + dk) + heads * vd * (dv + do) + ((2 * heads * kd + heads * vd + do) if bias else 0)
    other = tq * heads * kd  # query scaling
    activation = softmax_flops(va, heads * batch * qa)
    if layer.use_gate:
        parts.append(projection(tq * heads * vd, dq, bias))
        params += heads * vd * dq + (heads * vd if bias else 0)
        activation += PER_ELEMENT_FLOPS["sigmoid"] * tq * heads * vd
        other += tq * heads * vd
    return LayerResult(
        (*query[:-1], *out),
        trainable_params=params,
        macs=sum((p["macs"] for p in parts), ZERO),
        dot=sum((p["dot"] for p in parts), ZERO),
        bias=sum((p["bias"] for p in parts), ZERO),
        activation=activation,
        other=other,
    )

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
    attended = (list(range(len(query) - 1)) if spec.attention_axes is None
                else sorted(keras_axis(axis, len(query)) - 1 for axis in spec.attention_axes))
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
