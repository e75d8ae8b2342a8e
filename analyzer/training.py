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
from functools import cached_property
from typing import Any

import sympy

from analyzer.errors import UsageError, did_you_mean
from analyzer.layers.backward import Backward, Needs, NoBackwardRule
from analyzer.layers.registry import CONVENTIONS, INPUT_LAYER, TORCH_TRAINING, TRAINING
from analyzer.report import Report
from analyzer.symbolic import ZERO, SizeSymbol, make_symbol, product, sum_of
from analyzer.training_memory import Repeat, repeat_chain, step_memory, symbolic_repeats

BATCH = "B"
# Optimizer FLOPs per trainable parameter and step, as torch.optim computes them (steady state; the
# per-tensor scalars, e.g. Adam's bias corrections, are not counted: a few per tensor per step).
OPTIMIZER_FLOPS = {
    "sgd": 2,  # p -= lr * g
    "momentum": 4,  # buf = mu * buf + g; p -= lr * buf
    "adam": 13,  # m.lerp_(g, 1-b1): 3; v = b2*v + (1-b2)*g*g: 4; sqrt(v)/c2 + eps: 3; p -= s * m / denom: 3
    "adamw": 14,  # adam, and p *= 1 - lr*wd first: 1
}
# Optimizer state elements per trainable parameter: OPTIMIZER_STATE, with the rest of the step's memory, in
# analyzer/training_memory.py.


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

    @cached_property
    def backward(self) -> sympy.Expr:
        return sum_of((self.grad_input, self.grad_weight, self.grad_other))

    @cached_property
    def flops(self) -> sympy.Expr:
        return sum_of((self.forward, self.backward, self.optimizer))


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
    dataset: str | None = None  # the dataset-size symbol (N) when per-epoch totals were asked for
    needs: dict[str, Needs] = field(default_factory=dict)  # the gradients each layer computes, and why (explain)

    _totals: dict[str, sympy.Expr] = field(default_factory=dict, repr=False, compare=False)

    def total(self, part: str) -> sympy.Expr:
        # every format asks for each total more than once; a sum over 1,000 layers is worth keeping
        if part not in self._totals:
            if part == "backward":
                total = sum_of((self.total("grad_input"), self.total("grad_weight"), self.total("grad_other")))
            elif part == "flops":
                total = sum_of((self.total("forward"), self.total("backward"), self.total("optimizer")))
            else:
                total = sum_of(getattr(step, part) for step in self.layers.values())
            self._totals[part] = total
        return self._totals[part]

    def memory(self, dtype: str = "float32") -> dict[str, sympy.Expr]:
        """Elements a step holds, by line of training_memory.step_memory (weights, gradients, optimizer state, saved
        activations, peak; master weights in mixed precision)."""
        return {line.name: line.elements for line in step_memory(self, dtype)}

    def as_dict(self, dtype: str = "float32") -> dict[str, Any]:
        """The `training` section of the JSON output."""
        report = self.report
        parts = ("forward", "backward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops")
        memory = {line.name: {**report.formula(line.elements), "bytes": report.formula(line.bytes),
                              **({"note": line.note} if line.note else {})}
                  for line in step_memory(self, dtype)}
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
            **({"epoch": epoch_dict(self)} if self.dataset else {}),
        }


def with_batch(report: Report, batch: int | None) -> tuple[Report, sympy.Symbol]:
    """The report with the batch symbol B among its symbols (default 1), at `batch` if given."""
    existing = next((s for s in report.symbols if s.name == BATCH), None)
    if existing is None:
        symbol = make_symbol(BATCH)
        declared = SizeSymbol(symbol, 1, 1, "batch size (samples per training step)")
        report = report.with_values(symbols=(*report.symbols, declared), values={**report.values, symbol: 1})
    else:
        symbol = existing.symbol
    if batch is not None:
        report = report.at(**{BATCH: batch})
    return report, symbol


def training_step(report: Report, *, optimizer: str = "adam", frozen: tuple[str, ...] = (), input_grad: bool = False,
                  batch: int | None = None, convention: str = "nnspec", dataset: int | None = None) -> TrainingStep:
    """One training step of the model `report` analyzes, per layer, with B samples. convention "torch": what
    torch.utils.flop_counter.FlopCounterMode counts for forward + backward on nnspec's torch export (mm and
    convolution only, 2 per multiply-accumulate, its convolution weight-gradient formula included; the
    optimizer's foreach ops have no formula: 0). dataset: the samples of an epoch, the symbol N (epoch())."""
    if convention not in ("nnspec", "torch"):
        raise UsageError(f"--training counts with the nnspec or the torch convention, not {convention!r}")
    if optimizer not in OPTIMIZER_FLOPS:
        raise UsageError(f"unknown optimizer {optimizer!r} (known: {', '.join(OPTIMIZER_FLOPS)})",
                         hint=did_you_mean(optimizer, list(OPTIMIZER_FLOPS)))
    frozen_rows = _frozen_rows(report, frozen)
    report, b = with_batch(report, batch)
    dataset_name = None
    if dataset is not None:
        report, dataset_name = with_dataset(report, dataset)
    needs_of: dict[str, Needs] = {}
    requires: dict[str, bool] = {}  # does this layer's output need a gradient
    no_gradient: set[str] = set()  # layers that pass no gradient to their inputs (an embedding's ids)
    gradient_outputs = outputs_with_a_gradient(report)
    layers: dict[str, LayerStep] = {}
    computed: dict[tuple[Any, ...], Backward] = {}  # rule results by LayerRow.rule_key: a stack repeats a few rows
    for name, row in report.layers.items():
        trainable = ZERO if name in frozen_rows else row.counts.trainable_params
        if row.type == INPUT_LAYER:
            requires[name] = input_grad
            layers[name] = LayerStep(ZERO, ZERO, ZERO, ZERO, ZERO, ZERO)
            continue
        per_input = tuple(requires[i.partition(":")[0]] for i in row.inputs)
        tied_to = getattr(row.spec, "tied_to", None)
        needs = Needs(input=any(per_input), weights=trainable != 0, inputs=per_input,
                      outputs=tuple(f"{name}:{i}" in gradient_outputs for i in range(len(row.output_shapes)))
                      if row.more_outputs else (),
                      tied_weights=tied_to is None or (tied_to not in frozen_rows
                                                       and report.layers[tied_to].counts.trainable_params != 0))
        requires[name] = needs.input or needs.weights
        needs_of[name] = needs
        rule = (TORCH_TRAINING if convention == "torch" else TRAINING).get(row.type)
        if rule is None:
            raise NoBackwardRule(f"no training rule for layer type {row.type!r} yet: the training cost of this "
                                 "spec is not counted (docs/conventions.md#training lists the types that have one)",
                                 layer=name, layer_type=row.type)
        if not requires[name]:
            result = Backward(forward=None)
        else:
            key = (row.rule_key, needs)
            result = computed.get(key) or computed.setdefault(key, rule(row, b, needs))
        # row.counts hold every copy of a symbolically repeated block's row; a rule counts one copy
        if convention == "torch":
            forward = b * CONVENTIONS.rule("torch", row.type)(row) * row.multiplier  # FlopCounterMode's forward
        elif result.forward is not None:
            forward = result.forward * row.multiplier
        else:
            forward = b * row.counts.flops
        if result.no_gradient:
            no_gradient.add(name)
        note = result.no_gradient or ("" if requires[name] else "no backward: nothing before it trains")
        if name in frozen_rows and row.counts.trainable_params != 0:
            note = "frozen: no weight gradient" + (f"; {note}" if note else "")
        layers[name] = LayerStep(forward,
                                 (result.grad_input if needs.input else ZERO) * row.multiplier,
                                 (result.grad_weight if needs.weights else ZERO) * row.multiplier,
                                 result.grad_other * row.multiplier,
                                 ZERO if convention == "torch" else OPTIMIZER_FLOPS[optimizer] * trainable, trainable, note)
    notes: list[str] = []
    if convention == "nnspec":
        sums, notes = gradient_sums(report, b, requires, no_gradient)
        layers = {name: replace(step, grad_other=step.grad_other + sums[name]) if name in sums else step
                  for name, step in layers.items()}
    return TrainingStep(report, optimizer, layers, convention, tuple(frozen), input_grad, notes=notes,
                        dataset=dataset_name, needs=needs_of)


def outputs_with_a_gradient(report: Report) -> set[str]:
    """The outputs (`NAME:i`) a gradient arrives at: read by a later layer, or a model output (the loss reads
    those). A return_state layer's state that nothing reads gets none."""
    def canonical(ref: str) -> str:
        return ref if ":" in ref else f"{ref}:0"

    read = {canonical(ref) for row in report.layers.values() for ref in row.inputs}
    outputs = {canonical(ref) for ref in report.outputs}
    if not report.outputs:  # not known (a report built by hand): every output of a layer nothing reads
        unread = {name for name in report.layers} - {ref.partition(":")[0] for ref in read}
        outputs = {f"{name}:{i}" for name in unread for i in range(len(report.layers[name].output_shapes))}
    return read | outputs


def gradient_sums(report: Report, batch: sympy.Symbol, requires: dict[str, bool],
                  no_gradient: set[str]) -> tuple[dict[str, sympy.Expr], list[str]]:
    """The adds that sum a tensor's gradients when several layers read it (autograd accumulates one gradient per
    reader: k readers, k - 1 adds per element), per reading layer: the first reader in graph order adds nothing,
    each later one B·elements. A layer reading one tensor twice (self-attention's [x, x]) sums inside its own rule.

    In a block repeated t times (a symbol) one row stands for t copies: copy 1 reads the block's input, copies
    2..t the output of the copy before (the carried tensor). A read of the block's input is therefore one read of
    it and t - 1 reads of the carried tensor, each its own tensor with its own first reader; nested repeats apply
    this at each level (`_resolved_reads`)."""
    reads: dict[object, int] = {}  # tensor -> readers so far
    weights: dict[object, sympy.Expr] = {}  # tensor -> the copies each reader reads of it
    sums: dict[str, sympy.Expr] = {}
    notes: list[str] = []
    repeats = symbolic_repeats(report)
    broken: set[str] = set()

    def readable(name: str, row: Any) -> list[str]:
        if not requires[name] or name in no_gradient or row.type == INPUT_LAYER:
            return []
        tensors = (ref.removesuffix(":0") for ref in row.inputs)  # "x:0" is x
        return list(dict.fromkeys(ref for ref in tensors if requires[ref.partition(":")[0]]))

    for name, row in report.layers.items():
        for ref in readable(name, row):
            resolved = _resolved_reads(name, ref, repeats)
            if isinstance(resolved, str):  # a repeat whose wiring is not one input to one output
                broken.add(resolved)
                continue
            producer, _, index = ref.partition(":")
            size = batch * product(report.layers[producer].output_shapes[int(index or 0)])
            for key, copies in resolved:
                if reads.get(key):
                    if sympy.expand(copies - weights[key]) != 0:  # not one copy read per reader copy
                        broken.add(name.rpartition(".each.")[0] or name)
                        continue
                    sums[name] = sums.get(name, ZERO) + copies * size
                reads[key] = reads.get(key, 0) + 1
                weights[key] = copies
    for prefix in sorted(broken):
        notes.append(f"not counted: the sums of fanned-out gradients in {prefix} (a block repeated a symbolic "
                     "number of times whose copies do not chain one input to one output)")
    return sums, notes


def _resolved_reads(reader: str, ref: str, repeats: dict[str, Repeat]) -> list[tuple[object, sympy.Expr]] | str:
    """The tensors one row's read of `ref` reads over all of its copies, as (tensor, copies of the reader reading
    it): `ref` itself in the copies where every repeat between them is in its first copy, the carried output of
    repeat R's copy before where R is in a later one. A str: the repeat whose wiring is not known."""
    producer = ref.partition(":")[0]
    mine, theirs = repeat_chain(reader), repeat_chain(producer)
    shared = 0
    while shared < min(len(mine), len(theirs)) and mine[shared] == theirs[shared]:
        shared += 1
    for prefix in theirs[shared:]:  # read from outside: the repeat's last copy, which must be its output
        if repeats[prefix].end != producer:
            return prefix
    reads: list[tuple[object, sympy.Expr]] = []
    outer = sympy.Mul(*(repeats[p].times for p in mine[:shared]))
    copies = outer
    for prefix in mine[shared:]:  # read from inside: the repeat's input, in its first copy only
        repeat = repeats[prefix]
        if repeat.input != ref:
            return prefix
        reads.append((("carried", prefix), copies * (repeat.times - 1)))
        copies *= repeat.times
    return [(ref, outer), *reads]


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


# -- per epoch: N samples in ceil(N/B) steps ----------------------------------------------------------------------

# The dataset-size symbol: N, or N_data in a spec that declares an N of its own (transformer_encoder.yaml's blocks).
DATASET_NAMES = ("N", "N_data")
EPOCH_PARTS = ("forward", "backward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops")


def dataset_name(report: Report) -> str:
    """The name the dataset size takes in `report` (a spec's report, before with_dataset)."""
    declared = {s.name for s in report.symbols}
    for name in DATASET_NAMES:
        if name not in declared:
            return name
    raise UsageError(f"the spec declares both {' and '.join(DATASET_NAMES)}: no name is left for the dataset size")


def with_dataset(report: Report, samples: int) -> tuple[Report, str]:
    """The report with the dataset size (dataset_name) among its symbols, at `samples`."""
    name = dataset_name(report)
    if isinstance(samples, bool) or not isinstance(samples, int):
        raise UsageError(f"--set {name}: the dataset size must be an integer, got {samples!r}")
    if samples < 1:
        raise UsageError(f"--set {name}={samples} is below the minimum 1 of the dataset size {name} (samples per epoch)")
    symbol = make_symbol(name)
    declared = SizeSymbol(symbol, 1, 1, "dataset size (samples per epoch)")
    report = report.with_values(symbols=(*report.symbols, declared), values={**report.values, symbol: 1})
    return report.at(**{name: samples}), name


def training_values(report: Report, values: dict[str, int]) -> tuple[int | None, int | None]:
    """The batch size B and the dataset size N taken out of --set `values` (popped), each None when not given;
    a symbol the spec declares itself stays in `values` (a spec's own B is the batch; its own N is not the
    dataset, which is then N_data)."""
    declared = {s.name for s in report.symbols}
    batch = None if BATCH in declared else values.pop(BATCH, None)
    if batch is not None and batch < 1:
        raise UsageError(f"--set {BATCH}={batch} is below the minimum 1 of the batch size {BATCH}")
    return batch, values.pop(dataset_name(report), None)


@dataclass(frozen=True)
class Epoch:
    """One pass over N samples: ceil(N/B) steps, floor(N/B) of B samples and, when B does not divide N, a last
    one of N mod B (kept, as torch's DataLoader keeps it by default: drop_last=False)."""

    samples: sympy.Symbol
    steps: sympy.Expr
    last_batch: sympy.Expr
    parts: dict[str, sympy.Expr]  # EPOCH_PARTS -> the epoch's total


def per_epoch(per_step: sympy.Expr, samples: sympy.Symbol, batch: sympy.Symbol) -> sympy.Expr:
    """A per-step count summed over an epoch: floor(N/B)·f(B) + f(N mod B), the last term only when N mod B > 0.
    A count a·B + c (every FLOP count so far: the forward and backward are per sample, the optimizer per
    step) sums to exactly a·N + c·ceil(N/B), since B·floor(N/B) + N mod B = N."""
    expanded = sympy.expand(per_step)
    a, c = expanded.coeff(batch, 1), expanded.coeff(batch, 0)
    if not a.has(batch) and not c.has(batch) and sympy.expand(a * batch + c - expanded) == 0:
        return a * samples + c * sympy.ceiling(samples / batch)
    last = sympy.Mod(samples, batch)
    return sympy.floor(samples / batch) * per_step + sympy.Min(last, 1) * per_step.subs(batch, last)


def epoch(step: TrainingStep) -> Epoch:
    """The step's totals over one epoch of the dataset size given to training_step (dataset=N)."""
    if step.dataset is None:
        raise UsageError(f"per-epoch totals need the dataset size: --set {DATASET_NAMES[0]}=50000 "
                         "(training_step(..., dataset=50000))")
    n, b = step.report.symbol(step.dataset).symbol, step.report.symbol(BATCH).symbol
    return Epoch(n, sympy.ceiling(n / b), sympy.Mod(n, b),
                 {part: per_epoch(step.total(part), n, b) for part in EPOCH_PARTS})


def epoch_dict(step: TrainingStep) -> dict[str, Any]:
    """The `training.epoch` section of the JSON output."""
    e, report = epoch(step), step.report
    return {"samples": report.formula(e.samples), "drop_last": False, "steps": report.formula(e.steps),
            "last_batch": report.formula(e.last_batch),
            **{f"{p}_flops" if p != "flops" else p: report.formula(v) for p, v in e.parts.items()}}
