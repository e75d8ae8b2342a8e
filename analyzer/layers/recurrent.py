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
Output: (T, H) with return_sequences, else (H,). return_state (several outputs)
is not supported yet: the graph gives each layer one output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import StrictBool, StrictInt

from analyzer.layers.activations import ActivationName, activation_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.spec.fields import Rate, Size


@dataclass(frozen=True)
class Cell:
    gates: int  # G: blocks of H units computed from x and h
    other: int  # elementwise gate arithmetic per unit per step
    recurrent_activations: int  # per unit per step
    activations: int  # per unit per step


SIMPLE_RNN_CELL = Cell(gates=1, other=1, recurrent_activations=0, activations=1)
LSTM_CELL = Cell(gates=4, other=8, recurrent_activations=3, activations=2)
GRU_CELL = Cell(gates=3, other=8, recurrent_activations=2, activations=1)


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


def recurrent(layer: RecurrentSpec, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) != 2:
        ctx.fail(f"expects an input of shape (timesteps, features), got rank {len(shape)}")
    if layer.return_state:
        ctx.fail("return_state is not supported yet (it gives the layer several outputs; nnspec's graph gives "
                 "each layer one)", "return_state", hint="the counts do not depend on it: drop it, or use return_sequences")
    steps, features = shape
    units, cell = layer.units, layer.cell
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
    )


for _rnn in (SimpleRNN, LSTM, GRU):
    register(_rnn)(recurrent)

RECURRENT_TYPES: tuple[type[RecurrentSpec], ...] = (SimpleRNN, LSTM, GRU)
