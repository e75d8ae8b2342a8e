"""What a convention profile is: one tool's way of re-counting a report, layer by layer.

The rules themselves are declared by each layer family next to the layer
(analyzer/layers/<family>.py, `counted_as(type, torch=..., thop=..., ...)`; the
outcome types and the formulas several families share are in
analyzer/layers/tool_rules.py). A profile names the tool and its unit and takes its
rules from those declarations; the generic profiles (nnspec, seed-approx) apply one
rule to every type. Formulas stay symbolic, so `--set L=...` evaluates them.

The core never imports a framework: the rules restate each tool's source
(function names in every rule's docstring) in terms of the spec's shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.layers.registry import CONVENTIONS, INPUT_LAYER, LAYERS
from analyzer.layers.tool_rules import MissingRule, Outcome, Rule, Skipped, missing_rule  # noqa: F401  (re-exported)
from analyzer.symbolic import ZERO

if TYPE_CHECKING:
    from analyzer.report import LayerRow, Report


@dataclass(frozen=True)
class Profile:
    """One tool's counting rules.

    name: the --convention value; tool: the tool and the version the rules were read from; unit: what one count
    is; table: an explicit layer type -> rule table (InputLayer too), or None for the rules the layer families
    declare under `name`; generic: one rule for every layer type instead; approximate: True when the profile is
    a rule of thumb, not a tool to match exactly.
    """

    name: str
    tool: str
    unit: str
    table: Mapping[str, Rule] | None = None
    approximate: bool = False
    # Rules count one copy of a layer, and a row standing for several copies (a block repeated a symbolic
    # number of times, `LayerRow.multiplier`) counts them all; False: the rules read the row's own counts,
    # which already include every copy.
    per_copy: bool = True
    generic: Rule | None = None

    def rules_for(self, native_gru: bool = True) -> dict[str, Rule]:
        """Layer type -> rule. native_gru=False: the rules for to_torch's default export, which writes GRUs that
        nn.GRU cannot compute as loops of nn.Linear (only the GRU and wrapper rules differ)."""
        if self.table is not None:
            return dict(self.table)
        if self.generic is not None:
            return dict.fromkeys([INPUT_LAYER, *sorted(LAYERS)], self.generic)
        return CONVENTIONS.for_profile(self.name, native_gru)

    @property
    def rules(self) -> dict[str, Rule]:
        return self.rules_for()


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


def count_row(profile: Profile, row: LayerRow, rules: Mapping[str, Rule]) -> LayerCount:
    rule = rules.get(row.type)
    if rule is None:
        raise missing_rule(profile.name, row)
    outcome = rule(row)
    copies = getattr(row, "multiplier", 1) if profile.per_copy else 1
    if isinstance(outcome, Skipped):
        return LayerCount(copies * sympy.sympify(outcome.counted), f"skipped by {profile.name}: {outcome.reason}")
    return LayerCount(copies * sympy.sympify(outcome))


def recount(report: Report, profile: Profile, native_gru: bool = True) -> Recount:
    """Every layer of `report` counted by `profile`. native_gru: count the export's GRUs as torch.nn.GRU
    wherever nn.GRU has the same MACs (a straightforward port, `to_torch(native_gru=True)`); False counts
    `to_torch`'s default, which writes a reset_after=False GRU as a loop of nn.Linear."""
    rules = profile.rules_for(native_gru)
    layers = {name: count_row(profile, row, rules) for name, row in report.layers.items()}
    return Recount(profile, layers, native_gru)


def zero(row: LayerRow) -> sympy.Expr:
    """No arithmetic in this tool's count (reshapes, inputs, dropout at inference, ...)."""
    return ZERO
