"""`--training` in the table format: one training step per layer (forward, the backward's three parts,
the optimizer), totals, per epoch of N samples when N is set, and the memory a step holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.formats.common import cell
from analyzer.memory import DTYPE_BYTES

if TYPE_CHECKING:
    from analyzer.training import TrainingStep

HEADERS = ("Layer (type)", "Forward", "Grad input", "Grad weight", "Grad other", "Optimizer", "Step FLOPs", "Note")
PARTS = ("forward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops")


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
    frozen = f"; frozen: {', '.join(step.frozen)}" if step.frozen else ""
    counted = "; as torch's FlopCounterMode counts it (mm and convolution)" if step.convention == "torch" else ""
    out = ["", f"Training step: optimizer {step.optimizer}, B={report.value(report.symbol('B').symbol)}{frozen}{counted}"
           f"{'; with the gradient of the model input' if step.input_grad else ''}", rule, fmt(HEADERS), rule]
    out.extend(fmt(r) for r in rows)
    out.append(rule)
    totals = [("Forward", "forward"), ("Backward", "backward"), ("  grad input", "grad_input"),
              ("  grad weight", "grad_weight"), ("  grad other", "grad_other"), ("Optimizer", "optimizer"),
              ("Step FLOPs", "flops")]
    width = max(len(label) for label, _ in totals) + 2
    for label, part in totals:
        c = cell(report, step.total(part))
        out.append(f"{label + ':':<{width}} {c.value_text if c.constant else f'{c.formula} = {c.value_text}'}")
    out.append(f"Step memory ({dtype}, {DTYPE_BYTES[dtype]} bytes per element; activations saved for the backward "
               "not counted yet):")
    for label, elements in step.memory().items():
        c = cell(report, elements)
        out.append(f"  {label.replace('_', ' ')}: {c.value_text} elements = {report.value(elements) * DTYPE_BYTES[dtype]:,} "
                   "bytes")
    return out
