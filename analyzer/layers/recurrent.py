"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras semantics), counted exactly per
timestep and multiplied by T. Bidirectional is in wrappers.py.

For input (T, I) and H units, each step computes G gate blocks of H units from
x_t (I terms) and h_{t-1} (H terms):

            G  bias vectors            other per unit and step            activations per unit and step
SimpleRNN   1  1                       1 (x·W + h·U)                      1 activation
LSTM        4  1 (2 cudnn_compatible)  8 (4 gate sums, c = f·c + i·g: 3,  3 recurrent_activation (i, f, o),
                                          h = o·act(c): 1)                2 activation (g, c)
GRU         3  1 (2 reset_after or     8 (z, r sums: 2, reset multiply,   2 recurrent_activation (z, r),
               cudnn_compatible)          candidate add, h = z·h + (1-z)·hh: 4)  1 activation

  params: G·H·(I + H) + vectors·G·H
  macs:   T·G·H·(I + H)       — every step, including the first (frameworks compute it with h0 = 0)
  dot:    T·G·H·((2I - 1) + (2H - 1))   (x·W and h·U are separate products)
  bias:   T·vectors·G·H
Output: (T, H) with return_sequences, else (H,). return_state adds the final
state as more outputs, in Keras' order: [output, state] (SimpleRNN, GRU),
[output, state_h, state_c] (LSTM), each (H,): the last step's h (and c), which
the step computes anyway, so no count changes. A spec refers to them as
`LAYER:state_h` or `LAYER:1` (docs/spec-format.md).

Initial state (Keras' `initial_state`): `inputs: [sequence, state]`, or
`[sequence, state_h, state_c]` for LSTM, each of shape (H,). Every step is
counted with its h·U product already (frameworks run it on h0 = 0 too), so an
initial state adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy
from pydantic import StrictBool, StrictInt

from analyzer.layers import backward as train
from analyzer.layers import tool_rules as tools
from analyzer.layers.activations import ActivationName, activation_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct
from analyzer.layers.registry import counted_as, register, trains_as
from analyzer.layers.torch_ops import ACTIVATION_OPS, Activation, Linear, has_bias
from analyzer.spec.fields import Rate, Size
from analyzer.symbolic import ONE, ZERO, render

if TYPE_CHECKING:
    from analyzer.export.plan import LayerPlan
    from analyzer.report import LayerRow


@dataclass(frozen=True)
class Cell:
    states: tuple[str, ...]  # the state tensors, in Keras' order
    gates: int  # G: blocks of H units computed from x and h
    other: int  # elementwise gate arithmetic per unit per step
    recurrent_activations: int  # per unit per step
    activations: int  # per unit per step


SIMPLE_RNN_CELL = Cell(states=("state",), gates=1, other=1, recurrent_activations=0, activations=1)
LSTM_CELL = Cell(states=("state_h", "state_c"), gates=4, other=8, recurrent_activations=3, activations=2)
GRU_CELL = Cell(states=("state",), gates=3, other=8, recurrent_activations=2, activations=1)


class RecurrentSpec(LayerSpec):
    """Fields Keras' SimpleRNN, LSTM and GRU share."""

    cell: ClassVar[Cell]

    units: Size
    activation: ActivationName = "tanh"
    use_bias: StrictBool = True
    return_sequences: StrictBool = False
    return_state: StrictBool = False
    go_backwards: StrictBool = False
    stateful: StrictBool = False
    unroll: StrictBool = False
    dropout: Rate = 0.0
    recurrent_dropout: Rate = 0.0
    seed: StrictInt | None = None

    def bias_vectors(self) -> int:
        return 1

    def output_names(self) -> tuple[str, ...]:
        return ("output", *self.cell.states) if self.return_state else ("output",)

    def state_input_names(self) -> tuple[str, ...]:
        return self.cell.states


class GatedRecurrentSpec(RecurrentSpec):
    recurrent_activation: ActivationName = "sigmoid"
    use_cudnn: StrictBool | Literal["auto"] = "auto"  # Keras 3: a kernel choice, no effect on the counts
    # Count the second bias vector (input and recurrent bias) of Keras 2's CuDNNLSTM / CuDNNGRU, and of
    # PyTorch's nn.LSTM / nn.GRU. Not a Keras 3 argument.
    cudnn_compatible: StrictBool = False


class SimpleRNN(RecurrentSpec):
    cell = SIMPLE_RNN_CELL
    type: Literal["SimpleRNN"]


class LSTM(GatedRecurrentSpec):
    cell = LSTM_CELL
    type: Literal["LSTM"]
    unit_forget_bias: StrictBool = True  # an initializer: no effect on the counts

    def bias_vectors(self) -> int:
        return 2 if self.cudnn_compatible else 1


class GRU(GatedRecurrentSpec):
    cell = GRU_CELL
    type: Literal["GRU"]
    reset_after: StrictBool = True  # Keras 2.x (TF < 2.0) default was False

    def bias_vectors(self) -> int:
        return 2 if self.reset_after or self.cudnn_compatible else 1


def require_state_shapes(names: tuple[str, ...], states: list[Shape], units: Size, ctx: LayerContext) -> None:
    """Each initial state is one vector of `units` per example, as the layer's own states."""
    for name, state in zip(names, states, strict=True):
        if len(state) != 1:
            ctx.fail(f"initial state {name} must have shape ({render(units)},), got {shape_str(state)}", "inputs")
        ctx.require_equal(state[0], units, f"initial state {name} must have {render(units)} units (got {render(state[0])})",
                          "inputs", violation=f"initial state {name} has {render(state[0])} units, the layer {render(units)}")


def recurrent(layer: RecurrentSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    shape, states = inputs[0], inputs[1:]
    if len(shape) != 2:
        ctx.fail(f"expects an input of shape (timesteps, features), got rank {len(shape)}")
    steps, features = shape
    units, cell = layer.units, layer.cell
    if states:
        require_state_shapes(cell.states, states, units, ctx)
    vectors = layer.bias_vectors() if ctx.use_bias(layer.use_bias) else 0
    gate_units = cell.gates * units
    per_unit: Shape = (steps, units)
    activation = cell.activations * activation_flops(layer.activation, per_unit)
    if cell.recurrent_activations:
        activation += cell.recurrent_activations * activation_flops(layer.recurrent_activation, per_unit)  # type: ignore[attr-defined]
    return LayerResult(
        (steps, units) if layer.return_sequences else (units,),
        trainable_params=gate_units * (features + units) + vectors * gate_units,
        macs=steps * gate_units * (features + units),
        dot=steps * gate_units * ((2 * features - 1) + (2 * units - 1)),
        bias=steps * vectors * gate_units,
        activation=activation,
        other=steps * cell.other * units,
        more_outputs=((units,),) * len(cell.states) if layer.return_state else (),
    )


for _rnn in (SimpleRNN, LSTM, GRU):
    register(_rnn)(recurrent)

RECURRENT_TYPES: tuple[type[RecurrentSpec], ...] = (SimpleRNN, LSTM, GRU)

# -- what each counting tool counts on the torch export (torch_modules.recurrent: nn.GRU, or a loop of nn.Linear) --

RECURRENT = ("GRU", "LSTM", "SimpleRNN")
GATES = {"GRU": 3, "LSTM": 4, "SimpleRNN": 1}
LOOP_OPS = {  # the elementwise ops of one step of each loop (the * + - operators)
    "GRU": ("aten::add", "aten::mul", "aten::rsub"),
    "LSTM": ("aten::add", "aten::mul"),
    "SimpleRNN": ("aten::add",),
}


@dataclass(frozen=True)
class NativeRnn:
    """One call of torch.nn.GRU (batch_first) over `steps` steps."""

    steps: sympy.Expr
    input_size: sympy.Expr
    units: sympy.Expr
    bias: bool


def recurrent_dims(row: LayerRow) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    steps, features = row.input_shapes[0]
    return steps, features, row.spec.units


def gru_resets_after(row: LayerRow) -> bool:
    """reset_after=True, or cudnn_compatible (Keras 2's CuDNNGRU computes reset_after=True)."""
    return bool(row.spec.reset_after or getattr(row.spec, "cudnn_compatible", False))


def native_rnn(row: LayerRow, native_gru: bool) -> NativeRnn | None:
    """The torch.nn.GRU the export uses, or None when it writes a loop (KerasGRU, KerasLSTM, KerasRNN): a GRU
    with tanh and sigmoid that resets after (or any such GRU with native_gru). LSTMs are always loops."""
    steps, features, units = recurrent_dims(row)
    spec = row.spec
    standard = getattr(spec, "activation", None) == "tanh" and getattr(spec, "recurrent_activation", None) == "sigmoid"
    if row.type == "GRU" and standard and (gru_resets_after(row) or native_gru):
        return NativeRnn(steps, features, units, has_bias(row))
    return None


def loop_linears(row: LayerRow) -> list[Linear]:
    """The nn.Linear calls of a recurrent loop: the input kernel once over the sequence, the recurrent
    kernel(s) once per step. KerasGRU: recurrent_zr and recurrent_h (no bias), or, resetting after,
    recurrent_kernel with a bias; KerasLSTM: recurrent_kernel, with a bias only if cudnn_compatible;
    KerasRNN: recurrent_kernel without bias."""
    steps, features, units = recurrent_dims(row)
    bias = has_bias(row)
    gates = GATES[row.type]
    kernel = Linear(ONE, steps, features, gates * units, bias)
    if row.type == "GRU" and not gru_resets_after(row):
        return [kernel, Linear(steps, ONE, units, 2 * units, False), Linear(steps, ONE, units, units, False)]
    recurrent_bias = bias and (row.type == "GRU" or (row.type == "LSTM" and bool(row.spec.cudnn_compatible)))
    return [kernel, Linear(steps, ONE, units, gates * units, recurrent_bias)]


def loop_activations(row: LayerRow) -> list[Activation]:
    """Activation calls of a recurrent loop per the export: GRU z, r (recurrent) and hh; LSTM i, f, o
    (recurrent), g and c; SimpleRNN one, each on `units` elements once per step."""
    steps, _, units = recurrent_dims(row)
    spec = row.spec
    if row.type == "SimpleRNN":
        calls = [(spec.activation, 1)]
    elif row.type == "GRU":
        calls = [(spec.recurrent_activation, 2), (spec.activation, 1)]
    else:
        calls = [(spec.recurrent_activation, 3), (spec.activation, 2)]
    return [Activation(name, units, steps * n) for name, n in calls if name != "linear"]


def torch_recurrent(row: LayerRow) -> sympy.Expr:
    """nn.GRU on CPU decomposes to mm/addmm: the input projection (T x I)·(I x 3H) and one (1 x H)·(H x 3H) per step,
    `mm_flop` each: 2 · T · 3H · (I + H); a loop's nn.Linear calls (KerasGRU, KerasLSTM, KerasRNN) give the same,
    2 · T · G·H · (I + H) for G gate blocks."""
    steps, features, units = recurrent_dims(row)
    return 2 * steps * GATES[row.type] * units * (features + units)


def _thop(row: LayerRow, native_gru: bool) -> sympy.Expr:
    rnn = native_rnn(row, native_gru)
    if rnn is not None:
        i, h = rnn.input_size, rnn.units
        cell = 3 * ((h + i) * h + h) + (6 * h if rnn.bias else 0) + h + 3 * h  # _count_gru_cell
        return rnn.steps * cell
    return sympy.Add(*(tools.thop_linear(linear) for linear in loop_linears(row)))


def thop_recurrent(row: LayerRow) -> sympy.Expr:
    """nn.GRU -> `count_gru` -> `_count_gru_cell` per step: 3·((H + I)·H + H) + 6H with bias + H (r hadamard) + 3H
    (h' = (1 - z)·n + z·h), times the steps. A loop (KerasGRU/KerasLSTM/KerasRNN) counts its nn.Linear calls
    with `count_linear`, and nothing for the gate arithmetic."""
    return _thop(row, native_gru=True)


def thop_loop_gru(row: LayerRow) -> sympy.Expr:
    """As `thop_recurrent`, for to_torch's default: a reset_after=False GRU is KerasGRU, `count_linear` per call."""
    return _thop(row, native_gru=False)


def _ptflops(row: LayerRow, native_gru: bool) -> sympy.Expr:
    rnn = native_rnn(row, native_gru)
    if rnn is not None:
        i, h = rnn.input_size, rnn.units
        step = 3 * h * i + 3 * h * h + h + 3 * h + 3 * h  # rnn_flops: W_ih, W_hh, r hadamard, both states, last ops
        return rnn.steps * (step + (6 * h if rnn.bias else ZERO))
    linears = sum((tools.ptflops_linear(linear) for linear in loop_linears(row)), ZERO)
    return linears + tools.ptflops_activations(loop_activations(row))


def ptflops_recurrent(row: LayerRow) -> sympy.Expr:
    """nn.GRU -> `rnn_flops_counter_hook` + `rnn_flops` per step: numel(W_ih) + numel(W_hh) + H (r hadamard) + 3H
    (adding both states) + 3H (last hadamards and add) + len(b_ih) + len(b_hh) with bias; times batch · seq_length.
    A loop (KerasGRU, KerasLSTM, KerasRNN) counts its nn.Linear calls (`linear_flops_counter_hook`) and its patched
    activations."""
    return _ptflops(row, native_gru=True)


def ptflops_loop_gru(row: LayerRow) -> sympy.Expr:
    """As `ptflops_recurrent`, for to_torch's default: a reset_after=False GRU is KerasGRU (nn.Linear calls)."""
    return _ptflops(row, native_gru=False)


def _fvcore(row: LayerRow, native_gru: bool) -> tools.Outcome:
    if native_rnn(row, native_gru) is not None:
        return tools.Skipped("aten::gru (torch.nn.GRU) is unsupported")
    linears = sum((linear.macs for linear in loop_linears(row)), ZERO)
    ops = [*LOOP_OPS[row.type], *(op for a in loop_activations(row) for op in ACTIVATION_OPS[a.name])]
    return tools.Skipped(f"gate arithmetic: {tools.fvcore_unsupported(ops)}", linears)


def fvcore_recurrent(row: LayerRow) -> tools.Outcome:
    """torch.nn.GRU traces to aten::gru, which fvcore has no handle for (fvcore#98): the whole layer counts 0.
    A loop (KerasGRU, KerasLSTM, KerasRNN) counts its nn.Linear calls (`linear_flop_jit`,
    prod(input) · out_features each); its gate arithmetic (aten::add, mul, rsub, sigmoid, tanh) is unsupported."""
    return _fvcore(row, native_gru=True)


def fvcore_loop_gru(row: LayerRow) -> tools.Outcome:
    """As `fvcore_recurrent`, for to_torch's default: a reset_after=False GRU is KerasGRU, counted by its nn.Linear
    calls."""
    return _fvcore(row, native_gru=False)


counted_as("GRU", torch=torch_recurrent, thop=thop_recurrent, ptflops=ptflops_recurrent, fvcore=fvcore_recurrent,
           loop_gru=dict(thop=thop_loop_gru, ptflops=ptflops_loop_gru, fvcore=fvcore_loop_gru))
counted_as("LSTM", "SimpleRNN", torch=torch_recurrent, thop=thop_recurrent, ptflops=ptflops_recurrent,
           fvcore=fvcore_recurrent)


# -- training (one optimizer step, whole batch; docs/conventions.md#training) --

@dataclass(frozen=True)
class CellBackward:
    """The elementwise backward of one step per unit, the activations' apart: each product's and subtraction's
    backward and each add merging two gradients of a value the step reads twice. `later`: a step whose h_{t-1}
    needs a gradient (t >= 2); `first`: step 1 when no initial state needs one (h_0 is zeros, or a carried stateful
    state); `first_weights`: what step 1 adds when the recurrent kernel trains; `first_state`: step 1 when the state
    input `state` (an index into the cell's states) needs a gradient."""

    later: int
    first: int
    first_weights: int
    first_state: int
    state: int = 0


# SimpleRNN: h = act(x·W + h·U + b): the adds pass the gradient on.
# GRU, reset after (Keras' order z, r, h; hz, hr, hn = h·U + b_rec): h' = z·h + (1 - z)·n: d(1 - z) = g·n and
#   dn = g·(1 - z) 2, dz = -d(1 - z) 1, dz += g·h 1 and the merge of dz's two 1, dh = g·z 1; n = act(xh + r·hn):
#   dr = dm·hn 1, dhn = dm·r 1 (at step 1 only for dU, or dh_0); h_{t-1} read by z·h and h·U: 1 merge. 9; step 1: 6.
# GRU, reset before: the same through h' (6 with dz's merge, dh = g·z apart); q = r·h, then q·U_h: dr = dq·h 1,
#   dh = dq·r 1; h_{t-1} read by z·h, h·U_zr and r·h: 2 merges. 10; step 1: 6 (dr = dq·h_0 is computed: r trains).
# LSTM: h' = o·act(c'): do = g·act(c'), d act = g·o 2; c' = f·c + i·gg: df = dc·c, di = dc·gg, dgg = dc·i 3,
#   dc_{t-1} = dc·f 1 (step 1: only for an initial c_0). 6; step 1: 5. dc' merges (act(c'), step t+1) apart.
CELL_BACKWARD = {"SimpleRNN": CellBackward(0, 0, 0, 0), "GRU_after": CellBackward(9, 6, 1, 9),
                 "GRU_before": CellBackward(10, 6, 0, 10), "LSTM": CellBackward(6, 5, 0, 6, state=1)}


def cell_key(row: LayerRow) -> str:
    if row.type != "GRU":
        return row.type
    return "GRU_after" if gru_resets_after(row) else "GRU_before"


@dataclass(frozen=True)
class InputNeeds:
    """Which of a recurrent layer's inputs need a gradient: the sequence, and each initial state (h; LSTM h, c)."""

    sequence: bool
    states: tuple[bool, ...]

    def state(self, index: int) -> bool:
        return index < len(self.states) and self.states[index]


def input_needs(row: LayerRow, needs: train.Needs) -> InputNeeds:
    """With initial states, dL/dx and dL/dh_0 each follow their own input's need (training.Needs.inputs, in the
    row's input order); a Needs without them leaves it open: refused."""
    states = len(row.input_shapes) - 1
    if not states or not needs.input:
        return InputNeeds(needs.input, (False,) * states)
    per_input = getattr(needs, "inputs", None)
    if not per_input:
        raise train.NoBackwardRule(
            f"no training rule for a {row.type} with an initial state when some input needs a gradient yet: "
            "the training step says only that one of the sequence and the states does", layer=row.name,
            layer_type=row.type)
    return InputNeeds(bool(per_input[0]), tuple(bool(n) for n in per_input[1:]))


def dropout_masks(row: LayerRow) -> tuple[int, int]:
    """The masks Keras' cell draws per sequence, (on the input, on h): with recurrent_dropout it runs implementation
    1, one mask per gate block and the kernels split by gate (SimpleRNN: one each); else one input mask."""
    spec = row.spec
    per_gate = GATES[row.type] if spec.recurrent_dropout else 1
    return (per_gate if spec.dropout else 0), (per_gate if spec.recurrent_dropout else 0)


def dropout_forward(row: LayerRow, batch: sympy.Expr) -> sympy.Expr:
    """Training mode's extra forward per sample: each mask is `dropout(ones)` of I (or H) elements, the kept ones
    scaled by 1/(1 - rate), 1 each (Keras' torch backend: one op per mask element; drawing is not counted), then
    multiplies the input (or h) at every step: (T + 1)·(masks·I + masks·H)."""
    steps, features, units = recurrent_dims(row)
    on_input, on_state = dropout_masks(row)
    return batch * (steps + 1) * (on_input * features + on_state * units)


def rnn_backward(row: LayerRow, batch: sympy.Expr, weights: bool, inputs: InputNeeds,
                 states_read: tuple[bool, ...] | None = None) -> train.Backward:
    """Backpropagation through time over B samples of T steps, I features, H units, G gate blocks; per sample:
    step t receives dh_t (the output's gradient at t with return_sequences, or at T only, plus step t+1's: an add,
    H per step where both arrive), then the gates' elementwise backward (CELL_BACKWARD per unit, and the
    activations' per element) gives da_t (G·H); dh_{t-1} = da_t·Uᵀ, H gradients of G·H terms, for t >= 2 (at t = 1
    only for an initial state that needs it: dL/dh_0, under grad input). dL/dx_t = da_t·Wᵀ: I gradients of G·H
    terms; dW = Σ x_tᵀ·da_t, dU = Σ h_{t-1}ᵀ·da_t, db = Σ da_t (per bias vector), each a sum over the B·T rows
    (step 1's h_0 term included, as the forward computes it). LSTM: the dc merges, (T - 1)·H. return_state: each
    state's gradient added into the last step's, H per state that a gradient arrives at (states_read; None: all).
    Dropout masks (dropout_masks): dx_t·mask, I per mask and step (the kernels split by gate then: their merges and
    the dot products' saved adds cancel), dh·mask, H per recurrent mask at each step with dh_{t-1}."""
    spec, key = row.spec, cell_key(row)
    steps, features, units = recurrent_dims(row)
    gate_units, rows, cell = GATES[row.type] * units, batch * steps, CELL_BACKWARD[key]
    on_input, on_state = dropout_masks(row)
    h0 = inputs.state(0)  # dL/dh_0 = da_1·Uᵀ
    through_h = (steps - 1) * train.dot_product_gradients(units, gate_units)
    first_h = train.dot_product_gradients(units, gate_units) if h0 else ZERO
    if key == "GRU_before":  # dq = dq̂·U_hᵀ at every step (r needs it), dh = d(z, r)·U_zrᵀ after the first
        through_h = steps * train.dot_product_gradients(units, units) + (steps - 1) * train.dot_product_gradients(
            units, 2 * units)
        first_h = train.dot_product_gradients(units, 2 * units) if h0 else ZERO
    first = cell.first + (cell.first_weights if weights else 0)
    first_state = cell.first_state - first if inputs.state(cell.state) else 0
    merges = (steps - 1) if spec.return_sequences else ZERO
    if row.type == "LSTM":
        merges += steps - 1  # c_t read by act(c_t) and by step t+1
    if spec.return_state:
        merges += len(spec.cell.states) if states_read is None else sum(states_read)
    per_step: Shape = (steps, units)
    activations = spec.cell.activations * train.activation_backward(spec.activation, per_step, batch, row.name)
    if spec.cell.recurrent_activations:
        activations += spec.cell.recurrent_activations * train.activation_backward(
            spec.recurrent_activation, per_step, batch, row.name)
    vectors = spec.bias_vectors() if has_bias(row) else 0
    sequence = rows * (train.dot_product_gradients(features, gate_units) + on_input * features)
    return train.Backward(
        grad_input=(sequence if inputs.sequence else ZERO)
        + batch * (first_h + units * (first_state + (on_state if h0 else 0))),
        grad_weight=(train.dot_product_gradients((features + units) * gate_units, rows)
                     + vectors * train.bias_gradient(gate_units, rows, True)) if weights else ZERO,
        grad_other=batch * (through_h + units * ((steps - 1) * (cell.later + on_state) + first + merges)) + activations,
        forward=batch * row.counts.flops + dropout_forward(row, batch) if on_input or on_state else None,
    )


def train_recurrent(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """rnn_backward: BPTT, per step: dh_t = output's + step t+1's (H adds where both), the gates' elementwise
    backward (SimpleRNN 0, GRU 9 resetting after / 10 before, LSTM 6 per unit; step 1 less: h_0 needs no gradient),
    the activations', dh_{t-1} = da_t·Uᵀ (H·(2GH - 1)); dx_t = da_t·Wᵀ (I·(2GH - 1)); dW, dU, db sums over B·T.
    Training mode: B times the inference forward, and the dropout masks (dropout_forward)."""
    states = len(row.spec.cell.states) if row.spec.return_state else 0
    return rnn_backward(row, batch, needs.weights, input_needs(row, needs),
                        tuple(needs.output_needs(1 + i) for i in range(states)))


def torch_rnn_backward(row: LayerRow, batch: sympy.Expr, weights: bool, inputs: InputNeeds) -> train.Backward:
    """FlopCounterMode on to_torch's default export (nn.GRU, or the KerasGRU / KerasLSTM / KerasRNN loop), 2 per MAC
    of each linear's backward mm: the input kernel's dL/dx 2·B·T·I·G·H (if the sequence needs it) and dL/dW the
    same; the recurrent kernel's dL/dU at every step, 2·B·T·H·G·H, and its dL/dh at the steps after the first,
    2·B·(T - 1)·H·G·H (h_0 is zeros, no gradient; an initial state that needs one: at step 1 too, under grad input);
    KerasGRU resetting before: recurrent_zr's dL/dh so, 2·B·H·2H per step, and recurrent_h's on r·h at all T steps
    (r needs it), 2·B·T·H·H. Bias sums, the gate arithmetic and dL/dc_0: no formula. The export has no dropout."""
    steps, features, units = recurrent_dims(row)
    gate_units = GATES[row.type] * units
    kernel = 2 * batch * steps * features * gate_units
    state_units = gate_units
    through_h = ZERO
    if cell_key(row) == "GRU_before":
        state_units, through_h = 2 * units, 2 * batch * steps * units * units
    through_h += 2 * batch * (steps - 1) * units * state_units
    return train.Backward(
        grad_input=(kernel if inputs.sequence else ZERO) + (2 * batch * units * state_units if inputs.state(0) else ZERO),
        grad_weight=kernel + 2 * batch * steps * units * gate_units if weights else ZERO, grad_other=through_h)


def torch_train_recurrent(row: LayerRow, batch: sympy.Symbol, needs: train.Needs) -> train.Backward:
    """torch_rnn_backward: FlopCounterMode's mm of the loop's (or nn.GRU's) linears: dL/dx and dL/dW of the input
    kernel 2·B·T·I·G·H each, dL/dU 2·B·T·H·G·H, dL/dh 2·B·(T - 1)·H·G·H (KerasGRU resetting before:
    2·B·H·(2H·(T - 1) + H·T))."""
    return torch_rnn_backward(row, batch, needs.weights, input_needs(row, needs))


trains_as(*RECURRENT, rule=train_recurrent, torch=torch_train_recurrent)


# -- export --

def _loop_state(layer: RecurrentSpec) -> dict[str, object]:
    return dict(return_sequences=layer.return_sequences, go_backwards=layer.go_backwards,
                return_state=layer.return_state or None)


@TORCH_BUILDERS.register("GRU")
def torch_gru(layer: GRU, plan: LayerPlan) -> Construct:
    """nn.GRU computes Keras' reset_after=True GRU with sigmoid/tanh; anything else gets KerasGRU,
    a loop over time with nn.Linear kernels. `native_gru=True` exports every GRU with sigmoid/tanh as
    nn.GRU, as a straightforward port does (for reset_after=False that is another function: same
    MACs, 3*units more bias parameters); other activations stay loops."""
    _steps, features = plan.input_shapes[0]  # then the initial state, if any
    units = plan.int(layer.units)
    standard = layer.activation == "tanh" and layer.recurrent_activation == "sigmoid"
    reset_after = layer.reset_after or layer.cudnn_compatible  # Keras 2's CuDNNGRU computes reset_after=True
    if standard and (reset_after or plan.options.get("native_gru")):
        return Construct.of("GRU", input_size=features, units=units, use_bias=plan.use_bias(layer.use_bias),
                            **_loop_state(layer))
    return Construct.of(
        "KerasGRU",
        input_size=features,
        units=units,
        activation=layer.activation,
        recurrent_activation=layer.recurrent_activation,
        use_bias=plan.use_bias(layer.use_bias),
        reset_after=reset_after,
        **_loop_state(layer),
    )


@TORCH_BUILDERS.register("SimpleRNN")
def torch_simple_rnn(layer: SimpleRNN, plan: LayerPlan) -> Construct:
    _steps, features = plan.input_shapes[0]  # then the initial state, if any
    return Construct.of("KerasRNN", input_size=features, units=plan.int(layer.units), activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias), **_loop_state(layer))


@TORCH_BUILDERS.register("LSTM")
def torch_lstm(layer: LSTM, plan: LayerPlan) -> Construct:
    """KerasLSTM, a loop with nn.Linear kernels (nn.LSTM's fused CPU kernel is invisible to
    FlopCounterMode); cudnn_compatible adds the second bias vector of CuDNNLSTM and nn.LSTM."""
    _steps, features = plan.input_shapes[0]  # then the initial state, if any
    return Construct.of("KerasLSTM", input_size=features, units=plan.int(layer.units), activation=layer.activation,
                        recurrent_activation=layer.recurrent_activation, use_bias=plan.use_bias(layer.use_bias),
                        return_sequences=layer.return_sequences, go_backwards=layer.go_backwards,
                        recurrent_bias=layer.cudnn_compatible, return_state=layer.return_state or None)


@KERAS_BUILDERS.register("GRU")
def keras_gru(layer: GRU, plan: LayerPlan) -> Construct:
    # cudnn_compatible: Keras 2's CuDNNGRU, which computes reset_after=True (its two bias vectors)
    return Construct.of(
        "GRU",
        units=plan.int(layer.units),
        activation=layer.activation,
        recurrent_activation=layer.recurrent_activation,
        use_bias=plan.use_bias(layer.use_bias),
        reset_after=layer.reset_after or layer.cudnn_compatible,
        return_sequences=layer.return_sequences,
        return_state=layer.return_state or None,
        go_backwards=layer.go_backwards,
        dropout=layer.dropout,
        recurrent_dropout=layer.recurrent_dropout,
    )


@KERAS_BUILDERS.register("SimpleRNN")
def keras_simple_rnn(layer: SimpleRNN, plan: LayerPlan) -> Construct:
    return Construct.of("SimpleRNN", units=plan.int(layer.units), activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias), return_sequences=layer.return_sequences,
                        return_state=layer.return_state or None, go_backwards=layer.go_backwards, dropout=layer.dropout,
                        recurrent_dropout=layer.recurrent_dropout)


@KERAS_BUILDERS.register("LSTM")
def keras_lstm(layer: LSTM, plan: LayerPlan) -> Construct:
    # cudnn_compatible (Keras 2's CuDNNLSTM): Keras 3 has no layer with its second bias vector; the two
    # only ever add up, so a Keras 3 LSTM computes the same function with 4*units fewer params.
    return Construct.of("LSTM", units=plan.int(layer.units), activation=layer.activation,
                        recurrent_activation=layer.recurrent_activation, use_bias=plan.use_bias(layer.use_bias),
                        return_sequences=layer.return_sequences, return_state=layer.return_state or None,
                        go_backwards=layer.go_backwards, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout)
