"""The result of an analysis: one row per layer, totals, constraints, and the
symbol values at which numbers are shown. Formulas are sympy expressions;
`value()` evaluates one exactly (Python ints, never floats).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

import sympy

from analyzer import constraints as constraint_rules
from analyzer.constraints import MAX_VALUE_BITS, Constraint, Note
from analyzer.errors import DomainError, Location, UsageError, did_you_mean
from analyzer.layers.base import LayerResult, LayerSpec, Shape
from analyzer.symbolic import ONE, ZERO, IdentityMemo, SizeSymbol, evaluate_int, exact_value, product, render

FLOP_KINDS = ("dot", "bias", "activation", "other")


def _sum(terms: Iterable[sympy.Expr]) -> sympy.Expr:
    """sympy.Add(*terms), with each object counted first: layers of one shape share their formula
    objects (the 10,000-layer conv stack has ~340 distinct ones per quantity), and Add compares
    terms by equality, slowly when their hashes collide (2**k and 2**(k + 61) hash alike)."""
    counted: dict[int, list[Any]] = {}
    for term in terms:
        entry = counted.get(id(term))
        if entry is None:
            counted[id(term)] = [term, 1]
        else:
            entry[1] += 1
    return sympy.Add(*(term if n == 1 else n * term for term, n in counted.values()))


def _numerator(value: int | Fraction) -> int:
    return value if isinstance(value, int) else value.numerator


def _denominator(value: int | Fraction) -> int:
    return 1 if isinstance(value, int) else value.denominator
QUANTITIES = ("params", "trainable_params", "non_trainable_params", "macs", "flops")


@dataclass(frozen=True)
class Counts:
    """A layer's (or the total's) counts as sympy expressions in the spec's symbols.

    `params` = trainable + non-trainable; `flops` = dot + bias + activation + other
    (docs/conventions.md); `macs` are the multiply-accumulates of dot products.
    """

    trainable_params: sympy.Expr = ZERO
    non_trainable_params: sympy.Expr = ZERO
    macs: sympy.Expr = ZERO
    dot: sympy.Expr = ZERO
    bias: sympy.Expr = ZERO
    activation: sympy.Expr = ZERO
    other: sympy.Expr = ZERO

    @classmethod
    def from_result(cls, result: LayerResult, trainable: bool = True) -> Counts:
        params = {"trainable_params": result.trainable_params, "non_trainable_params": result.non_trainable_params}
        if not trainable:
            params = {"trainable_params": ZERO, "non_trainable_params": result.trainable_params + result.non_trainable_params}
        return cls(**params, macs=result.macs, dot=result.dot, bias=result.bias, activation=result.activation, other=result.other)

    # params and flops are built once per Counts: one object, which the formats then render and
    # evaluate by identity (symbolic.render, Report.value) instead of a new sum each time (issue 9).
    @cached_property
    def params(self) -> sympy.Expr:
        """Trainable plus non-trainable parameters, as Keras' model.summary() counts them."""
        return self.trainable_params + self.non_trainable_params

    @cached_property
    def flops(self) -> sympy.Expr:
        """All floating-point operations: dot + bias + activation + other."""
        return self.dot + self.bias + self.activation + self.other

    @property
    def flops_by_op(self) -> dict[str, sympy.Expr]:
        """The FLOPs split by kind: {"dot", "bias", "activation", "other"} -> expression."""
        return {kind: getattr(self, kind) for kind in FLOP_KINDS}

    def scaled(self, factor: sympy.Expr) -> Counts:
        """Every count multiplied by `factor` (e.g. a block repeated N times)."""
        return Counts(*(getattr(self, f.name) * factor for f in fields(self)))

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def quantity(self, name: str) -> sympy.Expr:
        """A count by name: one of QUANTITIES ("params", "macs", "flops", ...) or FLOP_KINDS."""
        return getattr(self, name)


@dataclass(frozen=True)
class LayerRow:
    """One layer of a Report: its name, type, inputs, output shape (expressions) and Counts."""

    name: str
    type: str
    inputs: tuple[str, ...]
    output_shape: Shape
    counts: Counts
    location: Location | None = None
    input_shapes: tuple[Shape, ...] = ()
    spec: LayerSpec | None = None  # None for model inputs (InputLayer rows)
    groups: tuple[tuple[str, str], ...] = ()  # enclosing (block instance, block name), outermost first
    multiplier: sympy.Expr = ONE  # copies the row stands for (inside a block repeated a symbolic number of times)
    more_outputs: tuple[Shape, ...] = ()  # outputs 1, 2, ... of a layer with several (return_state); read as `NAME:i`
    cached: sympy.Expr = ZERO  # the past tokens a causal attention reads from its key/value cache (--phase decode: P)
    inactive_params: sympy.Expr = ZERO  # all copies' params one token does not use (unchosen experts)

    @property
    def output_shapes(self) -> tuple[Shape, ...]:
        """Every output's shape: the one of `output_shape`, then those of a layer with several (Keras' order)."""
        return (self.output_shape, *self.more_outputs)

    @cached_property
    def rule_key(self) -> tuple[Any, ...]:
        """What a layer family's rules read of this row, all but its name and place: the type, the spec's fields, which
        inputs are the same tensor, and the shapes and counts by object. Rows equal here get equal results from the
        training and saved-activation rules, which a 1,000-layer stack would otherwise run once per row (issue 16).
        By identity (a sympy tree compared by equality costs more than the rule); the rows keep their objects alive."""
        spec = () if self.spec is None else tuple((k, _hashable(v)) for k, v in vars(self.spec).items()
                                                   if k not in ("name", "inputs", "description"))
        c = self.counts
        return (self.type, spec, tuple(self.inputs.index(ref) for ref in self.inputs),
                tuple(tuple(map(id, shape)) for shape in self.input_shapes),
                tuple(tuple(map(id, shape)) for shape in self.output_shapes),
                id(self.multiplier), id(self.cached), id(self.inactive_params),
                tuple(map(id, (c.trainable_params, c.non_trainable_params, c.macs, c.dot, c.bias, c.activation, c.other))))


def _hashable(value: Any) -> Any:
    """A spec field as a dict key: itself where it hashes (numbers, strings, tuples, sympy expressions, frozen
    specs), else its repr (lists, dicts); repr of a sympy expression would print it."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


# Jupyter's renderers ("html", "latex"), a table filled by analyzer/__init__.py: the formats import report.py, never the reverse.
NOTEBOOK_RENDERERS: dict[str, Callable[[Report], str]] = {}
# Analyses built on a Report that Report's methods reach ("training": analyzer.training.training_step), filled by
# analyzer/api.py: those modules import report.py, never the reverse.
ANALYSES: dict[str, Callable[..., Any]] = {}


@dataclass(frozen=True)
class Report:
    """The analysis of a spec: `layers` (name -> LayerRow, graph order), `total` (Counts),
    the symbols and the values numbers are shown at (`at()` changes them, `value()` evaluates).

    >>> report = analyze("specs/pet_cgdnn.yaml")
    >>> report.at(L=256).value(report.total.params)
    71743

    In Jupyter a Report shows as a table (`_repr_html_`, `_repr_latex_`).
    """

    name: str
    file: str
    symbols: tuple[SizeSymbol, ...]
    layers: Mapping[str, LayerRow]
    constraints: tuple[Constraint, ...]
    bias: str
    values: Mapping[sympy.Symbol, int]
    notes: tuple[Note, ...] = ()  # e.g. a strided 'valid' convolution that leaves input positions unread
    symbol_locations: Mapping[str, Location | None] = field(default_factory=dict)  # "" is the 'symbols:' block
    outputs: tuple[str, ...] = ()  # the model's outputs, canonical references (`enc`, `enc:1`); () when not known
    phase: str = "prefill"  # analyzer/phases.py: prefill (T tokens, no cache) or decode (T new tokens, P cached)

    @cached_property
    def total(self) -> Counts:
        """Sums of the rows, built in one flattening per quantity (pairwise sums are quadratic)."""
        rows = [row.counts for row in self.layers.values()]
        return Counts(*(_sum(getattr(c, f.name) for c in rows) for f in fields(Counts)))

    @cached_property
    def inactive_params(self) -> sympy.Expr:
        """Params one token does not use (a mixture of experts' unchosen experts); 0 in a dense model."""
        return _sum(row.inactive_params for row in self.layers.values())

    @property
    def active_params(self) -> sympy.Expr:
        """The params one token uses: all, less the unchosen experts' (Mixtral's 'active parameters')."""
        return self.total.params - self.inactive_params

    def value(self, expr: sympy.Expr | int) -> int:
        """The exact integer value of a formula at this report's symbol values."""
        if isinstance(expr, int):
            return int(expr)
        hit = self._values_by_id.get(expr)
        return hit if hit is not None else self._values_by_id.put((expr,), evaluate_int(expr, self.values))

    @cached_property
    def _values_by_id(self) -> IdentityMemo:
        """Values already computed, by expression object: the formats ask for the same few objects
        many times (issue 9). `at()` and `replace()` make a new Report, with new values and an empty memo."""
        return IdentityMemo(size=10**9)

    def symbol(self, name: str) -> SizeSymbol:
        """The declared symbol `name` (UsageError, with a suggestion, if there is none)."""
        for s in self.symbols:
            if s.name == name:
                return s
        declared = ", ".join(s.name for s in self.symbols) or "none"
        raise UsageError(
            f"--set {name}: unknown symbol '{name}' (declared in {self.file}: {declared})",
            hint=did_you_mean(name, [s.name for s in self.symbols]),
            location=self.symbol_locations.get(""),
        )

    def at(self, **values: int) -> Report:
        """The same report with numbers at other symbol values; checks the domain."""
        chosen = dict(self.values)
        for name, value in values.items():
            s = self.symbol(name)
            where = self.symbol_locations.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"--set {name}: must be an integer, got {value!r}", location=where)
            if value.bit_length() > MAX_VALUE_BITS:
                raise UsageError(f"--set {name}: larger than 2**{MAX_VALUE_BITS} (nnspec's cap on numbers)", location=where)
            if value < s.minimum:
                raise UsageError(f"--set {name}={value} is below the minimum {s.minimum} declared for {name}",
                                 location=where, hint="symbols are positive integers; 'min' in the declaration raises the bound")
            chosen[s.symbol] = value
        constraint_rules.check(self.constraints, self.symbols, chosen)
        report = self.with_values(values=chosen)
        report.check_magnitudes()
        return report

    def with_values(self, **changes: Any) -> Report:
        """dataclasses.replace of the symbols' values or declarations (not the rows): the totals' formulas, which do
        not depend on them, come along rather than being summed again over every row."""
        report = replace(self, **changes)
        for name in ("total", "inactive_params"):
            if name in self.__dict__:
                report.__dict__[name] = self.__dict__[name]
        return report

    def check_magnitudes(self, formulas: bool = False) -> None:
        """Refuse numbers over 2**MAX_VALUE_BITS (Python cannot print them, no network has them).

        Every count is >= 0 at valid values, so checking the totals bounds each row's values;
        `formulas` also checks each formula's coefficients (they do not change with the values).
        """
        at = ", ".join(f"{k}={v}" if v.bit_length() < 100 else f"{k}=<{len(str(v))} digits>"
                       for k, v in self.symbol_values().items())
        # Layers share their shape and formula objects: judge each object once (issue 9).
        judged = {"value": IdentityMemo(size=10**9), "coefficients": IdentityMemo(size=10**9)}

        def too_large(kind: str, expr: Any) -> bool:
            verdict = judged[kind].get(expr)
            if verdict is None:
                if kind == "value":
                    value = exact_value(expr, self.values)
                    verdict = max(abs(_numerator(value)), _denominator(value)).bit_length() > MAX_VALUE_BITS
                else:
                    verdict = any(max(abs(a.p), a.q).bit_length() > MAX_VALUE_BITS
                                  for a in sympy.sympify(expr).atoms(sympy.Rational))
                judged[kind].put((expr,), verdict)
            return verdict

        for row in self.layers.values():
            checked = [(f"output shape axis {i}", d) for shape in row.output_shapes for i, d in enumerate(shape, start=1)]
            for what, expr in checked:
                if too_large("value", expr):
                    self._check_magnitude(expr, what, at, row)
            if formulas:
                for f in fields(row.counts):
                    expr = getattr(row.counts, f.name)
                    if too_large("coefficients", expr):
                        raise DomainError(f"the {f.name.replace('_', ' ')} formula has a coefficient larger than "
                                          f"2**{MAX_VALUE_BITS} (nnspec's cap on numbers)",
                                          location=row.location, layer=row.name, layer_type=row.type)
        total = self.total
        for q in (*QUANTITIES, *FLOP_KINDS):
            value = exact_value(total.quantity(q), self.values)
            if abs(_numerator(value)).bit_length() > MAX_VALUE_BITS:  # name the layer that counts most
                rows = [r for r in self.layers.values() if r.counts.quantity(q) != 0] or list(self.layers.values())
                largest = max(rows, key=lambda r: abs(exact_value(r.counts.quantity(q), self.values)))
                self._check_magnitude(largest.counts.quantity(q), q.replace("_", " "), at, largest)
                self._check_magnitude(total.quantity(q), f"the total {q.replace('_', ' ')} (largest here)", at, largest)

    def _check_magnitude(self, expr: sympy.Expr, what: str, at: str, row: LayerRow | None) -> None:
        value = exact_value(expr, self.values)
        if max(abs(_numerator(value)), _denominator(value)).bit_length() > MAX_VALUE_BITS:
            where = f" at {at}" if at and sympy.sympify(expr).free_symbols else ""
            raise DomainError(f"{what} is larger than 2**{MAX_VALUE_BITS}{where} (nnspec's cap on numbers)",
                              location=row.location if row else None, layer=row.name if row else None,
                              layer_type=row.type if row else None)

    def describe_notes(self) -> list[str]:
        """The notes that apply at this report's symbol values (e.g. input positions a stride leaves unread)."""
        return [text for note in self.notes if (text := note.at(self.values)) is not None]

    def grouped(self, depth: int) -> Report:
        """One row per block instance at nesting `depth` (1 = top-level blocks), summing its layers.

        Layers outside blocks keep their own row. Like torchinfo's depth option.
        """
        if depth < 1:
            return self
        rows: dict[str, LayerRow] = {}
        for row in self.layers.values():
            if len(row.groups) < depth:
                rows[row.name] = row
                continue
            name, block = row.groups[depth - 1]
            first = rows.get(name)
            if first is None:
                rows[name] = replace(row, name=name, type=block, spec=None, groups=row.groups[:depth - 1])
            else:  # the last layer of a block gives its output shape
                rows[name] = replace(first, output_shape=row.output_shape, more_outputs=row.more_outputs,
                                     counts=first.counts + row.counts)
        return replace(self, layers=rows)

    def domain(self) -> list[str]:
        """Where the formulas hold, shortest form: "S >= 32  [layer 'block5.pool' ...]" and the like."""
        return constraint_rules.domain(self.constraints, self.symbols, self.values)

    def describe_constraints(self) -> list[str]:
        """Every constraint on the symbols, in words."""
        return [constraint_rules.describe(c, self.symbols, self.values) for c in self.constraints]

    def symbol_values(self) -> dict[str, int]:
        """The values numbers are shown at: {"L": 128, "classes": 11}."""
        return {s.name: self.values[s.symbol] for s in self.symbols}

    def as_dict(self) -> dict[str, Any]:
        """The JSON contract (docs/spec-format.md#json-output)."""
        return {
            "name": self.name,
            "symbols": self.symbol_values(),
            "bias": self.bias,
            "constraints": self.describe_constraints(),
            "domain": self.domain(),
            "notes": self.describe_notes(),
            "layers": [
                {
                    "name": row.name,
                    "type": row.type,
                    "inputs": list(row.inputs),
                    "output_shape": [render(d) for d in row.output_shape],
                    **({"output_shapes": [[render(d) for d in shape] for shape in row.output_shapes]}
                       if row.more_outputs else {}),
                    "activations": self.formula(sympy.Add(*(product(shape) for shape in row.output_shapes))),
                    **self.quantities(row.counts),
                }
                for row in self.layers.values()
            ],
            "total": {**self.quantities(self.total),
                      **({"active_params": self.formula(self.active_params)} if self.inactive_params != 0 else {})},
        }

    def quantities(self, counts: Counts) -> dict[str, Any]:
        """Every count of `counts` as {"expr", "value"} (the JSON form)."""
        out: dict[str, Any] = {q: self.formula(counts.quantity(q)) for q in QUANTITIES}
        out["flops_by_op"] = {k: self.formula(v) for k, v in counts.flops_by_op.items()}
        return out

    def formula(self, expr: sympy.Expr) -> dict[str, Any]:
        """{"expr": the expanded formula as text, "value": its exact value here}."""
        return {"expr": render(expr), "value": self.value(expr)}

    def training(self, *, optimizer: str = "adam", frozen: str | Iterable[str] = (), input_grad: bool = False,
                 batch: int | None = None, convention: str = "nnspec", dataset: int | None = None) -> Any:
        """One training step of B samples: an analyzer.training.TrainingStep, per layer (`.layers[name].forward`,
        `.grad_input`, `.grad_weight`, `.grad_other`, `.optimizer`, `.flops`) and in total (`.total("flops")`), as
        formulas in B; `.report` has B among its symbols (`batch` sets it), `.as_dict()` is the JSON form.

        optimizer: sgd, momentum, adam, adamw. frozen: layer or block names that do not train. input_grad: also
        dL/d(model input). convention: "nnspec", or "torch" (FlopCounterMode's count). dataset: the samples of an
        epoch, the symbol N, for analyzer.training.epoch(step). docs/conventions.md#training has every rule.

        >>> step = analyze("specs/scnn.yaml").training(optimizer="sgd", batch=256)
        >>> step.report.value(step.total("flops"))
        2638344779
        """
        names = (frozen,) if isinstance(frozen, str) else tuple(frozen)
        return ANALYSES["training"](self, optimizer=optimizer, frozen=names, input_grad=input_grad, batch=batch,
                                    convention=convention, dataset=dataset)

    def _repr_html_(self) -> str:
        """Jupyter: an HTML table of the layers and the total (value, and formula below it)."""
        return NOTEBOOK_RENDERERS["html"](self)

    def _repr_latex_(self) -> str:
        """Jupyter / nbconvert: the table as a LaTeX array in display math."""
        return NOTEBOOK_RENDERERS["latex"](self)
