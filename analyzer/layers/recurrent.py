"""GRU (Keras semantics), counted exactly per timestep and multiplied by T.

For input (T, I) and H units, each step computes three gates from x_t (I terms)
and h_{t-1} (H terms):
  params: W (I x 3H) + U (H x 3H) + bias 3H (reset_after=False) or 6H (True)
  macs:   T * 3H * (I + H)
  dot:    T * 3H * ((2I - 1) + (2H - 1))   (x·W and h·U are separate products)
  bias:   T * 3H, or T * 6H with reset_after=True
  other:  T * 8H: z and r add their x and h parts (2H), the reset multiply (H),
          the candidate's add (H), h = z*h + (1-z)*hh (4H)
  activation: T * (2H recurrent_activation + H activation)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from analyzer.layers.activations import ActivationName, activation_flops
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import register
from analyzer.spec.fields import Size

GATE_ELEMENTWISE_OPS = 8  # per unit per step, see the module docstring


class GRU(LayerSpec):
    type: Literal["GRU"]
    units: Size
    activation: ActivationName = "tanh"
    recurrent_activation: ActivationName = "sigmoid"
    use_bias: StrictBool = True
    reset_after: StrictBool = True  # Keras 2.x (TF < 2.0) default was False
    return_sequences: StrictBool = False
    go_backwards: StrictBool = False
    dropout: float = Field(default=0.0, ge=0, lt=1)
    recurrent_dropout: float = Field(default=0.0, ge=0, lt=1)


@register(GRU)
def gru(layer: GRU, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) != 2:
        ctx.fail(f"expects an input of shape (timesteps, features), got rank {len(shape)}")
    steps, features = shape
    units = layer.units
    bias = ctx.use_bias(layer.use_bias)
    bias_vectors = (2 if layer.reset_after else 1) if bias else 0
    gate_shape = (steps, units)
    return LayerResult(
        (steps, units) if layer.return_sequences else (units,),
        trainable_params=3 * units * (features + units) + bias_vectors * 3 * units,
        macs=steps * 3 * units * (features + units),
        dot=steps * 3 * units * ((2 * features - 1) + (2 * units - 1)),
        bias=steps * bias_vectors * 3 * units,
        activation=2 * activation_flops(layer.recurrent_activation, gate_shape)
        + activation_flops(layer.activation, gate_shape),
        other=steps * GATE_ELEMENTWISE_OPS * units,
    )
