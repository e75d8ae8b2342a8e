"""What autograd saves of GRU, LSTM and SimpleRNN on nnspec's torch export (issue 16; docs/conventions.md#training,
Memory): the modules of analyzer/layers/torch_modules/recurrent.py, op by op, as torch's derivatives.yaml has them.

The loops (KerasGRU, KerasLSTM, KerasRNN) are traced here on symbolic sizes: `Trace` runs the module's forward with
tensors that are only (storage, elements, requires_grad), each op keeping what its backward needs: addmm
(nn.Linear) its input when the weights train, `a * b` b when a needs a gradient and a when b does, the activations
as ACTIVATION_SAVES (relu, sigmoid, tanh their output; gelu, ... their input); add, subtract, chunk, stack and
flip keep nothing. A chunk is a view: what keeps it keeps its whole storage (KerasGRU's r·(h·U)_h keeps h·U, B·3H).
Steps 1, 2 and 3 are traced; step 2 and 3 must keep alike (else NotCounted), and the layer keeps step 1's and
(T - 1) times step 2's. torch.nn.GRU (the export's reset_after GRU) is written out by hand below from ATen's CPU
gru_cell (RNN.cpp), whose in-place ops keep clones.

Dropout and recurrent_dropout: the export has none (torch_modules.recurrent runs no mask), so nothing is kept for
them; Keras' own layers would keep their masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy

from analyzer.layers import saved
from analyzer.layers.registry import saves_as
from analyzer.symbolic import ZERO


@dataclass(frozen=True)
class Var:
    """A tensor of the trace: its storage (`key`), the storage's elements, whether it needs a gradient."""

    key: Any
    elements: sympy.Expr
    grad: bool


@dataclass
class Trace:
    """The storages kept so far, in the order first kept, and which step kept each."""

    kept: dict[Any, tuple[sympy.Expr, int]] = field(default_factory=dict)
    step: int = 0
    trains: bool = False

    def keep(self, v: Var) -> None:
        self.kept.setdefault(v.key, (v.elements, self.step))

    def linear(self, x: Var, key: Any, elements: sympy.Expr) -> Var:
        """nn.Linear: addmm keeps its input when the weight needs a gradient (dL/dx needs only W)."""
        if self.trains:
            self.keep(x)
        return Var(key, elements, self.trains or x.grad)

    def mul(self, a: Var, b: Var, key: Any, elements: sympy.Expr) -> Var:
        if a.grad:
            self.keep(b)
        if b.grad:
            self.keep(a)
        return Var(key, elements, a.grad or b.grad)

    def new(self, key: Any, elements: sympy.Expr, *parts: Var) -> Var:
        """An op that keeps nothing (add, subtract, 1 - z)."""
        return Var(key, elements, any(p.grad for p in parts))

    def activate(self, name: str, x: Var, key: Any, elements: sympy.Expr) -> Var:
        """common.activate: 'linear' is x itself; the others a new tensor, keeping ACTIVATION_SAVES."""
        from analyzer.layers.activations import ACTIVATION_SAVES  # here: `import analyzer` loads no family

        if name in (None, "linear"):
            return x
        y = Var(key, elements, x.grad)
        if x.grad:
            if "mask" in ACTIVATION_SAVES[name]:  # bool masks: this tracer keeps float tensors only
                raise saved.NotCounted
            for what in ACTIVATION_SAVES[name]:
                self.keep({"x": x, "y": y}.get(what) or Var((key, "t"), elements, False))
        return y


@dataclass(frozen=True)
class Loop:
    """One recurrent module's call: batch, sizes, its spec and whether its input / states need a gradient."""

    spec: Any
    kind: str  # "GRU_after", "GRU_before", "LSTM", "SimpleRNN"
    batch: sympy.Expr
    steps: sympy.Expr
    features: sympy.Expr
    units: sympy.Expr
    inputs: tuple[saved.Tensor, ...]
    trains: bool
    go_backwards: bool


def _step(loop: Loop, trace: Trace, t: int, xs: Var, h: Var, c: Var | None) -> tuple[Var, Var | None]:
    """One step of the loop's forward (torch_modules.recurrent), on step t's slice of xs (its chunks are views)."""
    bh = loop.batch * loop.units
    spec = loop.spec
    act = spec.activation
    if loop.kind == "SimpleRNN":
        s = trace.new(("s", t), bh, xs, trace.linear(h, ("hU", t), bh))
        return trace.activate(act, s, ("h", t), bh), None
    if loop.kind == "LSTM":
        gates = trace.new(("gates", t), 4 * bh, xs, trace.linear(h, ("hU", t), 4 * bh))
        ract = spec.recurrent_activation
        i = trace.activate(ract, gates, ("i", t), bh)
        f = trace.activate(ract, gates, ("f", t), bh)
        o = trace.activate(ract, gates, ("o", t), bh)
        g = trace.activate(act, gates, ("g", t), bh)
        assert c is not None
        fc, ig = trace.mul(f, c, ("fc", t), bh), trace.mul(i, g, ("ig", t), bh)
        c = trace.new(("c", t), bh, fc, ig)
        return trace.mul(o, trace.activate(act, c, ("ac", t), bh), ("h", t), bh), c
    ract = spec.recurrent_activation
    if loop.kind == "GRU_after":
        hu = trace.linear(h, ("hU", t), 3 * bh)  # h_z, h_r, h_h: views of it
        z = trace.activate(ract, trace.new(("sz", t), bh, xs, hu), ("z", t), bh)
        r = trace.activate(ract, trace.new(("sr", t), bh, xs, hu), ("r", t), bh)
        hh = trace.activate(act, trace.new(("sh", t), bh, xs, trace.mul(r, hu, ("rh", t), bh)), ("hh", t), bh)
    else:
        hzr = trace.linear(h, ("hzr", t), 2 * bh)
        z = trace.activate(ract, trace.new(("sz", t), bh, xs, hzr), ("z", t), bh)
        r = trace.activate(ract, trace.new(("sr", t), bh, xs, hzr), ("r", t), bh)
        q = trace.mul(r, h, ("rh", t), bh)
        hh = trace.activate(act, trace.new(("sh", t), bh, xs, trace.linear(q, ("qU", t), bh)), ("hh", t), bh)
    zh = trace.mul(z, h, ("zh", t), bh)
    rest = trace.mul(trace.new(("1-z", t), bh, z), hh, ("(1-z)hh", t), bh)
    return trace.new(("h", t), bh, zh, rest), None


@dataclass(frozen=True)
class Outputs(saved.Saves):
    """Saves of a layer with several outputs: `more` says what outputs 1, 2, ... are, each a Saved: OUTPUT (the
    same storage as output 0), Saved("output", j) (output j's), Saved.input(k) (a view of input k) or
    Saved.new(tag, elements) (a tensor of the layer's own: the one of that tag in `saved` when kept, `elements` its
    whole storage); `more_layouts` their layouts (None or left out: contiguous). The walker
    (analyzer/training_memory.py) reads both."""

    more: tuple[saved.Saved, ...] = ()
    more_layouts: tuple[saved.Layout | None, ...] = ()


@dataclass(frozen=True)
class LoopSaves:
    """What one module call keeps and its outputs: `saved` (Saved.input(k) for input k, Saved.new for its own, OUTPUT
    for its output), `output` (None: a new tensor; else the Saved its output is), `states` (h, c as Saved)."""

    saved: tuple[saved.Saved, ...]
    states: tuple[saved.Saved, ...]
    layout: saved.Layout | None = None
    storage: sympy.Expr | None = None


def _sequence_rows(loop: Loop, x: saved.Tensor) -> saved.Saved:
    """What the input kernel nn.Linear(x) keeps of the (B, T, F) sequence: x itself when its rows merge, else its
    folded copy; with go_backwards the flipped copy (a new tensor either way, B·T·F)."""
    if loop.go_backwards or not x.mergeable((0, 1)):
        return saved.Saved.new("sequence rows", x.elements)
    return saved.Saved.input(0)


def loop_saves(loop: Loop) -> LoopSaves:
    """Trace KerasGRU / KerasLSTM / KerasRNN over steps 1 to 3; the layer keeps step 1's + (T - 1)·step 2's."""
    bh = loop.batch * loop.units
    states = loop.inputs[1:]
    trace = Trace(trains=loop.trains)
    x = loop.inputs[0]
    xs = Var("xs", ZERO, loop.trains or x.requires_grad)  # the input kernel's output: its chunks are never kept
    h = Var(("input", 1), bh, states[0].requires_grad) if states else Var(("zeros", "h"), bh, False)
    c = None
    if loop.kind == "LSTM":
        c = Var(("input", 2), bh, states[1].requires_grad) if len(states) > 1 else Var(("zeros", "c"), bh, False)
    last: list[tuple[Var, Var | None]] = []
    for t in (1, 2, 3):
        trace.step = t
        h, c = _step(loop, trace, t, xs, h, c)
        last.append((h, c))
    per_step = {t: sorted((str(e) for k, (e, s) in trace.kept.items() if s == t and k[0] not in ("input", "zeros")))
                for t in (1, 2, 3)}
    if per_step[2] != per_step[3]:
        raise saved.NotCounted(f"{loop.spec.type}: steps 2 and 3 of the loop keep differently")

    def own(t: int, v: Var | None) -> bool:  # the step's h (or c) kept by its own step
        return v is not None and trace.kept.get(v.key, (None, 0))[1] == t

    known_one = loop.steps == 1
    h_own, c_own = (own(1, last[0][0]), own(1, last[0][1])) if known_one else (own(3, last[2][0]), own(3, last[2][1]))
    if not known_one and loop.steps.free_symbols and (h_own, c_own) != (own(1, last[0][0]), own(1, last[0][1])):
        raise saved.NotCounted(f"{loop.spec.type}: the last step keeps its state unlike step 1 and T is symbolic")

    def step_elements(t: int) -> sympy.Expr:
        return sympy.Add(*(e for k, (e, s) in trace.kept.items() if s == t and k[0] not in ("input", "zeros")))

    zeros = sympy.Add(*(e for k, (e, _) in trace.kept.items() if k[0] == "zeros"))
    steps_total = zeros + step_elements(1) + (loop.steps - 1) * step_elements(2) - bh * (int(h_own) + int(c_own))
    kept: list[saved.Saved] = []
    if loop.trains:
        kept.append(_sequence_rows(loop, x))
    kept += [saved.Saved.input(k[1]) for k in trace.kept if k[0] == "input"]
    kept.append(saved.Saved.new("steps", steps_total))
    h_last = saved.OUTPUT if not loop.spec.return_sequences else saved.Saved.new("h_T", bh)
    if h_own:
        kept.append(h_last)
    out_states = [h_last]
    if loop.kind == "LSTM":
        c_last = saved.Saved.new("c_T", bh)
        out_states.append(c_last)
        if c_own:
            kept.append(c_last)
    return LoopSaves(tuple(kept), tuple(out_states))


def native_gru_saves(loop: Loop) -> LoopSaves:
    """torch.nn.GRU (batch_first) on CPU: ATen transposes x to (T, B, F) and nn.Linear's matmul folds it into rows
    (a view when x is contiguous time-major, i.e. at B = 1; else a copy), kept when the weights train. Per step,
    gru_cell: h·W_hh + b (B·3H; r and z are sigmoid_ in place on it, each op keeping it), the clone mul_ keeps of
    (h·U)_n before r multiplies it (B·H), tanh_'s output n (B·H), the clone of h - n that mul_(z) keeps (B·H); h_{t-1}
    when the weights train (h_0: zeros of its own, or the initial state, `.contiguous()`). The output out[:, -1]
    without return_sequences is a view of the sequence output (B·T·H, time-major in memory: the last step's block is
    contiguous); the final state h_n a storage of its own."""
    b, steps, units = loop.batch, loop.steps, loop.units
    x = loop.inputs[0]
    kept: list[saved.Saved] = []
    if loop.trains:
        time_major = x.permuted((1, 0, 2))
        if loop.go_backwards or not time_major.mergeable((0, 1)):
            kept.append(saved.Saved.new("sequence rows", x.elements))
        else:
            kept.append(saved.Saved.input(0))
    per_step = 3 * b * units + 3 * b * units
    previous = (steps - 1) * b * units if loop.trains else ZERO  # h_1 .. h_{T-1}
    kept.append(saved.Saved.new("steps", steps * per_step + previous))
    if loop.trains:
        if len(loop.inputs) > 1:
            h0 = loop.inputs[1]
            kept.append(saved.Saved.input(1) if h0.is_contiguous() else saved.Saved.new("h_0", h0.elements))
        else:
            kept.append(saved.Saved.new("h_0", b * units))
    state = (saved.Saved.new("h_n", b * units),)
    if loop.spec.return_sequences:  # ATen computes (T, B, H) and returns it transposed: time-major in memory
        return LoopSaves(tuple(kept), state, saved.Layout((1, 0, 2)))
    # out[:, -1]: the last step's (B, H) block of the time-major output, contiguous, a view of all of it
    return LoopSaves(tuple(kept), state, saved.Layout((0, 1), frozenset({0})), b * steps * units)


def is_native(spec: Any) -> bool:
    """torch_gru's choice at to_torch's default (native_gru False): nn.GRU for a standard GRU resetting after."""
    standard = spec.activation == "tanh" and getattr(spec, "recurrent_activation", None) == "sigmoid"
    return spec.type == "GRU" and standard and bool(spec.reset_after or spec.cudnn_compatible)


def make_loop(spec: Any, input_shape: tuple, batch: sympy.Expr, inputs: tuple[saved.Tensor, ...], trains: bool,
              go_backwards: bool) -> Loop:
    steps, features = input_shape
    kind = spec.type
    if kind == "GRU":
        kind = "GRU_after" if spec.reset_after or spec.cudnn_compatible else "GRU_before"
    if getattr(spec, "stateful", False):
        raise saved.NotCounted(f"{spec.type} stateful: the export carries no state between batches")
    return Loop(spec, kind, batch, steps, features, spec.units, inputs, trains, go_backwards)


def module_saves(loop: Loop) -> LoopSaves:
    return native_gru_saves(loop) if is_native(loop.spec) else loop_saves(loop)


def saves_recurrent(ctx: saved.SaveContext) -> saved.Saves:
    """The module's ops (native_gru_saves, loop_saves); outputs: the sequence (torch.stack, a new tensor) or the last
    h, then with return_state the last h (and c)."""
    spec = ctx.spec
    loop = make_loop(spec, ctx.row.input_shapes[0], ctx.batch, ctx.inputs, ctx.trains, spec.go_backwards)
    result = module_saves(loop)
    more = result.states if spec.return_state else ()
    return Outputs(result.saved, result.layout, storage=result.storage, more=more)


saves_as("GRU", "LSTM", "SimpleRNN", rule=saves_recurrent)
