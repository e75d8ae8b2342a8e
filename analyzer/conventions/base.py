"""What a convention profile is: a table, keyed by Keras layer type, of small rule
functions that re-count one layer the way another tool does.

A rule takes the analyzed `LayerRow` (its validated spec, input shapes, output
shape and nnspec's own counts) and returns a sympy expression over the spec's
symbols, or `Skipped` when the tool gives up on (part of) the layer: the tool
then counts `Skipped.counted` (usually 0) and the report says why, instead of
showing a silent 0. Formulas stay symbolic, so `--set L=...` evaluates them.

The core never imports a framework: the rules restate each tool's source
(function names in every rule's docstring) in terms of the spec's shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sympy

from analyzer.conventions import torch_export as export
from analyzer.errors import UsageError
from analyzer.report import LayerRow, Report
from analyzer.symbolic import ZERO, product


@dataclass(frozen=True)
class Skipped:
    """The tool gives up on (part of) a layer. It still counts `counted` for it."""

    reason: str
    counted: sympy.Expr = ZERO


Outcome = sympy.Expr | Skipped
Rule = Callable[[LayerRow], Outcome]


@dataclass(frozen=True)
class Profile:
    """One tool's counting rules.

    name: the --convention value; tool: the tool and the version the rules were read
    from; unit: what one count is; rules: Keras layer type -> rule (InputLayer too);
    approximate: True when the profile is a rule of thumb, not a tool to match exactly.
    """

    name: str
    tool: str
    unit: str
    rules: Mapping[str, Rule]
    approximate: bool = False
    # Rules that replace `rules` when the export writes GRUs that nn.GRU cannot compute as loops
    # (to_torch(native_gru=False), its default); `rules` count the straightforward port (native_gru=True).
    loop_gru_rules: Mapping[str, Rule] = field(default_factory=dict)
    # Rules count one copy of a layer, and a row standing for several copies (a block repeated a symbolic
    # number of times, `LayerRow.multiplier`) counts them all; False: the rules read the row's own counts,
    # which already include every copy.
    per_copy: bool = True

    def rules_for(self, native_gru: bool = True) -> Mapping[str, Rule]:
        return self.rules if native_gru else {**self.rules, **self.loop_gru_rules}


@dataclass(frozen=True)
class LayerCount:
    expr: sympy.Expr
    skipped: str | None = None  # why the tool gives up on (part of) this layer


@dataclass(frozen=True)
class Recount:
    """A report's layers counted with one profile's rules."""

    profile: Profile
    layers: Mapping[str, LayerCount]
    native_gru: bool = True

    @property
    def total(self) -> sympy.Expr:
        return sympy.Add(*(c.expr for c in self.layers.values()))

    @property
    def skipped(self) -> dict[str, str]:
        return {name: c.skipped for name, c in self.layers.items() if c.skipped}

    def grouped(self, report: Report, depth: int) -> Recount:
        """One count per block instance at nesting `depth`, as `Report.grouped` makes rows (`report`: ungrouped)."""
        if depth < 1:
            return self
        layers: dict[str, LayerCount] = {}
        for name, row in report.layers.items():
            count = self.layers[name]
            key = name if len(row.groups) < depth else row.groups[depth - 1][0]
            first = layers.get(key)
            if first is None:
                layers[key] = count
            else:
                reasons = list(dict.fromkeys(r for r in (first.skipped, count.skipped) for r in (r or "").split(" | ") if r))
                layers[key] = LayerCount(first.expr + count.expr, " | ".join(reasons) or None)
        return replace(self, layers=layers)

    def as_dict(self, report: Report) -> dict[str, Any]:
        """The `convention` section of the JSON output (docs/spec-format.md#json-output)."""
        layers: dict[str, Any] = {}
        for name, count in self.layers.items():
            entry: dict[str, Any] = {}
            if not (count.skipped and count.expr == 0):
                entry = report.formula(count.expr)
            if count.skipped:
                entry["skipped"] = count.skipped
            layers[name] = entry
        return {
            "name": self.profile.name,
            "tool": self.profile.tool,
            "unit": self.profile.unit,
            "approximate": self.profile.approximate,
            "native_gru": self.native_gru,
            "total": report.formula(self.total),
            "layers": layers,
        }


class MissingRule(UsageError):
    """A profile has no rule for a layer type: a tool profile covers the types nnspec exports to PyTorch."""


def count_row(profile: Profile, row: LayerRow, native_gru: bool = True) -> LayerCount:
    rule = profile.rules_for(native_gru).get(row.type)
    if rule is None:
        raise MissingRule(f"convention {profile.name!r} has no rule for layer type {row.type!r}: nnspec cannot "
                          f"export it to PyTorch, so there is no model for {profile.name} to count",
                          layer=row.name, layer_type=row.type)
    outcome = rule(row)
    copies = getattr(row, "multiplier", 1) if profile.per_copy else 1
    if isinstance(outcome, Skipped):
        return LayerCount(copies * sympy.sympify(outcome.counted), f"skipped by {profile.name}: {outcome.reason}")
    return LayerCount(copies * sympy.sympify(outcome))


def recount(report: Report, profile: Profile, native_gru: bool = True) -> Recount:
    """Every layer of `report` counted by `profile`. native_gru: count the export's GRUs as torch.nn.GRU
    wherever nn.GRU has the same MACs (a straightforward port, `to_torch(native_gru=True)`); False counts
    `to_torch`'s default, which writes a reset_after=False GRU as a loop of nn.Linear."""
    layers = {name: count_row(profile, row, native_gru) for name, row in report.layers.items()}
    return Recount(profile, layers, native_gru)


# -- what the rules read from a row (shapes exclude the batch axis, channels-last) --

def out_numel(row: LayerRow) -> sympy.Expr:
    """Elements of the output (a framework's y.numel() at batch 1)."""
    return product(row.output_shape)


def in_numel(row: LayerRow, index: int = 0) -> sympy.Expr:
    return product(row.input_shapes[index])


def positions(row: LayerRow) -> sympy.Expr:
    """Output positions: the product of every output axis but the channels."""
    return product(row.output_shape[:-1])


def zero(row: LayerRow) -> sympy.Expr:
    """No arithmetic in this tool's count (reshapes, inputs, dropout at inference, ...)."""
    return ZERO


def table(rules: Mapping[str, Rule], *, same: Mapping[Rule, tuple[str, ...]] | None = None) -> dict[str, Rule]:
    """A rule table: `rules`, plus one rule shared by several types (`same={rule: (types...)}`)."""
    out = dict(rules)
    for rule, types in (same or {}).items():
        for type_name in types:
            if type_name in out:
                raise ValueError(f"layer type {type_name!r} given two rules")
            out[type_name] = rule
    return out


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


def wrapper_rules(rules: Mapping[str, Rule], merge: Rule) -> dict[str, Rule]:
    """The Bidirectional and TimeDistributed rules of a tool profile: the wrapped layer counted by `rules` (the
    profile's own table, looked up when a layer is counted, so a wrapper inside it works too), as the export calls it
    (analyzer/conventions/torch_export.py); `merge` counts Bidirectional's merge (outside both modules)."""

    def rule_of(row: LayerRow) -> Outcome:
        rule = rules.get(row.type)
        if rule is None:
            raise MissingRule(f"no rule for the wrapped layer type {row.type!r}", layer=row.name, layer_type=row.type)
        return rule(row)

    def bidirectional(row: LayerRow) -> Outcome:
        """Bidirectional -> torch_modules.Bidirectional: the wrapped layer's rule for its forward module and for its
        backward one (go_backwards flipped; the flips move data only), plus the merge_mode's rule (concat: torch.cat;
        sum, mul, ave: the + * / operators)."""
        forward, backward = export.bidirectional_rows(row)
        return combine([(1, rule_of(forward)), (1, rule_of(backward)), (1, merge(row))])

    def time_distributed(row: LayerRow) -> Outcome:
        """TimeDistributed -> torch_modules.TimeDistributed: the wrapped module called once on (batch·T, ...), which
        every module hook and op formula counts T times over (they scale with the batch): T · the wrapped layer's rule."""
        steps, inner = export.time_distributed_row(row)
        return combine([(steps, rule_of(inner))])

    return {"Bidirectional": bidirectional, "TimeDistributed": time_distributed}


# Layer families, by Keras type name.
CONV_TRANSPOSES = ("Conv1DTranspose", "Conv2DTranspose")
CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D")
RECURRENT = ("GRU", "LSTM", "SimpleRNN")
MERGES = ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average")
POOLS = ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
GLOBAL_POOLS = ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D")
# No arithmetic in the export: data movement, and the identity at inference.
COST_FREE = ("InputLayer", "Reshape", "Flatten", "Concatenate", "Dropout", "ZeroPadding1D", "ZeroPadding2D",
             "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Permute", "RepeatVector",
             "GaussianNoise", "GaussianDropout")
