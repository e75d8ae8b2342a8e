"""Wrappers: Bidirectional (around SimpleRNN, LSTM or GRU) and TimeDistributed
(around any one-input layer). The wrapped layer is written inline:
`layer: {type: LSTM, units: 64}`, and is counted by its own handler.

Bidirectional: a forward and a backward copy, so twice the inner layer's params
and costs; the two outputs merge by merge_mode: concat (last axis 2H, free),
sum or mul (1 FLOP per output element, 'other'), ave (2: add, halve).
merge_mode None (two separate outputs) is not supported yet.

TimeDistributed: the inner layer applied to each of the T slices of the input
(T, ...): its params once, its costs T times; output (T, *inner output).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationError, ValidationInfo

from analyzer.errors import did_you_mean
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.recurrent import RECURRENT_TYPES
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


@register(Bidirectional)
def bidirectional(layer: Bidirectional, inputs: list[Shape], ctx: LayerContext) -> LayerResult:
    (shape,) = inputs
    if not isinstance(layer.layer, RECURRENT_TYPES):
        ctx.fail(f"wraps a recurrent layer (SimpleRNN, LSTM, GRU), got {layer.layer.type}", "layer")
    if layer.merge_mode is None:
        ctx.fail("merge_mode None (forward and backward as two outputs) is not supported yet", "merge_mode",
                 hint="use concat, sum, mul or ave")
    one = inner_result(layer.layer, shape, ctx)
    out = one.output_shape
    if layer.merge_mode == "concat":
        out = (*out[:-1], 2 * out[-1])
    return scaled(one, 2, out, other=MERGE_FLOPS[layer.merge_mode] * product(out), params_factor=2)


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
