"""`--sweep L=128,256,512`, `L=64..4096*2` (geometric), `L=100..1000+100` (arithmetic):
the totals at many values of one symbol, the others held at their chosen values; with
`--training`, the training step's totals (forward, backward, optimizer, step FLOPs, memory
bytes), B a symbol like any other. In --phase decode the report is the decode step's (P a symbol
like any other); in --phase generate the MACs and FLOPs are the generation's closed forms in T
and G (analyzer.phases.generation).

Values come from analyzer.fast_eval (exact integers, one walk of each formula for all
points). A value outside the domain (below the symbol's minimum, or breaking a layer's
constraint) gives a row that says why instead of numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy

from analyzer import constraints as constraint_rules
from analyzer.constraints import MAX_VALUE_BITS
from analyzer.errors import UsageError
from analyzer.fast_eval import evaluate_many
from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.phases import Generation
    from analyzer.training import TrainingStep

SWEEP_QUANTITIES = ("params", "trainable_params", "macs", "flops")
TRAINING_QUANTITIES = ("forward_flops", "backward_flops", "optimizer_flops", "flops")
MAX_POINTS = 10_000

_SWEEP = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$")
_RANGE = re.compile(r"^([0-9][0-9_]*)\s*\.\.\s*([0-9][0-9_]*)\s*([*+])\s*([0-9][0-9_]*)$")
_INT = re.compile(r"^[0-9][0-9_]*$")


def parse_sweep(text: str) -> tuple[str, list[int]]:
    """'L=128,256' -> ('L', [128, 256]); 'L=64..4096*2' -> 64, 128, ..., 4096; 'L=100..1000+100'.

    A range includes its end when the steps reach it exactly, and never goes past it."""
    match = _SWEEP.match(text)
    if not match:
        raise UsageError(f"--sweep {text!r}: expected NAME=V1,V2,... or NAME=START..STOP*FACTOR or NAME=START..STOP+STEP")
    name, body = match.group(1), match.group(2)
    if any(len(part) > 1000 for part in re.split(r"[,.*+]", body)):
        raise UsageError(f"--sweep {name}: a value of more than 1000 digits is too large")
    ranged = _RANGE.match(body)
    if ranged:
        start, stop, op, step = int(ranged.group(1)), int(ranged.group(2)), ranged.group(3), int(ranged.group(4))
        if op == "*" and step < 2:
            raise UsageError(f"--sweep {text}: a geometric range needs a factor of at least 2")
        if op == "+" and step < 1:
            raise UsageError(f"--sweep {text}: an arithmetic range needs a step of at least 1")
        if start > stop:
            raise UsageError(f"--sweep {text}: the start {start} is after the stop {stop}")
        if op == "+" and (stop - start) // step + 1 > MAX_POINTS:
            raise UsageError(f"--sweep {text}: more than {MAX_POINTS:,} values")
        values: list[int] = []
        v = start
        while v <= stop:
            values.append(v)
            if op == "*" and v == 0:
                break
            v = v * step if op == "*" else v + step
    else:
        parts = [p.strip() for p in body.split(",")]
        if not all(_INT.match(p) for p in parts):
            raise UsageError(f"--sweep {text!r}: values must be non-negative integers, e.g. --sweep {name}=128,256,512")
        if len(parts) > MAX_POINTS:
            raise UsageError(f"--sweep {name}: more than {MAX_POINTS:,} values")
        values = [int(p) for p in parts]
    if len(values) > MAX_POINTS:
        raise UsageError(f"--sweep {text}: more than {MAX_POINTS:,} values")
    return name, values


@dataclass(frozen=True)
class SweepPoint:
    value: int
    counts: dict[str, int] | None  # the sweep's quantities -> exact value; None when out of the domain
    reason: str | None = None  # why the value is out of the domain

    @property
    def valid(self) -> bool:
        return self.counts is not None


@dataclass(frozen=True)
class Sweep:
    """The totals of `report` at each value of `symbol` (the other symbols as in `fixed`)."""

    report: Report
    symbol: str
    fixed: dict[str, int]
    points: tuple[SweepPoint, ...]
    quantities: tuple[str, ...] = SWEEP_QUANTITIES  # the keys of each point's counts, in column order
    layer_flops: dict[str, sympy.Expr] | None = None  # per layer, what --plot stacks (None: the report's FLOPs)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"training": {optimizer, dtype, ...}}, in the JSON

    def columns(self, exprs: dict[str, sympy.Expr]) -> dict[str, list[int | None]]:
        """Other formulas (e.g. each layer's FLOPs) at the sweep's points, None where out of the domain."""
        valid = [p.value for p in self.points if p.valid]
        cols = _columns(self.report, self.symbol, valid)
        out: dict[str, list[int | None]] = {}
        for key, expr in exprs.items():
            values = iter(evaluate_many(expr, cols) if valid else [])
            out[key] = [next(values) if p.valid else None for p in self.points]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.report.name,
            "symbol": self.symbol,
            "fixed": self.fixed,
            "bias": self.report.bias,
            **self.meta,
            "points": [{self.symbol: p.value, "valid": p.valid, **(p.counts or {}),
                        **({"reason": p.reason} if p.reason else {})} for p in self.points],
        }


def _columns(report: Report, name: str, values: list[int]) -> dict[sympy.Symbol, list[int]]:
    return {s.symbol: values if s.name == name else [report.values[s.symbol]] * len(values) for s in report.symbols}


def _out_of_domain(report: Report, name: str, value: int) -> str | None:
    symbol = report.symbol(name)
    if value < symbol.minimum:
        return f"below the minimum {symbol.minimum} of {name}"
    if value.bit_length() > MAX_VALUE_BITS:
        return f"larger than 2**{MAX_VALUE_BITS} (nnspec's cap on numbers)"
    values = {**report.values, symbol.symbol: value}
    for constraint in report.constraints:
        if not constraint.holds(values):
            return constraint_rules.failure(constraint, report.symbols, values)
    return None


def sweep(report: Report, name: str, values: list[int], quantities: dict[str, sympy.Expr] | None = None,
          **extra: Any) -> Sweep:
    """The totals (or `quantities`, name -> formula) at each value of symbol `name`; the other symbols keep the
    report's values. `extra`: Sweep's layer_flops and meta."""
    report.symbol(name)  # unknown symbol: UsageError naming the declared ones
    reasons = {v: _out_of_domain(report, name, v) for v in dict.fromkeys(values)}
    valid = [v for v in values if reasons[v] is None]
    exprs = quantities if quantities is not None else {q: report.total.quantity(q) for q in SWEEP_QUANTITIES}
    cols = _columns(report, name, valid)
    computed = {q: evaluate_many(expr, cols) if valid else [] for q, expr in exprs.items()}
    points: list[SweepPoint] = []
    i = 0
    for v in values:
        if reasons[v] is not None:
            points.append(SweepPoint(v, None, reasons[v]))
            continue
        counts = {q: computed[q][i] for q in exprs}
        i += 1
        if any(c.bit_length() > MAX_VALUE_BITS for c in counts.values()):
            points.append(SweepPoint(v, None, f"a count is larger than 2**{MAX_VALUE_BITS} (nnspec's cap on numbers)"))
        else:
            points.append(SweepPoint(v, counts))
    fixed = {k: v for k, v in report.symbol_values().items() if k != name}
    if report.phase != "prefill":  # a decode step's report: said in the JSON and on the plot
        extra["meta"] = {"phase": report.phase, **extra.get("meta", {})}
    return Sweep(report, name, fixed, tuple(points), tuple(exprs), **extra)


def training_sweep(step: TrainingStep, name: str, values: list[int], dtype: str = "float32") -> Sweep:
    """The training step's totals at each value of `name` (B, or any size symbol): forward, backward, optimizer and
    step FLOPs, per epoch when the step has a dataset size, and the bytes of each memory line. The peak only in
    B: it adds the gradients in flight at the layer where they are largest, chosen at the step's values, and
    every layer's scale with B alike (it may be another layer at another L)."""
    from analyzer.training import BATCH, epoch
    from analyzer.training_memory import step_memory

    exprs = {q: step.total(q.removesuffix("_flops")) for q in TRAINING_QUANTITIES}
    if step.dataset is not None:
        e = epoch(step)
        exprs.update(epoch_steps=e.steps, epoch_flops=e.parts["flops"])
    exprs.update({f"{line.name}_bytes": line.bytes for line in step_memory(step, dtype)
                  if line.name != "peak" or name == BATCH})
    meta = {"training": {"optimizer": step.optimizer, "convention": step.convention, "frozen": list(step.frozen),
                         "input_grad": step.input_grad, "dtype": dtype, "dataset": step.dataset}}
    return sweep(step.report, name, values, exprs, layer_flops={n: layer.flops for n, layer in step.layers.items()},
                 meta=meta)


GENERATION_BANDS = ("prefill", "decode steps")


def generation_sweep(result: Generation, report: Report, name: str, values: list[int]) -> Sweep:
    """--phase generate: the params and the generation's MACs and FLOPs (the prefill of the prompt T, then G - 1
    decode steps, summed in closed form: analyzer.phases.generation) at each value of `name` (G, T or any other
    symbol); `report` is the generation's prefill report at the chosen values. --plot stacks two bands, the
    prefill's FLOPs and the decode steps' (the closed form minus the prefill)."""
    prefill = report.total.flops
    exprs = {"params": report.total.params, "trainable_params": report.total.trainable_params,
             "macs": result.macs, "flops": result.flops}
    bands = dict(zip(GENERATION_BANDS, (prefill, result.flops - prefill), strict=True))
    return sweep(report, name, values, exprs, layer_flops=bands, meta={"phase": "generate"})
