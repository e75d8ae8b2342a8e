"""A --sweep in every --format: one row per value of the swept symbol (values only); with --training, the
step's totals."""

from __future__ import annotations

import csv
import io
import json

from analyzer.formats.latex import _escape
from analyzer.sweep import Sweep

HEADERS = {"params": "Total params", "trainable_params": "Trainable", "macs": "MACs", "flops": "FLOPs"}
TRAINING_HEADERS = {"forward_flops": "Forward", "backward_flops": "Backward", "optimizer_flops": "Optimizer",
                    "flops": "Step FLOPs", "epoch_steps": "Epoch steps", "epoch_flops": "Epoch FLOPs"}
OUT_OF_DOMAIN = "out of domain"


def _header(s: Sweep, q: str) -> str:
    if "training" not in s.meta:
        return HEADERS[q]
    if q.endswith("_bytes"):  # a memory line: "saved_activations_bytes" -> "Saved activations bytes"
        return q.removesuffix("_bytes").replace("_", " ").capitalize() + " bytes"
    return TRAINING_HEADERS[q]


def _title(s: Sweep) -> str:
    fixed = ", ".join(f"{k}={v}" for k, v in s.fixed.items())
    training = s.meta.get("training")
    what = "totals" if training is None else (
        f"training step (optimizer {training['optimizer']}"
        + (f", frozen {', '.join(training['frozen'])}" if training["frozen"] else "")
        + (", torch convention" if training["convention"] == "torch" else "")
        + f"; memory in bytes, {training['dtype']})")
    return f"{s.report.name}: {what} vs {s.symbol}" + (f" ({fixed})" if fixed else "")


def _cells(s: Sweep, sep: str = ",") -> list[list[str]]:
    rows = []
    for p in s.points:
        if p.counts is None:
            rows.append([str(p.value), OUT_OF_DOMAIN, *([""] * (len(s.quantities) - 1))])
        else:
            rows.append([str(p.value), *(f"{p.counts[q]:,}".replace(",", sep) for q in s.quantities)])
    return rows


def _reasons(s: Sweep) -> list[str]:
    return [f"{s.symbol}={p.value}: {p.reason}" for p in s.points if p.reason]


def render_table(s: Sweep) -> str:
    headers = [s.symbol, *(_header(s, q) for q in s.quantities)]
    rows = _cells(s)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(parts: list[str]) -> str:
        return "  ".join(p.rjust(w) if p != OUT_OF_DOMAIN else p.ljust(w) for p, w in zip(parts, widths)).rstrip()

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    out = [f'Model: "{s.report.name}"  ({s.report.file})', _title(s), rule, fmt(headers), rule, *(fmt(r) for r in rows), rule]
    out += [f"Out of domain: {r}" for r in _reasons(s)]
    return "\n".join(out) + "\n"


def render_markdown(s: Sweep) -> str:
    out = [f"### {_title(s)}", "", f"| {s.symbol} | " + " | ".join(_header(s, q) for q in s.quantities) + " |",
           "|---:|" + "---:|" * len(s.quantities)]
    out += ["| " + " | ".join(r) + " |" for r in _cells(s)]
    reasons = _reasons(s)
    if reasons:
        out += ["", *(f"- out of domain: {r}" for r in reasons)]
    return "\n".join(out) + "\n"


def render_csv(s: Sweep) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([s.symbol, *s.quantities, "out_of_domain"])
    for p in s.points:
        counts = [p.counts[q] for q in s.quantities] if p.counts else [""] * len(s.quantities)
        writer.writerow([p.value, *counts, p.reason or ""])
    return buffer.getvalue()


def render_json(s: Sweep) -> str:
    return json.dumps(s.as_dict(), indent=2) + "\n"


def render_latex(s: Sweep) -> str:
    out = [r"\begin{table}[t]", r"\centering", f"\\caption{{{_escape(_title(s))}}}",
           r"\begin{tabular}{r" + "r" * len(s.quantities) + "}", r"\toprule",
           f"${_escape(s.symbol)}$ & " + " & ".join(_header(s, q) for q in s.quantities) + r" \\", r"\midrule"]
    for p, row in zip(s.points, _cells(s, "{,}")):
        if p.counts is None:
            out.append(f"${p.value}$ & \\multicolumn{{{len(s.quantities)}}}{{l}}{{{OUT_OF_DOMAIN}}} \\\\")
        else:
            out.append(" & ".join(f"${c}$" for c in row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "csv": render_csv, "json": render_json, "latex": render_latex}


def render(s: Sweep, fmt: str = "table") -> str:
    return RENDERERS[fmt](s)
