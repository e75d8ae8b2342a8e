"""What the layer families need to state how each counting tool re-counts their layers.

A convention rule takes the analyzed `LayerRow` (its validated spec, input shapes,
output shape and nnspec's own counts) and returns a sympy expression over the spec's
symbols, or `Skipped` when the tool gives up on (part of) the layer: the tool then
counts `Skipped.counted` (usually 0) and the report says why, instead of a silent 0.
Each family declares its rules next to the layer with `registry.counted_as`; this
module holds what several families share: the outcome types, and each tool's formula
for a module or op that many layers export to (thop's `count_linear`, ptflops'
linear hook and patched functions, fvcore's unsupported-op message, the zero rules
with the reason each tool counts nothing).

The rules restate each tool's source (function names in every docstring) in terms of
the spec's shapes; no framework is imported. The profiles themselves (name, tool,
version, unit) are in analyzer/conventions/profiles.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.errors import UsageError
from analyzer.layers.registry import CONVENTIONS, counted_as
from analyzer.layers.torch_ops import ACTIVATION_OPS, Activation, Linear
from analyzer.symbolic import ZERO

if TYPE_CHECKING:
    from analyzer.report import LayerRow

# The profiles whose rules every layer type states (the generic profiles, nnspec and seed-approx, need none).
TOOLS = ("torch", "thop", "ptflops", "fvcore")


@dataclass(frozen=True)
class Skipped:
    """The tool gives up on (part of) a layer. It still counts `counted` for it."""

    reason: str
    counted: sympy.Expr = ZERO


Outcome = sympy.Expr | Skipped
Rule = Callable[["LayerRow"], Outcome]


class MissingRule(UsageError):
    """A profile has no rule for a layer type: a tool profile covers the types nnspec exports to PyTorch."""


def missing_rule(profile: str, row: LayerRow) -> MissingRule:
    return MissingRule(f"convention {profile!r} has no rule for layer type {row.type!r}: nnspec cannot export it "
                       f"to PyTorch, so there is no model for {profile} to count", layer=row.name, layer_type=row.type)


def rule_for(profile: str, row: LayerRow, native_gru: bool = True) -> Rule:
    """The rule `profile` counts `row`'s layer type with, or MissingRule naming the layer."""
    rule = CONVENTIONS.rule(profile, row.type, native_gru)
    if rule is None:
        raise missing_rule(profile, row)
    return rule


def combine(parts: list[tuple[Any, Outcome]], *reasons: str) -> Outcome:
    """factor · outcome summed over `parts`; Skipped (every reason, once) if any part or `reasons` says so."""
    counted, why = ZERO, []
    for factor, outcome in parts:
        if isinstance(outcome, Skipped):
            counted += factor * outcome.counted
            why.append(outcome.reason)
        else:
            counted += factor * sympy.sympify(outcome)
    why = list(dict.fromkeys(r for r in [*why, *reasons] if r))
    return Skipped("; ".join(why), counted) if why else counted


# -- torch: torch.utils.flop_counter.FlopCounterMode (2 per multiply-accumulate of mm / conv ops, nothing else) --

def torch_no_formula(row: LayerRow) -> sympy.Expr:
    """No entry in `flop_registry` for the aten ops of this layer (batch_norm, layer_norm, relu, softmax, cos, mul,
    add, max_pool, mean, pad, embedding, ...): 0."""
    return ZERO


def torch_merge_free(row: LayerRow) -> sympy.Expr:
    """Bidirectional's merge: torch.cat or the + * / operators (aten add, mul, div, cat): no formula, 0."""
    return ZERO


# -- thop: module hooks by exact type, one per multiply-accumulate, never the bias --

def thop_linear(linear: Linear) -> sympy.Expr:
    """`count_linear` -> `calculate_linear`: in_features · y.numel() per call (the bias line is commented out)."""
    return linear.calls * linear.in_features * linear.positions * linear.out_features


def thop_not_a_module(row: LayerRow) -> sympy.Expr:
    """Exported as plain calls (torch.relu, F.relu6, torch.sigmoid, torch.softmax, torch.cos, the * + - operators,
    torch.maximum, torch.mean, torch.amax), or nn.Embedding (no rule): 0."""
    return ZERO


def thop_cost_free(row: LayerRow) -> sympy.Expr:
    """nn.Dropout -> `zero_ops`; nn.Flatten and nn.Identity have no rule; reshapes, padding, cropping, permutes,
    concatenation and the inputs are no modules: 0."""
    return ZERO


def thop_merge_free(row: LayerRow) -> sympy.Expr:
    """Bidirectional's merge: torch.cat or the + * / operators, no module: 0."""
    return ZERO


# -- ptflops: module hooks + the functions it patches while it runs --

# Activations whose export calls a function ptflops patches (`patch_functional`).
PTFLOPS_PATCHED = frozenset({"relu6", "elu", "gelu", "gelu_tanh", "silu", "swish", "hard_sigmoid"})


def ptflops_activations(activations: list[Activation]) -> sympy.Expr:
    """`_numel_functional_flops_hook`: input.numel() per call of a patched function (F.relu6 for relu6 and
    hard_sigmoid, F.elu, F.gelu, F.silu for silu and swish); other activations are not patched: 0."""
    return sympy.Add(*(a.calls * a.elements for a in activations if a.name in PTFLOPS_PATCHED))


def ptflops_linear(linear: Linear) -> sympy.Expr:
    """`linear_flops_counter_hook`: (in · out + out if bias) · prod(input.shape[:-1]) per call."""
    return linear.calls * (linear.in_features * linear.out_features + (linear.out_features if linear.bias else ZERO)) \
        * linear.positions


def ptflops_not_patched(row: LayerRow) -> sympy.Expr:
    """torch.softmax (Softmax), torch.cos / torch.sin / ... (Lambda), the * + - operators and torch.maximum /
    torch.minimum (merges), torch.mean / torch.amax (global pooling): no module, not patched; nn.Embedding is not
    in `MODULES_MAPPING`: 0."""
    return ZERO


def ptflops_cost_free(row: LayerRow) -> sympy.Expr:
    """nn.Dropout, nn.Flatten, nn.Identity are not in `MODULES_MAPPING` (zero-ops); F.pad, narrow, permute,
    repeat_interleave, reshapes and the inputs are not patched: 0."""
    return ZERO


def ptflops_merge_free(row: LayerRow) -> sympy.Expr:
    """Bidirectional's merge: torch.cat or the + * / operators, which ptflops does not patch (it patches torch.add /
    torch.mul, not the operators): 0."""
    return ZERO


# -- fvcore: traced aten ops with a handle; unsupported ops count 0 with a warning --

def fvcore_unsupported(ops: list[str] | tuple[str, ...]) -> str:
    """The reason text for ops fvcore has no handle for (aten::relu is ignored on purpose, not unsupported)."""
    names = list(dict.fromkeys(op for op in ops if op != "aten::relu"))
    return f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} unsupported" if names else ""


def fvcore_outcome(counted: sympy.Expr, *reasons: str) -> Outcome:
    reasons = tuple(r for r in reasons if r)
    return Skipped("; ".join(reasons), counted) if reasons else counted


def fvcore_activation_reason(activations: list[Activation], what: str = "activation") -> str:
    text = fvcore_unsupported([op for a in activations for op in ACTIVATION_OPS[a.name]])
    return f"{what}: {text}" if text else ""


def fvcore_cost_free(row: LayerRow) -> sympy.Expr:
    """aten::dropout, reshape, view, flatten, permute, transpose, narrow, cat, constant_pad_nd, unsqueeze, expand are
    in `_IGNORED_OPS`; movedim and repeat_interleave move data only: 0."""
    return ZERO


# Data movement and the identity at inference: no arithmetic in any tool's count.
COST_FREE = dict(torch=torch_no_formula, thop=thop_cost_free, ptflops=ptflops_cost_free, fvcore=fvcore_cost_free)

counted_as("InputLayer", **COST_FREE)
