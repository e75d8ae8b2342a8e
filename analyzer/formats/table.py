"""The default terminal table, shaped like Keras' model.summary(): a formula line
per layer and, where it differs, a line of values at the chosen symbol values."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sympy

from analyzer.asymptotics import growth_lines
from analyzer.formats.common import COLUMNS, ConventionCells, cell, outputs_formula, outputs_value, symbols_line
from analyzer.memory import MemorySummary, memory_summary
from analyzer.report import FLOP_KINDS, Report
from analyzer.symbolic import render as render_expr

if TYPE_CHECKING:
    from analyzer.conventions.base import Recount

HEADERS = ("Layer (type)", "Output shape", "Params", "MACs", "FLOPs")


def memory_lines(report: Report, memory: MemorySummary) -> list[str]:
    """Footer lines: weight bytes, the largest tensor and the peak of live activations, formula = value."""

    def shown(expr: sympy.Expr, unit: str) -> str:
        c = cell(report, expr)
        return f"{c.value_text} {unit}" if c.constant else f"{c.formula} = {c.value_text} {unit}"

    peak = memory.peak
    return [
        f"Memory ({memory.dtype}, {memory.bytes_per_element} byte{'s' if memory.bytes_per_element > 1 else ''} per element):",
        f"  weights:            {shown(memory.weight_bytes, 'bytes')}",
        f"  largest activation: {memory.largest_layer}: {shown(memory.largest_elements, 'elements')}, "
        f"{shown(memory.largest_bytes, 'bytes')}",
        f"  peak activations:   while {peak.layer} runs: {shown(peak.elements, 'elements')}, {shown(memory.peak_bytes, 'bytes')}",
        f"                      alive: {', '.join(peak.live)}",
        *kv_cache_lines(memory, shown),
    ]


def kv_cache_lines(memory: MemorySummary, shown: Callable[[sympy.Expr, str], str]) -> list[str]:
    """The key/value cache of a model with causal attention, per sample, and what a forward pass holds."""
    cache = memory.kv_cache
    if cache is None:
        return []
    unit = memory.bytes_per_element
    return [f"  KV cache:           {shown(cache.held, 'elements')}, {shown(cache.held * unit, 'bytes')} "
            f"(written {shown(cache.written, 'elements')}; read {shown(cache.read, 'elements')})",
            f"  inference:          weights + KV cache + peak activations: {shown(memory.inference_bytes, 'bytes')}"]


def render(report: Report, convention: Recount | None = None, memory: MemorySummary | None = None) -> str:
    profile = ConventionCells(report, convention) if convention else None
    headers = HEADERS + ((profile.name,) if profile else ())
    lines_per_row: list[list[tuple[str, ...]]] = []
    for row in report.layers.values():
        cells = [cell(report, row.counts.quantity(q)) for q in COLUMNS]
        shape_f = outputs_formula(row.output_shapes)
        shape_v = outputs_value(report, row.output_shapes)
        repeated = row.spec is not None and row.multiplier != 1
        label = f"{row.name} ({row.type})" + (f" x{render_expr(row.multiplier)}" if repeated else "")
        first = (label, shape_f, *(c.value_text if c.constant else c.formula for c in cells))
        second = ("", "= " + shape_v if shape_f != shape_v else "", *("" if c.constant else "= " + c.value_text for c in cells))
        if profile:
            c, note = profile.cell(row.name), profile.note(row.name)
            if c is None:
                first, second = (*first, f"skipped {note}"), (*second, "")
            else:
                first = (*first, (c.value_text if c.constant else c.formula) + (f" {note}" if note else ""))
                second = (*second, "" if c.constant else "= " + c.value_text)
        rows = [first]
        if any(second):
            rows.append(second)
        lines_per_row.append(rows)
    widths = [max(len(h), *(len(line[i]) for rows in lines_per_row for line in rows)) for i, h in enumerate(headers)]

    def fmt(parts: tuple[str, ...]) -> str:
        return "  ".join(p.ljust(w) for p, w in zip(parts, widths)).rstrip()

    rule_width = sum(widths) + 2 * (len(widths) - 1)
    out = [f'Model: "{report.name}"  ({report.file})', symbols_line(report), "=" * rule_width, fmt(headers), "=" * rule_width]
    for rows in lines_per_row:
        out.extend(fmt(line) for line in rows)
    out.append("=" * rule_width)
    total = report.total
    summary = [
        ("Total params", total.params),
        ("Trainable params", total.trainable_params),
        ("Non-trainable params", total.non_trainable_params),
        *((("Active params (per token)", report.active_params),) if report.inactive_params != 0 else ()),
        ("MACs", total.macs),
        ("FLOPs", total.flops),
        *((f"  {kind}", total.flops_by_op[kind]) for kind in FLOP_KINDS),
    ]
    label_width = max(len(label) for label, _ in summary) + 1
    for label, expr in summary:
        c = cell(report, expr)
        text = c.value_text if c.constant else f"{c.formula} = {c.value_text}"
        out.append(f"{label + ':':<{label_width}} {text}")
    memory = memory or memory_summary(report)
    if memory is not None:
        out.extend(memory_lines(report, memory))
    growth = growth_lines(report)
    if growth:
        out.append("Growth (other symbols fixed):")
        out.extend(f"  {line}" for line in growth)
    if profile:
        total_cell = profile.total()
        out.append(f"{'Convention':<{label_width}} {profile.title()}")
        total_text = total_cell.value_text if total_cell.constant else f"{total_cell.formula} = {total_cell.value_text}"
        out.append(f"{profile.name + ' total:':<{label_width}} {total_text}")
        out.extend(f"  {note}" for note in profile.footnotes())
    constraints = report.domain()
    out.append("Valid for: " + ("all values" if not constraints else constraints[0]))
    out.extend(" " * len("Valid for: ") + c for c in constraints[1:])
    out.extend(f"Note: {note}" for note in report.describe_notes())
    return "\n".join(out) + "\n"
