"""MixtureOfExperts (issue 17): Mixtral's sparse MLP block (transformers' MixtralSparseMoeBlock). On (..., d), per
position: a router (d -> E logits, no bias), softmax over the E experts, the top k kept (renormalized to sum 1 with
`normalize_top_k`, Mixtral's), each of the k chosen experts a gated MLP (gate, up: d -> I; down: I -> d; the
activation, silu: SwiGLU), their outputs weighted and summed. P positions, E experts, k per token, b = 1 with
the experts' biases.

  params: d·E + E·(3·d·I + b·(2I + d)); active params (what one token uses): d·E + k·(3·d·I + b·(2I + d))
  MACs: P·(d·E + k·3·d·I)
  dot: P·E·(2d - 1) + P·k·(2I·(2d - 1) + d·(2I - 1)); bias: P·k·(2I + d) with b
  activation: the router's softmax P·(3E - 1); the experts' activation on P·k·I
  other: activation(gate)·up, P·k·I; the renormalization, k - 1 adds and k divides per position; the weighting
      and the sum of the k outputs, k multiplies and k - 1 adds per feature: P·d·(2k - 1)
The top-k selection compares values and the routing moves tokens: not counted (as the masks of attention).
The torch profile counts what torch eager computes on the export (the router's mm and each expert's three mm on
the tokens routed to it: P·k rows in all, whatever the routing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import sympy
from pydantic import StrictBool

from analyzer.layers import backward as train
from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import PER_ELEMENT_FLOPS, ActivationName
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, trains_as
from analyzer.layers.torch_ops import ACTIVATION_OPS, Activation, Linear
from analyzer.spec.fields import Size
from analyzer.symbolic import ONE, ZERO, product, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


class MixtureOfExperts(LayerSpec):
    """Mixtral's sparse MoE block: num_experts E (num_local_experts), experts_per_token k (num_experts_per_tok),
    intermediate_dim I of each gated expert, its activation, normalize_top_k (renormalize the k router weights)."""

    type: Literal["MixtureOfExperts"]
    num_experts: Size
    experts_per_token: Size
    intermediate_dim: Size
    activation: ActivationName = "silu"
    normalize_top_k: StrictBool = True
    use_bias: StrictBool = False


def expert_params(d: sympy.Expr, inner: sympy.Expr, bias: bool) -> sympy.Expr:
    return 3 * d * inner + ((2 * inner + d) if bias else ZERO)


@register(MixtureOfExperts)
def mixture_of_experts(layer: MixtureOfExperts, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) < 1:
        ctx.fail(f"needs an input with a feature axis, got {shape_str(shape)}", "inputs")
    if layer.activation == "softmax":
        ctx.fail("activation softmax is not a gate activation (silu, gelu, relu, ...)", "activation")
    e, k, inner = layer.num_experts, layer.experts_per_token, layer.intermediate_dim
    ctx.require_at_least(e, k, f"experts_per_token {render(k)} cannot exceed num_experts {render(e)}",
                         "experts_per_token", violation=f"experts_per_token {render(k)} exceeds num_experts {render(e)}")
    d, positions = shape[-1], product(shape[:-1])
    b = ctx.use_bias(layer.use_bias)
    routed = positions * k  # expert calls, one row each
    hidden = routed * inner
    renormalize = positions * (2 * k - 1) if layer.normalize_top_k else ZERO
    return LayerResult(
        shape,
        trainable_params=d * e + e * expert_params(d, inner, b),
        inactive_params=(e - k) * expert_params(d, inner, b),
        macs=positions * d * e + routed * 3 * d * inner,
        dot=positions * e * (2 * d - 1) + routed * (2 * inner * (2 * d - 1) + d * (2 * inner - 1)),
        bias=routed * (2 * inner + d) if b else ZERO,
        activation=positions * (3 * e - 1) + PER_ELEMENT_FLOPS[layer.activation] * hidden,
        other=hidden + renormalize + positions * d * (2 * k - 1),
    )


# -- what each counting tool counts on the torch export (torch_modules.moe.MixtureOfExperts) --

def moe_linears(row: LayerRow) -> list[Linear]:
    """The router's nn.Linear on every position, and each expert's three on the tokens routed to it: P·k rows in
    all (every position goes to exactly k experts), so the sum over experts is one Linear per projection."""
    spec, shape = row.spec, row.input_shapes[0]
    d, positions, inner = shape[-1], product(shape[:-1]), spec.intermediate_dim
    routed = positions * spec.experts_per_token
    b = row.counts.bias != 0
    return [Linear(ONE, positions, d, spec.num_experts, False), Linear(ONE, routed, d, inner, b),
            Linear(ONE, routed, d, inner, b), Linear(ONE, routed, inner, d, b)]


def moe_activations(row: LayerRow) -> list[Activation]:
    spec, shape = row.spec, row.input_shapes[0]
    routed = product(shape[:-1]) * spec.experts_per_token
    return [] if spec.activation == "linear" else [Activation(spec.activation, routed * spec.intermediate_dim)]


def torch_moe(row: LayerRow) -> sympy.Expr:
    """The router's and the experts' nn.Linear (addmm / mm, `mm_flop`): 2 per MAC; softmax, topk, the weighting
    and index_add_ have no formula."""
    return 2 * sum((x.macs for x in moe_linears(row)), ZERO)


def thop_moe(row: LayerRow) -> sympy.Expr:
    """Each nn.Linear call, `count_linear` (in_features · output elements, summed over the calls); the softmax,
    topk and the operators are no modules: 0."""
    return sympy.Add(*(tools.thop_linear(x) for x in moe_linears(row)))


def ptflops_moe(row: LayerRow) -> sympy.Expr:
    """Each nn.Linear call (`linear_flops_counter_hook`, bias included) and the experts' activation where ptflops
    patches its function (F.silu, F.gelu); torch.softmax, torch.topk, the * and / operators and index_add_ are not
    patched."""
    return sum((tools.ptflops_linear(x) for x in moe_linears(row)), ZERO) + tools.ptflops_activations(moe_activations(row))


def fvcore_moe(row: LayerRow) -> tools.Outcome:
    """aten::linear of the router and of each expert call (`linear_flop_jit`, MACs); the softmax, topk, the
    renormalizing sum and div, the weighting (mul) and index_add and the experts' activation and mul are
    unsupported or ignored."""
    ops = ["aten::softmax", "aten::topk", *(["aten::sum", "aten::div"] if row.spec.normalize_top_k else []),
           *(op for a in moe_activations(row) for op in ACTIVATION_OPS[a.name]), "aten::mul", "aten::index_add"]
    return tools.Skipped(tools.fvcore_unsupported(ops), sum((x.macs for x in moe_linears(row)), ZERO))


counted_as("MixtureOfExperts", torch=torch_moe, thop=thop_moe, ptflops=ptflops_moe, fvcore=fvcore_moe)


@TORCH_BUILDERS.register("MixtureOfExperts")
def torch_moe_builder(layer: MixtureOfExperts, plan: LayerPlan) -> Construct:
    return Construct.of("MixtureOfExperts", in_features=plan.input_shape[-1], num_experts=plan.int(layer.num_experts),
                        experts_per_token=plan.int(layer.experts_per_token),
                        intermediate_dim=plan.int(layer.intermediate_dim), activation=layer.activation,
                        normalize_top_k=layer.normalize_top_k, use_bias=plan.use_bias(layer.use_bias))


KERAS_BUILDERS.refuse("MixtureOfExperts", "has no keras.layers counterpart")


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

def train_moe(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """P = B·positions rows, R = P·k routed rows, d, I, E. The experts as GatedMLP layers on the rows routed to each:
    dL/dW and db summed over each expert's rows (every expert counted as receiving a token: n·(2R - E) for a weight
    of n elements, R - E per bias); dL/dx of gate and up 2·R·d·(2I - 1) and their sum R·d; down's dL/dx
    R·I·(2d - 1), dp·up and dp·act 2·R·I and the activation's backward on R·I (other). The weighted sum: dy = g·w,
    R·d, and dw = Σ g·y, R·(2d - 1) (other); the renormalization's backward, 4k - 1 per row; top-k's scatter back
    into the E probabilities, nothing; the softmax's, P·(4E - 1); the router: dW d·E·(2P - 1), dL/dx P·d·(2E - 1).
    The input's k + 1 gradients (the router's and k experts') summed: P·k·d adds (grad input)."""
    spec, (router, gate, _, _) = row.spec, moe_linears(row)
    experts, k = spec.num_experts, spec.experts_per_token
    rows, routed, d, inner = batch * router.positions, batch * gate.positions, router.in_features, spec.intermediate_dim
    b = gate.bias

    def summed_over_experts(n: sympy.Expr) -> sympy.Expr:  # n·(2·rows_e - 1) summed over the E experts
        return n * (2 * routed - experts)

    grad_weight = (summed_over_experts(3 * d * inner) + ((2 * inner + d) * (routed - experts) if b else ZERO)
                   + train.dot_product_gradients(d * experts, rows))
    grad_input = (2 * train.dot_product_gradients(routed * d, inner) + routed * d
                  + train.dot_product_gradients(rows * d, experts) + rows * k * d)
    hidden = routed * inner
    other = (train.dot_product_gradients(hidden, d) + 2 * hidden
             + train.activation_backward(spec.activation, (inner,), routed, row.name)
             + routed * d + routed * (2 * d - 1)
             + (rows * (4 * k - 1) if spec.normalize_top_k else ZERO) + rows * (4 * experts - 1))
    return train.Backward(grad_input=grad_input, grad_weight=grad_weight, grad_other=other)


def torch_train_moe(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """FlopCounterMode's mm: the router's dL/dW and dL/dx, 2·B·P·d·E each; the experts as GatedMLP on the routed
    rows (dL/dW of the three, dL/dx of gate and up, down's dL/dx always). The rest has no formula."""
    router, gate, up, down = moe_linears(row)
    return train.Backward(grad_input=2 * batch * (gate.macs + up.macs + router.macs),
                          grad_weight=2 * batch * (gate.macs + up.macs + down.macs + router.macs),
                          grad_other=2 * batch * down.macs)


trains_as("MixtureOfExperts", rule=train_moe, torch=torch_train_moe)
