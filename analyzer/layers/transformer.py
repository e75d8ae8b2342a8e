"""The decoder vocabulary (issue 17): GroupedQueryAttention (Keras 3's, with the options of Llama, Mistral, Qwen,
Gemma and Phi), GatedMLP (SwiGLU / GeGLU), ReversibleEmbedding (keras_hub's: an embedding, or used in reverse as
the LM head, its table tied to an embedding's) and PositionEmbedding (keras_hub's learned absolute positions).

GroupedQueryAttention on query (Tq, dq), value (Tv, dv), key (Tv, dk) (key defaults to value): Hq query heads,
Hkv key/value heads (Hq/Hkv query heads share each), head_dim hd, output do (default dq); bq, bk, bv, bo = 1
with that projection's bias.

  params: dq·Hq·hd + (dk + dv)·Hkv·hd + Hq·hd·do + bq·Hq·hd + (bk + bv)·Hkv·hd + bo·do + (2·hd with qk_norm)
  projections: Tq·Hq·hd outputs of dq terms, Tv·Hkv·hd of dk, Tv·Hkv·hd of dv; output Tq·do of Hq·hd terms
  qk_norm: RMS normalization over hd of every query and key head (Tq·Hq and Tv·Hkv rows of hd), other
  rotary: r = floor(hd · partial_rotary_factor) features of each query and key head rotated, 3 FLOPs each
      (x·cos + rotate_half(x)·sin: per pair (a, b), a·c - b·s and b·c + a·s, 4 multiplies and 2 adds), other
  scaling the query by 1/sqrt(hd): Tq·Hq·hd multiplies, other
  S scores per head (the keys each query sees, summed over the queries): Tq·Tv; causal T(T+1)/2;
      causal with a window W, k(k+1)/2 + (T - k)·W with k = min(T, W) (query i sees min(i + 1, W) keys);
      a window without causal (Keras' symmetric band, |i - j| < W): 2·that - T
  scores Q·Kᵀ: Hq·S outputs of hd terms; softmax over each query's keys: Hq·(3S - Tq) (activation)
  attention·V: Hq·Tq·hd outputs, query i's of its m_i keys: Hq·S MACs, Hq·hd·(2S - Tq) FLOPs
The masks, the rotary cos / sin tables and the repeat of the key/value heads depend on T only or move data:
not counted. The torch profile counts what torch eager computes on the export: every Tq·Tv score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sympy
from pydantic import Field, StrictBool, StrictStr

from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import PER_ELEMENT_FLOPS, ActivationName
from analyzer.layers.attention import query_value_key
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.normalization import rms_normalization_flops
from analyzer.layers.registry import caches_as, counted_as, register
from analyzer.layers.sizes import OptionalSize
from analyzer.layers.torch_ops import ACTIVATION_OPS, Activation, Linear
from analyzer.spec.fields import Rate, Real, Size
from analyzer.symbolic import ONE, ZERO, floor_div, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow

ROTARY_FLOPS_PER_ELEMENT = 3  # a·cos - b·sin per rotated feature: 2 multiplies, 1 add (or subtract)


class GroupedQueryAttention(LayerSpec):
    """Keras 3's GroupedQueryAttention (head_dim, num_query_heads, num_key_value_heads, use_bias, sliding_window,
    dropout, seed; `causal` is its call's use_causal_mask) with the decoder options of Hugging Face configs:
    per-projection biases (null: use_bias), output_dim, q/k RMS norm over head_dim, rotary embedding."""

    type: Literal["GroupedQueryAttention"]
    head_dim: Size
    num_query_heads: Size
    num_key_value_heads: Size
    use_bias: StrictBool = True
    query_bias: StrictBool | None = None
    key_bias: StrictBool | None = None
    value_bias: StrictBool | None = None
    output_bias: StrictBool | None = None
    output_dim: OptionalSize = None  # None: the query's features (Keras)
    causal: StrictBool = False
    sliding_window: OptionalSize = None
    qk_norm: StrictBool = False
    qk_norm_epsilon: Real = 1e-6
    qk_norm_scale_plus_one: StrictBool = False  # Gemma 3's q/k norm: (1 + w)
    rope_theta: float | None = Field(default=None, gt=0, strict=True, allow_inf_nan=False)  # None: no rotary
    partial_rotary_factor: float = Field(default=1.0, gt=0, le=1, strict=True, allow_inf_nan=False)
    dropout: Rate = 0.0
    seed: int | None = None
    arity: ClassVar[int | None] = None  # two or three: query, value[, key]


@dataclass(frozen=True)
class GQASizes:
    """The module docstring's sizes: Tq, Tv; dq, dk, dv, do; Hq, Hkv, hd; r rotated features per head; S scores
    per head (as nnspec counts them: the mask's); the four biases."""

    tq: sympy.Expr
    tv: sympy.Expr
    dq: sympy.Expr
    dk: sympy.Expr
    dv: sympy.Expr
    do: sympy.Expr
    heads: sympy.Expr
    kv_heads: sympy.Expr
    hd: sympy.Expr
    rotary: sympy.Expr
    scores: sympy.Expr
    biases: tuple[bool, bool, bool, bool]
    qk_norm: bool
    cached: sympy.Expr = ZERO  # past tokens whose keys and values come from the cache (--phase decode: P)
    window: sympy.Expr | None = None  # sliding_window

    @property
    def cached_keys(self) -> sympy.Expr:
        """The cached keys a decode step reads: P, or min(P, W - 1) in a window, which is all a window's cache keeps
        (transformers' DynamicSlidingWindowLayer keeps the last W - 1 tokens)."""
        return self.cached if self.window is None or self.cached == 0 else sympy.Min(self.cached, self.window - 1)

    def linears(self) -> list[Linear]:
        """The four nn.Linear projections of the export: query, key, value, output."""
        bq, bk, bv, bo = self.biases
        return [Linear(ONE, self.tq, self.dq, self.heads * self.hd, bq),
                Linear(ONE, self.tv, self.dk, self.kv_heads * self.hd, bk),
                Linear(ONE, self.tv, self.dv, self.kv_heads * self.hd, bv),
                Linear(ONE, self.tq, self.heads * self.hd, self.do, bo)]


def rotary_features(layer: GroupedQueryAttention, ctx: LayerContext | None) -> sympy.Expr:
    """r = floor(head_dim · partial_rotary_factor), the factor read exactly (0.4 is 2/5); must be even."""
    if layer.rope_theta is None:
        return ZERO
    factor = sympy.Rational(repr(layer.partial_rotary_factor))
    rotary = layer.head_dim if factor == 1 else floor_div(layer.head_dim * factor.p, factor.q)
    if ctx is not None:
        ctx.require("int", rotary / 2, ZERO, f"the rotated features floor(head_dim · partial_rotary_factor) = "
                    f"{render(rotary)} must be even (rotate-half pairs them)", "partial_rotary_factor",
                    violation=f"the rotated features floor(head_dim · partial_rotary_factor) = {render(rotary)} are odd")
    return rotary


def causal_window_scores(t: sympy.Expr, window: sympy.Expr) -> sympy.Expr:
    """sum over queries i < t of min(i + 1, window): k(k+1)/2 + (t - k)·window, k = min(t, window)."""
    k = sympy.Min(t, window)
    return k * (k + 1) / 2 + (t - k) * window


def scores_per_head(layer: GroupedQueryAttention, tq: sympy.Expr, tv: sympy.Expr, cached: sympy.Expr = ZERO) -> sympy.Expr:
    """S of the module docstring: the keys each query sees under the spec's mask, summed over the queries. With c
    cached tokens (causal only), new query i sees c + i + 1 keys, or min(c + i + 1, W) in a window: T·c + T(T+1)/2,
    or F(c + T) - F(c) with F(n) = causal_window_scores(n, W)."""
    window = layer.sliding_window
    if not layer.causal and window is None:
        return tq * tv
    if window is None:
        return tq * cached + tq * (tq + 1) / 2
    if cached != 0:
        return causal_window_scores(cached + tq, window) - causal_window_scores(cached, window)
    one_side = causal_window_scores(tq, window)
    return one_side if layer.causal else 2 * one_side - tq


def biases(layer: GroupedQueryAttention, use_bias: Any) -> tuple[bool, bool, bool, bool]:
    """(bq, bk, bv, bo): each projection's flag, or use_bias; `use_bias` maps a declared flag through --bias."""
    return tuple(use_bias(layer.use_bias if flag is None else flag)  # type: ignore[return-value]
                 for flag in (layer.query_bias, layer.key_bias, layer.value_bias, layer.output_bias))


@register(GroupedQueryAttention)
def grouped_query_attention(layer: GroupedQueryAttention, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    query, value, key = query_value_key(inputs, ctx)
    for name, shape in (("query", query), ("value", value), ("key", key)):
        if len(shape) != 2:
            ctx.fail(f"the {name} must be a sequence (T, features), got {shape_str(shape)}", "inputs")
    ctx.require_equal(key[0], value[0], f"key and value must have the same length ({render(key[0])} vs "
                      f"{render(value[0])})", "inputs", violation=f"key length {render(key[0])} differs from value "
                      f"length {render(value[0])}")
    heads, kv_heads = layer.num_query_heads, layer.num_key_value_heads
    ctx.require_at_least(heads, kv_heads, f"num_key_value_heads {render(kv_heads)} cannot exceed num_query_heads "
                         f"{render(heads)}", "num_key_value_heads",
                         violation=f"num_key_value_heads {render(kv_heads)} exceeds num_query_heads {render(heads)}")
    ctx.require("int", heads / kv_heads, ZERO, f"num_query_heads {render(heads)} must be divisible by "
                f"num_key_value_heads {render(kv_heads)}", "num_key_value_heads",
                violation=f"num_query_heads {render(heads)} is not divisible by num_key_value_heads {render(kv_heads)}")
    tq, tv = query[0], value[0]
    cached = ZERO
    if ctx.kv_cache is not None:
        if not layer.causal:
            ctx.fail("--phase decode reads past tokens from a key/value cache, which only a causal attention has "
                     "(this one attends to every position: an encoder)", "causal")
        cached = ctx.kv_cache
    if layer.causal or layer.sliding_window is not None:
        what = "causal" if layer.causal else "sliding_window"
        ctx.require_equal(tv, tq, f"{what} attention needs queries and keys of the same length ({render(tq)} vs "
                          f"{render(tv)})", what, violation=f"{what}: query length {render(tq)} differs from key "
                          f"length {render(tv)}")
    s = GQASizes(tq, tv, query[1], key[1], value[1], layer.output_dim if layer.output_dim is not None else query[1],
                 heads, kv_heads, layer.head_dim, rotary_features(layer, ctx), scores_per_head(layer, tq, tv, cached),
                 biases(layer, ctx.use_bias), layer.qk_norm, cached, layer.sliding_window)
    return gqa_result(s)


def gqa_result(s: GQASizes) -> LayerResult:
    linears = s.linears()
    macs = sum((x.macs for x in linears), ZERO) + 2 * s.heads * s.scores * s.hd
    dot = (sum((x.positions * x.out_features * (2 * x.in_features - 1) for x in linears), ZERO)
           + s.heads * s.scores * (2 * s.hd - 1)  # scores
           + s.heads * s.hd * (2 * s.scores - s.tq))  # attention·V: query i's hd outputs of m_i terms
    bias = sum((x.positions * x.out_features for x in linears if x.bias), ZERO)
    params = sum((x.in_features * x.out_features + (x.out_features if x.bias else ZERO) for x in linears), ZERO)
    other = s.tq * s.heads * s.hd + ROTARY_FLOPS_PER_ELEMENT * s.rotary * (s.tq * s.heads + s.tv * s.kv_heads)
    if s.qk_norm:
        params += 2 * s.hd
        other += (rms_normalization_flops(s.tq * s.heads * s.hd, s.tq * s.heads, True)
                  + rms_normalization_flops(s.tv * s.kv_heads * s.hd, s.tv * s.kv_heads, True))
    return LayerResult((s.tq, s.do), trainable_params=params, macs=macs, dot=dot, bias=bias,
                       activation=s.heads * (3 * s.scores - s.tq), other=other, cached=s.cached)


def row_gqa_sizes(row: LayerRow) -> GQASizes:
    spec = row.spec
    query, value = row.input_shapes[0], row.input_shapes[1]
    key = row.input_shapes[2] if len(row.input_shapes) > 2 else value
    declared = biases(spec, lambda flag: flag)
    return GQASizes(query[0], value[0], query[1], key[1], value[1], row.output_shape[1], spec.num_query_heads,
                    spec.num_key_value_heads, spec.head_dim, rotary_features(spec, None),
                    scores_per_head(spec, query[0], value[0], row.cached), counted_biases(row, declared), spec.qk_norm,
                    row.cached, spec.sliding_window)


def counted_biases(row: LayerRow, declared: tuple[bool, bool, bool, bool]) -> tuple[bool, bool, bool, bool]:
    """The biases as counted: the spec's, or all on / all off under --bias on / off (told apart by the count)."""
    query, value = row.input_shapes[0], row.input_shapes[1]
    outputs = (query[0] * row.spec.num_query_heads * row.spec.head_dim,
               value[0] * row.spec.num_key_value_heads * row.spec.head_dim,
               value[0] * row.spec.num_key_value_heads * row.spec.head_dim, query[0] * row.output_shape[1])
    counted = row.counts.bias / row.multiplier
    if sympy.expand(counted - sum((n for n, b in zip(outputs, declared, strict=True) if b), ZERO)) == 0:
        return declared
    return (False,) * 4 if counted == 0 else (True,) * 4


# -- what each counting tool counts on the torch export (torch_modules.transformer.GroupedQueryAttention) --

def full_products(s: GQASizes) -> sympy.Expr:
    """MACs of the two torch.matmul of the export, over every Tq·Tv score (the mask is applied after); with a cache,
    over the c + Tv keys (transformers' eager attention on a DynamicCache), c = min(P, W - 1) in a sliding window
    (its cache keeps no more)."""
    return 2 * s.heads * s.tq * (s.tv + s.cached_keys) * s.hd


def torch_gqa(row: LayerRow) -> sympy.Expr:
    """The four nn.Linear (addmm / mm, `mm_flop`) and the two torch.matmul of the heads (bmm, `bmm_flop`), 2 per
    MAC, over the full Tq·Tv scores: eager computes every score and masks it after. Norms, rotary, softmax: no
    formula."""
    s = row_gqa_sizes(row)
    return 2 * (sum((x.macs for x in s.linears()), ZERO) + full_products(s))


def thop_gqa(row: LayerRow) -> sympy.Expr:
    """The four nn.Linear children, `count_linear` each; nn.RMSNorm (q/k norm) has no rule, the matmuls, the
    rotation and the softmax are no modules: 0."""
    return sympy.Add(*(tools.thop_linear(x) for x in row_gqa_sizes(row).linears()))


def ptflops_gqa(row: LayerRow) -> sympy.Expr:
    """The four nn.Linear (`linear_flops_counter_hook`, bias included) and the two torch.matmul, which ptflops
    patches (`_matmul_tensor_flops_hook`: prod(input.shape) · other.shape[-1], the full Tq·Tv scores);
    torch.softmax, F.rms_norm, nn.RMSNorm and the rotation's operators are not patched or mapped: 0."""
    s = row_gqa_sizes(row)
    return sum((tools.ptflops_linear(x) for x in s.linears()), ZERO) + full_products(s)


def fvcore_gqa(row: LayerRow) -> tools.Outcome:
    """aten::linear (`linear_flop_jit`) and the two aten::matmul (`matmul_flop_jit`, the full scores); the scaling
    (aten::div), aten::softmax, the rotation (aten::mul, aten::neg, aten::add) and the q/k norm (aten::rms_norm,
    with (1 + w) an aten::add) are unsupported; aten::masked_fill is ignored."""
    s, spec = row_gqa_sizes(row), row.spec
    ops = ["aten::div", "aten::softmax"]
    if s.qk_norm:
        ops += ["aten::rms_norm", *(["aten::add"] if spec.qk_norm_scale_plus_one else [])]
    if spec.rope_theta is not None and s.rotary != 0:
        ops += ["aten::neg", "aten::mul", "aten::add"]
    counted = sum((x.macs for x in s.linears()), ZERO) + full_products(s)
    return tools.Skipped(tools.fvcore_unsupported(ops), counted)


counted_as("GroupedQueryAttention", torch=torch_gqa, thop=thop_gqa, ptflops=ptflops_gqa, fvcore=fvcore_gqa)


def gqa_kv_cache(row: LayerRow) -> tuple[sympy.Expr, sympy.Expr]:
    """A causal attention keeps each token's keys and values, Hkv·hd each (after the rotary embedding, as
    transformers' cache does): per sample it writes 2·Hkv·hd·T for its T new tokens and reads 2·Hkv·hd·P cached
    ones, min(P, W - 1) of them in a sliding window (all its cache keeps). A non-causal one (an encoder) keeps none."""
    spec = row.spec
    if not spec.causal:
        return ZERO, ZERO
    per_token = 2 * spec.num_key_value_heads * spec.head_dim
    return per_token * row.input_shapes[1][0], per_token * row_gqa_sizes(row).cached_keys


caches_as("GroupedQueryAttention", rule=gqa_kv_cache)


@TORCH_BUILDERS.register("GroupedQueryAttention")
def torch_gqa_builder(layer: GroupedQueryAttention, plan: LayerPlan) -> Construct:
    query, value = plan.input_shapes[0], plan.input_shapes[1]
    key = plan.input_shapes[2] if len(plan.input_shapes) > 2 else value
    bq, bk, bv, bo = biases(layer, plan.use_bias)
    return Construct.of("GroupedQueryAttention", query_dim=query[-1], key_dim_in=key[-1], value_dim_in=value[-1],
                        head_dim=plan.int(layer.head_dim), num_query_heads=plan.int(layer.num_query_heads),
                        num_key_value_heads=plan.int(layer.num_key_value_heads), output_dim=plan.output_shape[-1],
                        queries=query[0], keys=value[0], query_bias=bq, key_bias=bk, value_bias=bv, output_bias=bo,
                        qk_norm=layer.qk_norm, qk_norm_epsilon=layer.qk_norm_epsilon,
                        qk_norm_plus_one=layer.qk_norm_scale_plus_one, causal=layer.causal,
                        sliding_window=plan.int(layer.sliding_window) if layer.sliding_window is not None else None,
                        rope_theta=layer.rope_theta, rotary_dim=plan.int(rotary_features(layer, None)))


@KERAS_BUILDERS.register("GroupedQueryAttention")
def keras_gqa_builder(layer: GroupedQueryAttention, plan: LayerPlan) -> Construct:
    flags = set(biases(layer, plan.use_bias))
    unsupported = [name for name, used in (
        ("causal (Keras takes use_causal_mask when called, which the export does not pass)", layer.causal),
        ("rope_theta", layer.rope_theta is not None), ("qk_norm", layer.qk_norm),
        ("different query/key/value/output biases", len(flags) > 1),
        ("output_dim", layer.output_dim is not None and plan.int(layer.output_dim) != plan.input_shapes[0][-1]))
        if used]
    if unsupported:
        raise plan.error(f"GroupedQueryAttention with {', '.join(unsupported)} has no keras.layers."
                         "GroupQueryAttention counterpart")
    return Construct("GroupQueryAttention", dict(  # keras.layers exports GroupedQueryAttention by this name
        head_dim=plan.int(layer.head_dim), num_query_heads=plan.int(layer.num_query_heads),
        num_key_value_heads=plan.int(layer.num_key_value_heads), use_bias=flags.pop(), dropout=layer.dropout,
        sliding_window=plan.int(layer.sliding_window) if layer.sliding_window is not None else None,
        seed=layer.seed), call="args")


# -- GatedMLP: down(activation(gate(x)) · up(x)) --

class GatedMLP(LayerSpec):
    """Llama's / Gemma's MLP (transformers' LlamaMLP: gate_proj, up_proj, down_proj, hidden_act): SwiGLU with
    silu, GeGLU with gelu. intermediate_dim is keras_hub's name (transformers: intermediate_size)."""

    type: Literal["GatedMLP"]
    intermediate_dim: Size
    activation: ActivationName = "silu"
    use_bias: StrictBool = False
    output_dim: OptionalSize = None  # None: the input's features


@register(GatedMLP)
def gated_mlp(layer: GatedMLP, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if not shape:
        ctx.fail("needs an input with at least one axis besides the batch")
    if layer.activation == "softmax":
        ctx.fail("activation softmax is not a gate activation (silu, gelu, relu, ...)", "activation")
    d, inner = shape[-1], layer.intermediate_dim
    out = layer.output_dim if layer.output_dim is not None else d
    positions = product(shape[:-1])
    b = ctx.use_bias(layer.use_bias)
    hidden = positions * inner
    return LayerResult(
        (*shape[:-1], out),
        trainable_params=2 * d * inner + inner * out + ((2 * inner + out) if b else ZERO),
        macs=2 * hidden * d + positions * out * inner,
        dot=2 * hidden * (2 * d - 1) + positions * out * (2 * inner - 1),
        bias=(2 * hidden + positions * out) if b else ZERO,
        activation=PER_ELEMENT_FLOPS[layer.activation] * hidden,
        other=hidden,  # activation(gate) · up
    )


def gated_mlp_linears(row: LayerRow) -> list[Linear]:
    shape, spec = row.input_shapes[0], row.spec
    positions, d, inner, out = product(shape[:-1]), shape[-1], spec.intermediate_dim, row.output_shape[-1]
    b = row.counts.bias != 0
    return [Linear(ONE, positions, d, inner, b), Linear(ONE, positions, d, inner, b), Linear(ONE, positions, inner, out, b)]


def gated_mlp_activation(row: LayerRow) -> list[Activation]:
    spec = row.spec
    return [] if spec.activation == "linear" else \
        [Activation(spec.activation, product(row.input_shapes[0][:-1]) * spec.intermediate_dim)]


def torch_gated_mlp(row: LayerRow) -> sympy.Expr:
    """Its three nn.Linear (addmm / mm, `mm_flop`): 2 per MAC; the activation and the * have no formula."""
    return 2 * sum((x.macs for x in gated_mlp_linears(row)), ZERO)


def thop_gated_mlp(row: LayerRow) -> sympy.Expr:
    """The three nn.Linear children, `count_linear` each; the activation call and the * are no modules: 0."""
    return sympy.Add(*(tools.thop_linear(x) for x in gated_mlp_linears(row)))


def ptflops_gated_mlp(row: LayerRow) -> sympy.Expr:
    """The three nn.Linear (`linear_flops_counter_hook`, bias included), plus the activation where ptflops patches
    its function (F.silu, F.gelu: `_numel_functional_flops_hook`); the * operator is not patched."""
    return (sum((tools.ptflops_linear(x) for x in gated_mlp_linears(row)), ZERO)
            + tools.ptflops_activations(gated_mlp_activation(row)))


def fvcore_gated_mlp(row: LayerRow) -> tools.Outcome:
    """Three aten::linear (`linear_flop_jit`, MACs); the activation's op and the aten::mul are unsupported."""
    ops = [op for a in gated_mlp_activation(row) for op in ACTIVATION_OPS[a.name]] + ["aten::mul"]
    return tools.Skipped(tools.fvcore_unsupported(ops), sum((x.macs for x in gated_mlp_linears(row)), ZERO))


counted_as("GatedMLP", torch=torch_gated_mlp, thop=thop_gated_mlp, ptflops=ptflops_gated_mlp, fvcore=fvcore_gated_mlp)


@TORCH_BUILDERS.register("GatedMLP")
def torch_gated_mlp_builder(layer: GatedMLP, plan: LayerPlan) -> Construct:
    return Construct.of("GatedMLP", in_features=plan.input_shape[-1], intermediate_dim=plan.int(layer.intermediate_dim),
                        output_dim=plan.output_shape[-1], activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias))


KERAS_BUILDERS.refuse("GatedMLP", "has no keras.layers counterpart (keras_hub builds it inside its decoder layers "
                      "from three Dense layers and a multiply; write those to export to Keras)")


# -- ReversibleEmbedding (keras_hub): a lookup, or in reverse the logits against the table --

class ReversibleEmbedding(LayerSpec):
    """keras_hub's ReversibleEmbedding (input_dim, output_dim, tie_weights, and its call's reverse). nnspec calls a
    layer once, so the reverse use is a layer of its own: `reverse: true` on (..., output_dim) gives the logits
    (..., input_dim); with tie_weights it reads the table of the layer `tied_to` names (counted there, once).
    use_bias (nnspec's, reverse only; keras_hub's layer has none): a bias of input_dim added to the logits, a
    parameter of this layer even when the table is tied (BERT's MLM decoder: cls.predictions.bias)."""

    type: Literal["ReversibleEmbedding"]
    input_dim: Size  # vocabulary
    output_dim: Size
    tie_weights: StrictBool = True
    reverse: StrictBool = False
    tied_to: StrictStr | None = None
    use_bias: StrictBool = False


@register(ReversibleEmbedding)
def reversible_embedding(layer: ReversibleEmbedding, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    vocab, width = layer.input_dim, layer.output_dim
    if not layer.reverse:
        if layer.tied_to is not None:
            ctx.fail("tied_to is for the reverse use (reverse: true): the forward lookup holds the table", "tied_to")
        if layer.use_bias:
            ctx.fail("use_bias is for the reverse use (reverse: true): the lookup adds no bias", "use_bias")
        return LayerResult((*shape, width), trainable_params=vocab * width)
    if layer.tie_weights and layer.tied_to is None:
        ctx.fail("reverse: true with tie_weights needs tied_to: the name of the embedding whose table it reads",
                 "tied_to")
    if not layer.tie_weights and layer.tied_to is not None:
        ctx.fail("tied_to with tie_weights: false: an untied reverse embedding has its own table", "tied_to")
    if not shape:
        ctx.fail("reverse: true needs an input (..., output_dim)", "inputs")
    ctx.require_equal(shape[-1], width, f"the input's features must be output_dim {render(width)}, got "
                      f"{render(shape[-1])}", "inputs", violation=f"input features {render(shape[-1])} differ from "
                      f"output_dim {render(width)}")
    outputs = product(shape[:-1]) * vocab
    b = ctx.use_bias(layer.use_bias)
    return LayerResult((*shape[:-1], vocab),
                       trainable_params=(ZERO if layer.tie_weights else vocab * width) + (vocab if b else ZERO),
                       macs=outputs * width, dot=outputs * (2 * width - 1), bias=outputs if b else ZERO)


def reverse_linear(row: LayerRow) -> Linear:
    """The reverse use as one linear map of the table; its bias as counted (the spec's, or --bias on / off)."""
    return Linear(ONE, product(row.input_shapes[0][:-1]), row.spec.output_dim, row.spec.input_dim,
                  row.counts.bias != 0)


def torch_reversible(row: LayerRow) -> sympy.Expr:
    """Reverse: F.linear / nn.Linear, `mm_flop` (`addmm_flop` with a bias: the product only), 2 per MAC. The lookup
    (aten::embedding): no formula, 0."""
    return 2 * reverse_linear(row).macs if row.spec.reverse else ZERO


def thop_reversible(row: LayerRow) -> sympy.Expr:
    """Untied reverse: an nn.Linear, `count_linear`. Tied (TiedLMHead, F.linear on a buffer) and the lookup
    (nn.Embedding): no rule, 0."""
    spec = row.spec
    return tools.thop_linear(reverse_linear(row)) if spec.reverse and not spec.tie_weights else ZERO


def ptflops_reversible(row: LayerRow) -> sympy.Expr:
    """Untied reverse: nn.Linear's `linear_flops_counter_hook` (MACs, plus the outputs with a bias). Tied
    (TiedLMHead, F.linear on a buffer, its bias too): 0, ptflops 0.7.5's `patch_functional` leaves F.linear
    unpatched (the line is commented out). The lookup: nn.Embedding is not in `MODULES_MAPPING`, 0."""
    spec = row.spec
    return tools.ptflops_linear(reverse_linear(row)) if spec.reverse and not spec.tie_weights else ZERO


def fvcore_reversible(row: LayerRow) -> sympy.Expr:
    """Reverse: aten::linear, `linear_flop_jit` (MACs; the bias, an argument of the same op, not counted). The
    lookup: aten::embedding, no arithmetic, 0."""
    return reverse_linear(row).macs if row.spec.reverse else ZERO


counted_as("ReversibleEmbedding", torch=torch_reversible, thop=thop_reversible, ptflops=ptflops_reversible,
           fvcore=fvcore_reversible)


@TORCH_BUILDERS.register("ReversibleEmbedding")
def torch_reversible_builder(layer: ReversibleEmbedding, plan: LayerPlan) -> Construct:
    vocab, width = plan.int(layer.input_dim), plan.int(layer.output_dim)
    if not layer.reverse:
        return Construct.of("Embedding", input_dim=vocab, output_dim=width)
    bias = plan.use_bias(layer.use_bias)
    if layer.tie_weights:
        return Construct.of("TiedLMHead", input_dim=vocab, output_dim=width, use_bias=bias)
    return Construct.of("Dense", in_features=width, units=vocab, use_bias=bias, activation=None)


KERAS_BUILDERS.refuse("ReversibleEmbedding", "is keras_hub's layer, not keras.layers' (and a tied table is shared "
                      "by two nnspec layers, which the Keras export builds separately)")


# -- PositionEmbedding (keras_hub): learned absolute positions, GPT-2's wpe, BERT's position_embeddings --

class PositionEmbedding(LayerSpec):
    """keras_hub's PositionEmbedding(sequence_length): on (T, d), T ≤ sequence_length, the first T rows of a
    learned (sequence_length, d) table, to be added to the token embeddings (an Add layer)."""

    type: Literal["PositionEmbedding"]
    sequence_length: Size


@register(PositionEmbedding)
def position_embedding(layer: PositionEmbedding, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) != 2:
        ctx.fail(f"needs a sequence (T, features), got {shape_str(shape)}", "inputs")
    # --phase decode: the new tokens sit at positions P .. P + T - 1
    positions = shape[0] if ctx.kv_cache is None else ctx.kv_cache + shape[0]
    what = "the sequence length" if ctx.kv_cache is None else "the cached and new positions"
    ctx.require_at_least(layer.sequence_length, positions, f"{what} {render(positions)} cannot exceed "
                         f"sequence_length {render(layer.sequence_length)}", "sequence_length",
                         violation=f"{what} {render(positions)} exceeds sequence_length "
                         f"{render(layer.sequence_length)}")
    return LayerResult(shape, trainable_params=layer.sequence_length * shape[1])


counted_as("PositionEmbedding", **tools.COST_FREE)


@TORCH_BUILDERS.register("PositionEmbedding")
def torch_position_builder(layer: PositionEmbedding, plan: LayerPlan) -> Construct:
    return Construct.of("PositionEmbedding", sequence_length=plan.int(layer.sequence_length),
                        output_dim=plan.input_shape[-1])


KERAS_BUILDERS.refuse("PositionEmbedding", "is keras_hub's layer, not keras.layers'")
