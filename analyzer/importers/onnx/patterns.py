"""Layers torch.onnx writes as several elementary nodes, read ahead from their first node and written as
the one spec layer they are: hard_sigmoid as relu6(x + 3) / 6, softsign as x / (1 + |x|), a
GroupNormalization as an InstanceNormalization of the channels reshaped to (N, groups, -1). The nodes
read ahead are claimed (context.claimed): when the loop reaches them, they only pass the result on.
Each pattern is matched whole or not at all (then the first node is read as it would be alone)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.values import BATCH, Const, Data, float32

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


def sole_consumer(imp: ImportContext, name: str, op_type: str) -> Any:
    """The one node that reads `name`, if it is an `op_type` and nothing else (no model output) reads it."""
    nodes = imp.consumer_nodes.get(name, [])
    if len(nodes) == 1 and imp.consumers[name] == 1 and nodes[0].op_type == op_type:
        return nodes[0]
    return None


def constant_array(imp: ImportContext, name: str) -> Any:
    """The numpy value of a constant (not a weight), else None; also read ahead: a pattern looks at
    Constant nodes that come after the node it starts from."""
    value = imp.values.get(name)
    producer = imp.producers.get(name)
    if value is None and producer is not None and producer.op_type == "Constant":
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in producer.attribute}
        return imp.numpy_helper.to_array(attrs["value"]) if "value" in attrs else None
    if not isinstance(value, Const) or value.opaque or value.weight:
        return None
    return imp.const(name)


def scalar(imp: ImportContext, name: str) -> float | None:
    """The value of a one-element constant, else None."""
    array = constant_array(imp, name)
    if array is None or array.size != 1 or array.dtype == object:
        return None
    return float(array.reshape(-1)[0])


def claim(imp: ImportContext, node: Any, result: Data | None) -> None:
    """When the loop reaches `node`, its output is `result` (None: a step inside the pattern, read by
    nothing but the pattern's next node)."""

    def pass_on(imp: ImportContext) -> None:
        if result is not None:
            imp.set_output(result)

    imp.claimed[node.output[0]] = pass_on


def clip_bounds(imp: ImportContext, node: Any) -> tuple[float | None, float | None]:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    low, high = attrs.get("min"), attrs.get("max")
    if len(node.input) > 1 and node.input[1]:
        low = scalar(imp, node.input[1])
    if len(node.input) > 2 and node.input[2]:
        high = scalar(imp, node.input[2])
    return low, high


def hard_sigmoid(imp: ImportContext, data_name: str, const_name: str) -> bool:
    """At Add(x, 3): Clip(0, 6) then Div by 6 (Keras' hard_sigmoid, as relu6(x + 3) / 6) -> Activation."""
    if imp.node.op_type != "Add" or scalar(imp, const_name) != 3.0:
        return False
    clip = sole_consumer(imp, imp.node.output[0], "Clip")
    if clip is None or clip.input[0] != imp.node.output[0] or clip_bounds(imp, clip) != (0.0, 6.0):
        return False
    div = sole_consumer(imp, clip.output[0], "Div")
    if div is None or div.input[0] != clip.output[0] or scalar(imp, div.input[1]) != 6.0:
        return False
    write_activation(imp, data_name, "hard_sigmoid", "ONNX Add 3, Clip(0, 6), Div by 6", clip, div)
    return True


def softsign(imp: ImportContext) -> bool:
    """At Abs(x): Add 1 then x divided by it (torch's softsign, x / (1 + |x|)) -> Activation."""
    x_name = imp.node.input[0]
    add = sole_consumer(imp, imp.node.output[0], "Add")
    if add is None or not isinstance(imp.values.get(x_name), Data):
        return False
    other = add.input[1] if add.input[0] == imp.node.output[0] else add.input[0]
    if scalar(imp, other) != 1.0:
        return False
    div = sole_consumer(imp, add.output[0], "Div")
    if div is None or list(div.input) != [x_name, add.output[0]]:
        return False
    write_activation(imp, x_name, "softsign", "ONNX Abs, Add 1, Div", add, div)
    return True


def write_activation(imp: ImportContext, x_name: str, activation: str, description: str, middle: Any, last: Any) -> None:
    """One Activation layer for a chain of three nodes: this one, `middle` and `last` (which gives the output)."""
    x = imp.data(x_name)
    name = imp.node_name()
    shape = imp.add_layer("Activation", name, {"activation": activation}, [x], description=description)
    claim(imp, middle, None)
    claim(imp, last, imp.same_layout(x, name, shape))


def group_normalization(imp: ImportContext) -> bool:
    """At Reshape(x, (0, G, -1)) of an (N, C, ...) tensor: an InstanceNormalization with a constant scale
    of ones and bias of zeros, then a Reshape back to x's shape (torch's GroupNorm) -> GroupNormalization
    (G groups) without gamma and beta; a Mul / Add of per-channel weights after it folds in as scale /
    center (as after a BatchNormalization)."""
    source = imp.values.get(imp.node.input[0])
    if not isinstance(source, Data) or source.batch != 0 or source.rank < 3 or 1 not in source.axes:
        return False
    target = imp.values.get(imp.node.input[1])
    if not isinstance(target, Const) or target.opaque or len(target.dims) != 1 or target.dims[0] != 3:
        return False
    entries = [sympy.sympify(e) for e in imp.const(imp.node.input[1]).reshape(-1)]
    if entries[0] not in (0, BATCH) or entries[2] != -1 or not entries[1].is_Integer:
        return False
    groups = int(entries[1])
    norm = sole_consumer(imp, imp.node.output[0], "InstanceNormalization")
    if norm is None or norm.input[0] != imp.node.output[0]:
        return False
    scale_array, bias_array = (constant_array(imp, n) for n in norm.input[1:3])
    if scale_array is None or bias_array is None or scale_array.size != groups or (scale_array != 1).any() \
            or (bias_array != 0).any():
        return False
    back = sole_consumer(imp, norm.output[0], "Reshape")
    if back is None or back.input[0] != norm.output[0] or not same_shape(imp, back.input[1], imp.node.input[0]):
        return False
    from onnx import helper

    epsilon = next((helper.get_attribute_value(a) for a in norm.attribute if a.name == "epsilon"), 1e-5)
    x = imp.channels_last(imp.data(imp.node.input[0]), "GroupNormalization")
    name = imp.node_name()
    shape = imp.add_layer("GroupNormalization", name,
                          {"groups": groups, "epsilon": float32(epsilon), "center": False, "scale": False}, [x],
                          description="ONNX Reshape to (N, groups, -1), InstanceNormalization, Reshape back")
    claim(imp, norm, None)
    claim(imp, back, imp.same_layout(x, name, shape))
    imp.bias_slots[back.output[0]] = (name, 1, "norm")
    return True


def same_shape(imp: ImportContext, shape_name: str, tensor_name: str) -> bool:
    """Whether the shape `shape_name` is that of the activation `tensor_name`: a Shape node of it (maybe
    further down the graph), or a constant equal to it."""
    producer = imp.producers.get(shape_name)
    if producer is not None and producer.op_type == "Shape" and producer.input[0] == tensor_name:
        return not any(a.name in ("start", "end") for a in producer.attribute)
    value = imp.values.get(shape_name)
    if not isinstance(value, Const) or value.opaque:
        return False
    entries = [sympy.sympify(e) for e in imp.const(shape_name).reshape(-1)]
    dims = imp.data(tensor_name).onnx_shape()
    return len(entries) == len(dims) and all(sympy.expand(a - b) == 0 for a, b in zip(entries[1:], dims[1:],
                                                                                       strict=True))
