"""Wrappers: Bidirectional (around SimpleRNN, LSTM or GRU) and TimeDistributed
(around any one-input layer). The wrapped layer is written inline:
`layer: {type: LSTM, units: 64}`, and is counted by its own handler.

Bidirectional: a forward and a backward copy, so twice the inner layer's params
and costs; the two outputs merge by merge_mode: concat (last axis 2H, free),
sum or mul (1 FLOP per output element, 'other'), ave (2: add, halve).
merge_mode None: two outputs, forward and backward (free). With the wrapped
layer's return_state, the states of the forward copy then of the backward one
follow, as in Keras: [output, forward_state_h, forward_state_c, backward_state_h,
backward_state_c] (LSTM; `forward_state` and `backward_state` for GRU and
SimpleRNN), or [forward, backward, forward_..., backward_...] with merge_mode None.
An initial state is the forward copy's states then the backward copy's.

TimeDistributed: the inner layer applied to each of the T slices of the input
(T, ...): its params once, its costs T times; output (T, *inner output).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationError, ValidationInfo

from analyzer.errors import did_you_mean
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.recurrent import RECURRENT_TYPES, require_state_shapes
from analyzer.layers.registry import LAYERS, register
from analyzer.symbolic import ZERO, product

MERGE_FLOPS = {"concat": 0, "sum": 1, "mul": 1, "ave": 2}


def _wrapped_layer(value: Any, info: ValidationInfo) -> LayerSpec:
    """Validate the inline `layer: {type: ..., ...}` with its own type's model."""
    if isinstance(value, LayerSpec):
        return value
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError("layer must be a mapping with a 'type', e.g. {type: LSTM, units: 64}")
    kind = LAYERS.get(value["type"])
    if kind is None:
        raise ValueError(f"unknown layer type {value['type']!r}")
    if "inputs" in value:
        raise ValueError("a wrapped layer takes the wrapper's input: remove its 'inputs'")
    try:
        return kind.spec_model.model_validate(value, context=info.context)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                problems.append(f"missing required field '{where}'")
            elif err["type"] == "extra_forbidden":
                hint = did_you_mean(where, kind.spec_model.model_fields)
                problems.append(f"unknown field '{where}'" + (f" ({hint})" if hint else ""))
            else:
                message = str(err["ctx"]["error"]) if "error" in err.get("ctx", {}) else err["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {message}" if where else message)
        raise ValueError(f"in the wrapped {value['type']}: " + "; ".join(problems)) from None


WrappedLayer = Annotated[LayerSpec, BeforeValidator(_wrapped_layer)]


def inner_result(inner: LayerSpec, shape: Shape, ctx: LayerContext) -> LayerResult:
    """The wrapped layer's result on `shape`, with its params moved to non-trainable if it says trainable: false."""
    result = LAYERS[inner.type].handler(inner, [shape], ctx)
    if not inner.trainable:
        result.non_trainable_params = result.non_trainable_params + result.trainable_params
        result.trainable_params = ZERO
    return result


def scaled(result: LayerResult, factor: Any, output_shape: Shape, other: Any = ZERO, params_factor: Any = 1) -> LayerResult:
    return LayerResult(
        output_shape,
        trainable_params=params_factor * result.trainable_params,
        non_trainable_params=params_factor * result.non_trainable_params,
        macs=factor * result.macs,
        dot=factor * result.dot,
        bias=factor * result.bias,
        activation=factor * result.activation,
        other=factor * result.other + other,
    )


class Bidirectional(LayerSpec):
    type: Literal["Bidirectional"]
    layer: WrappedLayer
    merge_mode: Literal["concat", "sum", "mul", "ave"] | None = "concat"

    def _states(self) -> tuple[str, ...]:
        inner = self.layer
        return inner.state_input_names() if isinstance(inner, RECURRENT_TYPES) else ()

    def output_names(self) -> tuple[str, ...]:
        outputs = ("output",) if self.merge_mode is not None else ("forward", "backward")
        if not getattr(self.layer, "return_state", False):
            return outputs
        return (*outputs, *(f"forward_{s}" for s in self._states()), *(f"backward_{s}" for s in self._states()))

    def state_input_names(self) -> tuple[str, ...]:
        return (*(f"forward_{s}" for s in self._states()), *(f"backward_{s}" for s in self._states()))


@register(Bidirectional)
def bidirectional(layer: Bidirectional, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    shape, states = inputs[0], inputs[1:]
    if not isinstance(layer.layer, RECURRENT_TYPES):
        ctx.fail(f"wraps a recurrent layer (SimpleRNN, LSTM, GRU), got {layer.layer.type}", "layer")
    one = inner_result(layer.layer, shape, ctx)
    if states:
        require_state_shapes(layer.state_input_names(), states, layer.layer.units, ctx)
    out = one.output_shape
    if layer.merge_mode == "concat":
        out = (*out[:-1], 2 * out[-1])
    merge = MERGE_FLOPS[layer.merge_mode] * product(out) if layer.merge_mode is not None else ZERO
    result = scaled(one, 2, out, other=merge, params_factor=2)
    forward_outputs = (out,) if layer.merge_mode is not None else (out, out)
    result.more_outputs = (*forward_outputs[1:], *one.more_outputs, *one.more_outputs)  # each copy's states
    return result


class TimeDistributed(LayerSpec):
    type: Literal["TimeDistributed"]
    layer: WrappedLayer


@register(TimeDistributed)
def time_distributed(layer: TimeDistributed, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if len(shape) < 2:
        ctx.fail(f"expects an input of rank 2 or more (timesteps, ...), got rank {len(shape)}")
    if type(layer.layer).arity != 1:
        ctx.fail(f"wraps a layer with one input, got {layer.layer.type}", "layer")
    steps = shape[0]
    one = inner_result(layer.layer, shape[1:], ctx)
    return scaled(one, steps, (steps, *one.output_shape))
