"""What autograd saves of MixtureOfExperts on nnspec's torch export (issue 16; docs/conventions.md#training, Memory):
torch_modules.moe.MixtureOfExperts, op by op, as torch's derivatives.yaml has them, measured with
torch.autograd.graph.saved_tensors_hooks (unique storages; every gate activation, normalize_top_k on and off, with
and without bias, the layer training or frozen with its input needing a gradient, B = 1, 2, 3, random routings and
forced ones: every token to one expert, experts with no token, k = E).

The routing. The eager loop gives expert e the n_e rows routed to it (torch.where(chosen == e), one index storage
per expert, rows = flat[token]) and keeps, per expert, tensors of n_e rows each; an expert that gets no token runs
nothing and keeps nothing. No saved tensor has a size per expert that does not scale with n_e, and the n_e sum to
R = P·k (each position goes to exactly k experts), so the total is the same for every routing: the rule is exact,
with no condition on which experts receive tokens.
"""

from __future__ import annotations

from analyzer.layers import saved
from analyzer.layers.activations import ACTIVATION_SAVES
from analyzer.layers.attention import projection_input
from analyzer.layers.registry import saves_as
from analyzer.symbolic import product


def saves_moe(ctx: saved.SaveContext) -> saved.Saves:
    """P = B·positions, R = P·k routed rows, d, I, E. The router's mm keeps its input, flat = x.reshape(-1, d) (a
    view of x, or the copy the reshape makes), when the weights train; softmax its output P·E; topk its indices
    (R int64); with normalize_top_k the division keeps both operands, the k values R and their sum P. Per expert,
    over its n_e rows (summed: R): torch.where's nonzero storage (token and slot are its two columns, 2·n_e int64),
    kept by index_add (and by the two index ops); rows = flat[token] (R·d), kept by gate's and up's mm when the
    weights train; the gated MLP's hidden tensors as GatedMLP keeps them (what the activation keeps of the gate's
    output, R·I each: silu, gelu, ... its input, relu, sigmoid, tanh, exponential its output, hard_sigmoid its
    x + 3, softsign its input and 1 + |x|; up's output and act(gate), the product factors; the product, down's
    input, when the weights train); the expert's output (R·d) and its picked router weight weights[token, slot]
    (R), the two factors of their product; that product (R·d), kept by index_add (its source's backward is
    grad.index_select(...).expand_as(source))."""
    spec = ctx.spec
    shape = ctx.row.input_shapes[0]
    d, rows = shape[-1], ctx.batch * product(shape[:-1])
    routed, hidden = rows * spec.experts_per_token, rows * spec.experts_per_token * spec.intermediate_dim
    kept: list[saved.Saved] = []
    if ctx.trains:
        kept.append(projection_input(ctx, 0, "router rows"))
    kept += [saved.Saved.new("router softmax", rows * spec.num_experts),
             saved.Saved.new("top-k indices", routed, "int64")]
    if spec.normalize_top_k:
        kept += [saved.Saved.new("top-k weights", routed), saved.Saved.new("top-k sum", rows)]
    kept.append(saved.Saved.new("routed token, slot", 2 * routed, "int64"))
    if ctx.trains:
        kept.append(saved.Saved.new("routed rows", routed * d))
    gate_out = saved.Saved.new("gate output", hidden)
    activated = gate_out if spec.activation == "linear" else saved.Saved.new("activated", hidden)
    found = {"x": gate_out, "y": activated, "t": saved.Saved.new("activation intermediate", hidden),
             "mask": saved.Saved.new("activation mask", hidden, "bool"),
             "mask2": saved.Saved.new("activation second mask", hidden, "bool")}
    kept += [found[what] for what in ACTIVATION_SAVES[spec.activation]]
    kept += [saved.Saved.new("up output", hidden), activated]
    if ctx.trains:
        kept.append(saved.Saved.new("product", hidden))
    kept += [saved.Saved.new("expert output", routed * d), saved.Saved.new("picked weight", routed),
             saved.Saved.new("weighted output", routed * d)]
    return saved.Saves(tuple(kept))


saves_as("MixtureOfExperts", rule=saves_moe)
