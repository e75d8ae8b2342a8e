"""`--training` in the table format: one training step per layer (forward, the backward's three parts,
the optimizer), totals, per epoch of N samples when N is set, and the memory a step holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.formats.common import cell
from analyzer.memory import DTYPE_BYTES
from analyzer.symbolic import render
from analyzer.training import epoch
from analyzer.training_memory import MIXED_PRECISION, step_memory

if TYPE_CHECKING:
    from analyzer.training import TrainingStep

HEADERS = ("Layer (type)", "Forward", "Grad input", "Grad weight", "Grad other", "Optimizer", "Step FLOPs", "Note")
PARTS = ("forward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops")


def step_heading(step: TrainingStep) -> str:
    """'Training step: optimizer adam, B=256; frozen: conv1d_1', the line above every format's training table."""
    report = step.report
    frozen = f"; frozen: {', '.join(step.frozen)}" if step.frozen else ""
    counted = "; as torch's FlopCounterMode counts it (mm and convolution)" if step.convention == "torch" else ""
    return (f"Training step: optimizer {step.optimizer}, B={report.value(report.symbol('B').symbol)}{frozen}{counted}"
            f"{'; with the gradient of the model input' if step.input_grad else ''}")


def epoch_heading(step: TrainingStep) -> str:
    """'Epoch of N=20 samples: ceiling(N/B) = 3 steps, 2 of 8 and a last one of 4', or '' without a dataset size."""
    if step.dataset is None:
        return ""
    report, e = step.report, epoch(step)
    steps, last, batch = (report.value(x) for x in (e.steps, e.last_batch, report.symbol("B").symbol))
    if not last:
        split = f"{steps:,} of {batch:,}"
    elif steps == 1:
        split = f"one of {last:,} (fewer samples than B)"
    else:
        split = f"{steps - 1:,} of {batch:,} and a last one of {last:,} (kept: drop_last=False)"
    return (f"Epoch of {step.dataset}={report.value(e.samples):,} samples: {render(e.steps)} = {steps:,} "
            f"step{'s' if steps != 1 else ''}, {split}")


def epoch_lines(step: TrainingStep, width: int) -> list[str]:
    """The table's per-epoch totals (formula = value), when a dataset size is given."""
    if step.dataset is None:
        return []
    e = epoch(step)
    out = [epoch_heading(step) + ":"]
    for label, part in (("Forward", "forward"), ("Backward", "backward"), ("Optimizer", "optimizer"),
                        ("Epoch FLOPs", "flops")):
        c = cell(step.report, e.parts[part])
        out.append(f"  {label + ':':<{width - 2}} {c.value_text if c.constant else f'{c.formula} = {c.value_text}'}")
    return out


def training_lines(step: TrainingStep, dtype: str = "float32") -> list[str]:
    report = step.report
    rows = []
    for name, layer in step.layers.items():
        values = [report.value(getattr(layer, part)) for part in PARTS]  # values only: rendering is the slow part
        rows.append((f"{name} ({report.layers[name].type})", *(f"{v:,}" for v in values), layer.note))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]

    def fmt(parts: tuple[str, ...]) -> str:
        return "  ".join(p.ljust(w) if i in (0, len(parts) - 1) else p.rjust(w)
                         for i, (p, w) in enumerate(zip(parts, widths, strict=True))).rstrip()

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    out = ["", step_heading(step), rule, fmt(HEADERS), rule]
    out.extend(fmt(r) for r in rows)
    out.append(rule)
    totals = [("Forward", "forward"), ("Backward", "backward"), ("  grad input", "grad_input"),
              ("  grad weight", "grad_weight"), ("  grad other", "grad_other"), ("Optimizer", "optimizer"),
              ("Step FLOPs", "flops")]
    width = max(len(label) for label, _ in totals) + 2
    for label, part in totals:
        c = cell(report, step.total(part))
        out.append(f"{label + ':':<{width}} {c.value_text if c.constant else f'{c.formula} = {c.value_text}'}")
    out.extend(epoch_lines(step, width))
    out.append(f"Step memory ({memory_dtype(dtype)}):")
    for line in step_memory(step, dtype):
        c = cell(report, line.elements)
        note = f"  ({line.note})" if line.note else ""
        out.append(f"  {line.name.replace('_', ' ')}: {c.value_text} elements = {report.value(line.bytes):,} bytes{note}")
    return out


def memory_dtype(dtype: str) -> str:
    """The memory block's heading: the dtype and what it means per element."""
    if dtype in MIXED_PRECISION:
        return (f"{dtype}: {MIXED_PRECISION[dtype]} weights, gradients and activations, float32 master weights and "
                "optimizer state")
    return f"{dtype}, {DTYPE_BYTES[dtype]} bytes per element"
