"""BatchNormalization, InstanceNormalization, LayerNormalization."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.importers.onnx.registry import handles
from analyzer.importers.onnx.values import float32, norm_axis

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


@handles("BatchNormalization")
def batch_normalization(imp: ImportContext) -> None:
    x = imp.data(imp.node.input[0])
    if 1 not in x.axes:
        raise imp.error("BatchNormalization over a size-1 channel axis")
    if len([o for o in imp.node.output if o]) > 1:
        raise imp.error("BatchNormalization in training mode (running statistics as outputs)")
    attrs = imp.attrs()
    fields: dict[str, Any] = {}
    axis = imp.spec_axis(x, 1)
    if axis != -1:
        fields["axis"] = axis
    fields["epsilon"] = float32(attrs.get("epsilon", 1e-5))
    # gamma and beta are params when they are weights; torch's affine=False writes constants instead
    if not imp.is_weight(imp.node.input[1]):
        fields["scale"] = False
    if not imp.is_weight(imp.node.input[2]):
        fields["center"] = False
    imp.unary_on(x, "BatchNormalization", fields)
    if fields.get("scale") is False or fields.get("center") is False:
        imp.bias_slots[imp.node.output[0]] = (imp.doc.layers[-1].name, 1, "norm")


@handles("InstanceNormalization")
def instance_normalization(imp: ImportContext) -> None:
    x = imp.channels_last(imp.data(imp.node.input[0]), "InstanceNormalization")
    imp.unary_on(x, "GroupNormalization", {"groups": -1, "epsilon": float32(imp.attrs().get("epsilon", 1e-5))})


@handles("LayerNormalization")
def layer_normalization(imp: ImportContext) -> None:
    x = imp.data(imp.node.input[0])
    attrs = imp.attrs()
    if len([o for o in imp.node.output if o]) > 1:
        raise imp.error("LayerNormalization with mean / inverse std outputs")
    start = norm_axis(attrs.get("axis", -1), x.rank)
    axes = [a for a in range(start, x.rank) if a in x.axes]
    if x.batch >= start:
        raise imp.error("LayerNormalization over the batch axis")
    keras_axes = sorted(x.axes.index(a) + 1 for a in axes)
    fields: dict[str, Any] = {}
    if keras_axes != [len(x.axes)]:
        fields["axis"] = keras_axes if len(keras_axes) > 1 else keras_axes[0]
    fields["epsilon"] = float32(attrs.get("epsilon", 1e-5))
    if not imp.optional_input(2):
        fields["center"] = False
    imp.unary_on(x, "LayerNormalization", fields)
