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
from typing import ClassVar, Literal

from pydantic import StrictBool, StrictInt

from analyzer.layers.activations import ActivationName, activation_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape, shape_str
from analyzer.layers.registry import register
from analyzer.spec.fields import Rate, Size
from analyzer.symbolic import render


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
