"""`analyze SPEC --training`: the exact cost of one training step (issue 16), per layer and in total, as
formulas in the batch size B and every size symbol: the training-mode forward pass, the backward pass
split into grad-input, grad-weight and the elementwise backward both need, the optimizer step, and the
memory a step holds (weights, gradients, optimizer state).

Which gradients a layer computes follows autograd: dL/dW where the layer trains (not frozen, has
weights); dL/dx where anything before it trains (or the model input needs a gradient, --input-grad).
Layers before the first trainable layer need no backward at all. Each layer family states its rule next
to the layer (`trains_as`, analyzer/layers/backward.py); docs/conventions.md#training has every formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import sympy

from analyzer.errors import UsageError, did_you_mean
from analyzer.layers.backward import Backward, Needs, NoBackwardRule
from analyzer.layers.registry import CONVENTIONS, INPUT_LAYER, TORCH_TRAINING, TRAINING
from analyzer.memory import DTYPE_BYTES
from analyzer.report import Report
from analyzer.symbolic import ZERO, SizeSymbol, make_symbol

BATCH = "B"
# Optimizer FLOPs per trainable parameter and step, as torch.optim computes them (steady state; the
# per-tensor scalars, e.g. Adam's bias corrections, are not counted: a few per tensor per step).
OPTIMIZER_FLOPS = {
    "sgd": 2,  # p -= lr * g
    "momentum": 4,  # buf = mu * buf + g; p -= lr * buf
    "adam": 13,  # m.lerp_(g, 1-b1): 3; v = b2*v + (1-b2)*g*g: 4; sqrt(v)/c2 + eps: 3; p -= s * m / denom: 3
    "adamw": 14,  # adam, and p *= 1 - lr*wd first: 1
}
# Optimizer state elements per trainable parameter (torch.optim's `state`; each also keeps a step count).
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class LayerStep:
    """One layer's part of a training step (whole batch)."""

    forward: sympy.Expr
    grad_input: sympy.Expr
    grad_weight: sympy.Expr
    grad_other: sympy.Expr
    optimizer: sympy.Expr
    trainable_params: sympy.Expr
    note: str = ""

    @property
    def backward(self) -> sympy.Expr:
        return self.grad_input + self.grad_weight + self.grad_other

    @property
    def flops(self) -> sympy.Expr:
        return self.forward + self.backward + self.optimizer


@dataclass(frozen=True)
class TrainingStep:
    """A report's training step: per layer (graph order) and in total, with the step's memory."""

    report: Report  # its symbols include B
    optimizer: str
    layers: dict[str, LayerStep]
    convention: str = "nnspec"
    frozen: tuple[str, ...] = ()
    input_grad: bool = False
    notes: list[str] = field(default_factory=list)

    def total(self, part: str) -> sympy.Expr:
        return sympy.Add(*(getattr(step, part) for step in self.layers.values()))

    def memory(self) -> dict[str, sympy.Expr]:
        """Elements held across a step: all weights, a gradient per trainable weight, the optimizer's state."""
        trainable = self.total("trainable_params")
        return {
            "weights": self.report.total.params,
            "gradients": trainable,
            "optimizer_state": OPTIMIZER_STATE[self.optimizer] * trainable,
        }

    def as_dict(self, dtype: str = "float32") -> dict[str, Any]:
        """The `training` section of the JSON output."""
        report = self.report
        parts = ("forward", "backward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops")
        memory = {k: {**report.formula(v), "bytes": report.formula(v * DTYPE_BYTES[dtype])}
                  for k, v in self.memory().items()}
        return {
            "batch": BATCH,
            "convention": self.convention,
            "optimizer": self.optimizer,
            "frozen": list(self.frozen),
            "input_grad": self.input_grad,
            "total": {f"{p}_flops" if p != "flops" else p: report.formula(self.total(p)) for p in parts},
            "layers": [{"name": name, "note": step.note,
                        **{f"{p}_flops" if p != "flops" else p: report.formula(getattr(step, p)) for p in parts}}
                       for name, step in self.layers.items()],
            "memory": {"dtype": dtype, **memory},
            "notes": self.notes,
        }


def with_batch(report: Report, batch: int | None) -> tuple[Report, sympy.Symbol]:
    """The report with the batch symbol B among its symbols (default 1), at `batch` if given."""
    existing = next((s for s in report.symbols if s.name == BATCH), None)
    if existing is None:
        symbol = make_symbol(BATCH)
        declared = SizeSymbol(symbol, 1, 1, "batch size (samples per training step)")
        report = replace(report, symbols=(*report.symbols, declared), values={**report.values, symbol: 1})
    else:
        symbol = existing.symbol
    if batch is not None:
        report = report.at(**{BATCH: batch})
    return report, symbol


def training_step(report: Report, *, optimizer: str = "adam", frozen: tuple[str, ...] = (), input_grad: bool = False,
                  batch: int | None = None, convention: str = "nnspec") -> TrainingStep:
    """One training step of the model `report` analyzes, per layer, with B samples. convention "torch": what
    torch.utils.flop_counter.FlopCounterMode counts for forward + backward on nnspec's torch export (mm and
    convolution only, 2 per multiply-accumulate, its convolution weight-gradient formula included; the
    optimizer's foreach ops have no formula: 0)."""
    if convention not in ("nnspec", "torch"):
        raise UsageError(f"--training counts with the nnspec or the torch convention, not {convention!r}")
    if optimizer not in OPTIMIZER_FLOPS:
        raise UsageError(f"unknown optimizer {optimizer!r} (known: {', '.join(OPTIMIZER_FLOPS)})",
                         hint=did_you_mean(optimizer, list(OPTIMIZER_FLOPS)))
    frozen_rows = _frozen_rows(report, frozen)
    report, b = with_batch(report, batch)
    requires: dict[str, bool] = {}  # does this layer's output need a gradient
    layers: dict[str, LayerStep] = {}
    for name, row in report.layers.items():
        trainable = ZERO if name in frozen_rows else row.counts.trainable_params
        if row.type == INPUT_LAYER:
            requires[name] = input_grad
            layers[name] = LayerStep(ZERO, ZERO, ZERO, ZERO, ZERO, ZERO)
            continue
        needs = Needs(input=any(requires[i.partition(":")[0]] for i in row.inputs), weights=trainable != 0)
        requires[name] = needs.input or needs.weights
        rule = (TORCH_TRAINING if convention == "torch" else TRAINING).get(row.type)
        if rule is None:
            raise NoBackwardRule(f"no training rule for layer type {row.type!r} yet: the training cost of this "
                                 "spec is not counted (docs/conventions.md#training lists the types that have one)",
                                 layer=name, layer_type=row.type)
        result: Backward = rule(row, b, needs) if requires[name] else Backward(forward=None)
        # row.counts hold every copy of a symbolically repeated block's row; a rule counts one copy
        if convention == "torch":
            forward = b * CONVENTIONS.rule("torch", row.type)(row) * row.multiplier  # FlopCounterMode's forward
        elif result.forward is not None:
            forward = result.forward * row.multiplier
        else:
            forward = b * row.counts.flops
        note = result.no_gradient or ("" if requires[name] else "no backward: nothing before it trains")
        if name in frozen_rows and row.counts.trainable_params != 0:
            note = "frozen: no weight gradient" + (f"; {note}" if note else "")
        layers[name] = LayerStep(forward,
                                 (result.grad_input if needs.input else ZERO) * row.multiplier,
                                 (result.grad_weight if needs.weights else ZERO) * row.multiplier,
                                 result.grad_other * row.multiplier,
                                 ZERO if convention == "torch" else OPTIMIZER_FLOPS[optimizer] * trainable, trainable, note)
    return TrainingStep(report, optimizer, layers, convention, tuple(frozen), input_grad)


def _frozen_rows(report: Report, names: tuple[str, ...]) -> set[str]:
    """The rows --frozen names: a layer, or every layer of a block instance."""
    rows: set[str] = set()
    for name in names:
        hit = {r for r, row in report.layers.items() if r == name or any(g[0] == name for g in row.groups)}
        if not hit:
            raise UsageError(f"--frozen {name}: no layer or block of that name in the spec",
                             hint=did_you_mean(name, list(report.layers)))
        rows |= hit
    return rows
