"""`analyze compare SPEC... --training [--set B=256] [--set N=50000] [--optimizer adam]`: the specs' training
steps side by side, one row each: forward, backward, optimizer and step FLOPs (the step's multiple of its
forward), per epoch of N samples when N is set, and the step's peak memory (analyzer/training.py).

The symbols follow `analyze compare`: a `--set` symbol a spec does not declare is ignored for it (noted); B and
N are every spec's batch and dataset size (a spec's own B is its batch; a spec with an N of its own takes the
dataset size as N_data). A spec whose values are out of its domain, or that has a layer with no training rule
yet, keeps its row with the reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy

from analyzer.errors import NNSpecError, UsageError, did_you_mean
from analyzer.formats.latex import _escape as _tex
from analyzer.graph import analyze_spec
from analyzer.spec.loader import Spec, load_spec
from analyzer.symbolic import render
from analyzer.training import BATCH, DATASET_NAMES, TrainingStep, epoch, training_step, training_values
from analyzer.training_memory import step_memory

# (key, title): a key of TrainingStep.total, or "epoch_steps" / "epoch_flops" / "peak_bytes"
STEP_COLUMNS = (("forward", "Forward"), ("backward", "Backward"), ("optimizer", "Optimizer"), ("flops", "Step FLOPs"))
EPOCH_COLUMNS = (("epoch_steps", "Epoch steps"), ("epoch_flops", "Epoch FLOPs"))


@dataclass(frozen=True)
class TrainingRow:
    """One spec: its training step at the chosen values, or why there is none."""

    file: str
    name: str
    values: dict[str, int]  # the symbol values, B (and N) included
    ignored: tuple[str, ...]
    step: TrainingStep | None
    invalid: str | None = None
    dtype: str = "float32"

    @property
    def valid(self) -> bool:
        return self.step is not None

    def at_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())

    def columns(self) -> list[tuple[str, str]]:
        epoch_given = self.step is not None and self.step.dataset is not None
        return [*STEP_COLUMNS, *(EPOCH_COLUMNS if epoch_given else ()), ("peak_bytes", f"Peak bytes ({self.dtype})")]

    def expr(self, key: str) -> sympy.Expr:
        step = self.step
        assert step is not None
        if key.startswith("epoch_"):
            e = epoch(step)
            return e.steps if key == "epoch_steps" else e.parts["flops"]
        if key == "peak_bytes":
            return next(line.bytes for line in step_memory(step, self.dtype) if line.name == "peak")
        return step.total(key)

    def value(self, key: str) -> int:
        assert self.step is not None
        return self.step.report.value(self.expr(key))

    def ratio(self) -> str:
        """The step's FLOPs as a multiple of its forward ('2.70x'): the 3x of the rules of thumb, counted."""
        forward = self.value("forward")
        return "-" if forward == 0 else f"{float(Fraction(self.value('flops'), forward)):.2f}x"


def compare_training(specs: Sequence[str], values: dict[str, int] | None = None, *, bias: str = "spec",
                     optimizer: str = "adam", input_grad: bool = False, convention: str = "nnspec",
                     dtype: str = "float32",
                     load: Callable[[str, dict[str, int]], Spec] | None = None) -> list[TrainingRow]:
    """Each spec's training step at `values` (each spec takes the symbols it declares, and B and N). `load` reads
    a path as a spec (analyzer.compare.load_input: model files too); the default reads spec files."""
    values = dict(values or {})
    reports = [analyze_spec(load(str(path), values) if load else load_spec(path), bias=bias) for path in specs]
    declared = {s.name for r in reports for s in r.symbols} | {BATCH, *DATASET_NAMES}
    for name in values:
        if name not in declared:
            raise UsageError(f"--set {name}: no spec declares the symbol '{name}' and it is not B or N "
                             f"(declared: {', '.join(sorted(declared)) or 'none'})", hint=did_you_mean(name, declared))
    rows = []
    for path, report in zip(specs, reports, strict=True):
        own_values = dict(values)
        batch, dataset = training_values(report, own_values)
        own = {s.name for s in report.symbols}
        chosen = {k: v for k, v in own_values.items() if k in own}
        ignored = tuple(k for k in own_values if k not in own)
        try:
            step = training_step(report.at(**chosen), optimizer=optimizer, input_grad=input_grad, batch=batch,
                                 convention=convention, dataset=dataset)
            at = step.report.symbol_values()
            rows.append(TrainingRow(str(path), report.name, at, ignored, step, None, dtype))
        except NNSpecError as error:
            reason = (f"layer '{error.layer}' ({error.layer_type}): " if error.layer else "") + error.message
            at = {**report.symbol_values(), **chosen}
            rows.append(TrainingRow(str(path), report.name, at, ignored, None, reason, dtype))
    return rows


def _heading(optimizer: str, convention: str, rows: list[TrainingRow]) -> str:
    counted = ", as torch's FlopCounterMode counts it" if convention == "torch" else ""
    return f"Training steps of {len(rows)} specs (optimizer {optimizer}{counted})"


def _notes(rows: list[TrainingRow]) -> list[str]:
    notes = [f"{r.name}: --set {', '.join(r.ignored)} ignored (not a symbol of {r.file})" for r in rows if r.ignored]
    return notes + [f"{r.name}: no training step at {r.at_text()}: {r.invalid}" for r in rows if not r.valid]


def _widest(rows: list[TrainingRow]) -> list[tuple[str, str]]:
    return max((r.columns() for r in rows if r.valid), key=len, default=[*STEP_COLUMNS])


def _cells(row: TrainingRow, columns: list[tuple[str, str]]) -> list[str]:
    keys = {k for k, _ in row.columns()}
    return [f"{row.value(k):,}" if k in keys else "-" for k, _ in columns] + [row.ratio()]


def render_table(rows: list[TrainingRow], heading: str) -> str:
    columns = _widest(rows)
    headers = ["Model", *(t for _, t in columns), "Step/forward", "Symbols"]
    lines = [[r.name, *_cells(r, columns), r.at_text()] if r.valid else [r.name, "no training step (see below)"]
             for r in rows]
    widths = [max([len(h)] + [len(line[i]) for line in lines if len(line) == len(headers)]) for i, h in enumerate(headers)]
    widths[0] = max(widths[0], *(len(line[0]) for line in lines))

    def fmt(line: list[str]) -> str:
        if len(line) != len(headers):
            return (line[0].ljust(widths[0]) + "  " + line[1]).rstrip()
        return "  ".join(c.ljust(w) if i in (0, len(line) - 1) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip()

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    out = [heading, rule, fmt(headers), rule, *(fmt(line) for line in lines), rule, "Step FLOPs formulas:"]
    label = max(len(r.name) for r in rows) + 1
    out += [f"  {r.name:<{label}} {render(r.expr('flops'))}" for r in rows if r.valid]
    out += [f"Note: {n}" for n in _notes(rows)]
    return "\n".join(out) + "\n"


def render_markdown(rows: list[TrainingRow], heading: str) -> str:
    columns = _widest(rows)
    out = [f"{heading}.", "", "| Model | " + " | ".join(t for _, t in columns) + " | Step/forward | Symbols |",
           "|---|" + "---:|" * (len(columns) + 1) + "---|"]
    for r in rows:
        cells = [*_cells(r, columns), r.at_text()] if r.valid else [f"no training step: {r.invalid}",
                                                                    *([""] * (len(columns) + 1))]
        out.append(f"| {r.name} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += ["", "| Model | Step FLOPs |", "|---|---|", *(f"| {r.name} | `{render(r.expr('flops'))}` |" for r in rows if r.valid)]
    notes = _notes(rows)
    return "\n".join(out + (["", *(f"- {n}" for n in notes)] if notes else [])) + "\n"


def render_csv(rows: list[TrainingRow], heading: str) -> str:
    columns = _widest(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "file", "symbols", "valid", "reason",
                     *(h for k, _ in columns for h in (k, f"{k}_formula")), "ignored_symbols"])
    for r in rows:
        keys = {k for k, _ in r.columns()} if r.valid else set()
        cells = [x for k, _ in columns for x in ((r.value(k), render(r.expr(k))) if k in keys else ("", ""))]
        writer.writerow([r.name, r.file, r.at_text(), "yes" if r.valid else "no", r.invalid or "", *cells,
                         " ".join(r.ignored)])
    return buffer.getvalue()


def render_json(rows: list[TrainingRow], heading: str) -> str:
    def one(r: TrainingRow) -> dict[str, Any]:
        out: dict[str, Any] = {"model": r.name, "file": r.file, "symbols": r.values, "ignored_symbols": list(r.ignored),
                               "valid": r.valid}
        if r.step is None:
            return {**out, "reason": r.invalid}
        report = r.step.report
        return {**out, **{k if k.endswith("_bytes") or k.startswith("epoch_") or k == "flops" else f"{k}_flops":
                          report.formula(r.expr(k)) for k, _ in r.columns()}}

    return json.dumps({"training": heading, "models": [one(r) for r in rows]}, indent=2) + "\n"


def render_latex(rows: list[TrainingRow], heading: str) -> str:
    columns = _widest(rows)
    out = [r"\begin{table}[t]", r"\centering", f"\\caption{{{_tex(heading)}.}}",
           r"\begin{tabular}{l" + "r" * (len(columns) + 1) + "l}", r"\toprule",
           " & ".join(["Model", *(_tex(t) for _, t in columns), "Step/forward", "Symbols"]) + r" \\", r"\midrule"]
    for r in rows:
        if not r.valid:
            out.append(f"{_tex(r.name)} & \\multicolumn{{{len(columns) + 2}}}{{l}}{{no training step}} \\\\")
            continue
        keys = {k for k, _ in r.columns()}
        cells = [_tex_number(r.value(k)) if k in keys else "-" for k, _ in columns]
        out.append(" & ".join([_tex(r.name), *cells, r.ratio(), _tex(r.at_text())]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    notes = _notes(rows)
    if notes:
        out += [r"\par\smallskip", r"{\footnotesize " + " ".join(_tex(n) + "." for n in notes) + "}"]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def _tex_number(value: int) -> str:
    return f"{value:,}".replace(",", "{,}")


def sort_training_rows(rows: list[TrainingRow], key: str) -> list[TrainingRow]:
    """--sort: name, or by the step's FLOPs (flops) or the report's params / MACs; rows with no step last."""
    if key == "none":
        return rows
    if key == "name":
        return sorted(rows, key=lambda r: r.name.lower())

    def by(r: TrainingRow) -> int:
        assert r.step is not None
        report = r.step.report
        return r.value("flops") if key == "flops" else report.value(report.total.quantity(key))

    return sorted((r for r in rows if r.valid), key=by) + [r for r in rows if not r.valid]


RENDERERS = {"table": render_table, "markdown": render_markdown, "csv": render_csv, "json": render_json,
             "latex": render_latex}


def render_training_rows(rows: list[TrainingRow], fmt: str = "table", optimizer: str = "adam",
                         convention: str = "nnspec") -> str:
    return RENDERERS[fmt](rows, _heading(optimizer, convention, rows))
