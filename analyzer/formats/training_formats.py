"""`--training` in --format markdown, csv and latex: the step per layer (forward, grad input, grad weight, grad
other, optimizer, step FLOPs), the totals, per epoch when N is set, and the step's memory; the table format is
analyzer/formats/training.py, the JSON TrainingStep.as_dict."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

import sympy

from analyzer.formats.common import cell
from analyzer.formats.latex import _cell as latex_cell
from analyzer.formats.latex import _escape
from analyzer.formats.training import epoch_heading, memory_dtype, step_heading
from analyzer.symbolic import render
from analyzer.training import epoch
from analyzer.training_memory import MemoryLine, step_memory

if TYPE_CHECKING:
    from analyzer.training import TrainingStep

# (key, title): the columns per layer; backward = the three grad columns, shown in the totals
PARTS = (("forward", "Forward"), ("grad_input", "Grad input"), ("grad_weight", "Grad weight"),
         ("grad_other", "Grad other"), ("optimizer", "Optimizer"), ("flops", "Step FLOPs"))
TOTALS = (("forward", "Forward"), ("backward", "Backward"), ("optimizer", "Optimizer"), ("flops", "FLOPs"))


def memory_lines(step: TrainingStep, dtype: str) -> list[MemoryLine]:
    """The memory block every format shows (analyzer.training_memory.step_memory)."""
    return step_memory(step, dtype)


def _md(report: object, expr: sympy.Expr) -> str:
    c = cell(report, expr)  # type: ignore[arg-type]
    return c.value_text if c.constant else f"{c.value_text} (`{c.formula}`)"


def render_markdown(step: TrainingStep, dtype: str = "float32") -> str:
    report = step.report
    out = ["", f"### {step_heading(step)}", "",
           "| Layer | Type | " + " | ".join(title for _, title in PARTS) + " | Note |",
           "|---|---|" + "---:|" * len(PARTS) + "---|"]
    for name, layer in step.layers.items():
        cells = " | ".join(_md(report, getattr(layer, part)) for part, _ in PARTS)
        out.append(f"| {name} | {report.layers[name].type} | {cells} | {layer.note.replace('|', '/')} |")
    out.append("| **Total** | | " + " | ".join(_md(report, step.total(part)) for part, _ in PARTS) + " | |")
    out += ["", "Backward: " + _md(report, step.total("backward")) + " (grad input + grad weight + grad other)"]
    if step.dataset is not None:
        e = epoch(step)
        out += ["", f"{epoch_heading(step)}:", "", "| | " + " | ".join(title for _, title in TOTALS) + " |",
                "|---|" + "---:|" * len(TOTALS),
                "| **Epoch** | " + " | ".join(_md(report, e.parts[part]) for part, _ in TOTALS) + " |"]
    out += ["", f"Step memory ({memory_dtype(dtype)}):", "", "| Memory | Elements | Bytes | Note |", "|---|---:|---:|---|"]
    for line in memory_lines(step, dtype):
        out.append(f"| {line.name.replace('_', ' ')} | {_md(report, line.elements)} | {_md(report, line.bytes)} | "
                   f"{line.note.replace('|', '/')} |")
    return "\n".join(out) + "\n"


def render_latex(step: TrainingStep, dtype: str = "float32") -> str:
    """A second booktabs table float: the step per layer and in total, then the epoch and the memory."""
    report = step.report
    out = [r"\begin{table}[t]", r"\centering", f"\\caption{{{_escape(report.name)}: {_escape(step_heading(step))}}}",
           r"\begin{tabular}{ll" + "l" * len(PARTS) + "l}", r"\toprule",
           "Layer & Type & " + " & ".join(title for _, title in PARTS) + r" & Note \\", r"\midrule"]
    for name, layer in step.layers.items():
        cells = " & ".join(latex_cell(report, getattr(layer, part)) for part, _ in PARTS)
        out.append(f"{_escape(name)} & {_escape(report.layers[name].type)} & {cells} & {_escape(layer.note)} \\\\")
    out.append(r"\midrule")
    out.append("Total & & " + " & ".join(latex_cell(report, step.total(part)) for part, _ in PARTS) + r" & \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip",
            r"\begin{tabular}{l" + "l" * len(TOTALS) + "}", r"\toprule",
            " & " + " & ".join(title for _, title in TOTALS) + r" \\", r"\midrule",
            "Step & " + " & ".join(latex_cell(report, step.total(part)) for part, _ in TOTALS) + r" \\"]
    if step.dataset is not None:
        e = epoch(step)
        out.append("Epoch & " + " & ".join(latex_cell(report, e.parts[part]) for part, _ in TOTALS) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if step.dataset is not None:
        out += [r"\par\smallskip", _escape(epoch_heading(step)) + "."]
    out += [r"\par\smallskip", r"\begin{tabular}{llll}", r"\toprule",
            f"Step memory ({_escape(memory_dtype(dtype))}) & Elements & Bytes & Note \\\\", r"\midrule"]
    for line in memory_lines(step, dtype):
        out.append(f"{_escape(line.name.replace('_', ' '))} & {latex_cell(report, line.elements)} & "
                   f"{latex_cell(report, line.bytes)} & {_escape(line.note)} \\\\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def render_section(step: TrainingStep, fmt: str, dtype: str = "float32") -> str:
    """What --training adds after the report in markdown or latex."""
    return {"markdown": render_markdown, "latex": render_latex}[fmt](step, dtype)


CSV_PARTS = ("forward", "backward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops")


def render_csv(step: TrainingStep, dtype: str = "float32") -> str:
    """The report's csv (analyzer/formats/csv_format.py) with the step's columns on each layer row and the TOTAL
    row (train_PART and train_PART_formula, train_note), then an EPOCH row (when N is set; its steps in
    train_steps) and a row per memory line (`memory:weights`, ...: train_memory_elements, train_memory_bytes).
    One table, so a reader filters rows by name."""
    from analyzer.formats.csv_format import render as render_report_csv

    report = step.report
    rows = list(csv.reader(io.StringIO(render_report_csv(report))))
    header, body = rows[0], rows[1:]
    width = len(header)
    extra = [h for p in CSV_PARTS for h in (f"train_{p}", f"train_{p}_formula")]
    extra += ["train_note", "train_steps", "train_steps_formula", "train_memory_elements",
              "train_memory_elements_formula", "train_memory_bytes", "train_memory_bytes_formula"]

    def counted(exprs: list[sympy.Expr]) -> list[str | int]:
        return [x for expr in exprs for x in (report.value(expr), render(expr))]

    blank_tail = [""] * 6
    out = [header + extra]
    for line in body:
        name = line[0]
        if name == "TOTAL":
            out.append(line + counted([step.total(p) for p in CSV_PARTS]) + [""] + blank_tail)  # type: ignore[operator]
        else:
            layer = step.layers[name]
            out.append(line + counted([getattr(layer, p) for p in CSV_PARTS]) + [layer.note] + blank_tail)  # type: ignore[operator]
    if step.dataset is not None:
        e = epoch(step)
        out.append(["EPOCH", "training epoch"] + [""] * (width - 2) + counted([e.parts[p] for p in CSV_PARTS])  # type: ignore[operator]
                   + [epoch_heading(step), *counted([e.steps]), "", "", "", ""])
    for m in memory_lines(step, dtype):
        out.append([f"memory:{m.name}", f"training memory ({dtype})"] + [""] * (width - 2 + 2 * len(CSV_PARTS))  # type: ignore[operator]
                   + [m.note, "", "", *counted([m.elements, m.bytes])])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(out)
    return buffer.getvalue()
