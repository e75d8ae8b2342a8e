"""Elementwise ops: activations, functions, Clip, Softmax, and the binary ops (a merge of two
activations, or a bias / scale folded into the layer before)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.importers.onnx.bidirectional import average_directions, merge_directions
from analyzer.importers.onnx.constants import const_binary
from analyzer.importers.onnx.patterns import hard_sigmoid, softsign
from analyzer.importers.onnx.registry import handles
from analyzer.importers.onnx.values import Const, Data, divide, norm_axis, prefix_layout
from analyzer.symbolic import product

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

ACTIVATIONS = {
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Elu": "elu", "Selu": "selu", "LeakyRelu": "leaky_relu",
    "HardSigmoid": "hard_sigmoid", "Softplus": "softplus", "Softsign": "softsign", "Gelu": "gelu",
}
FUNCTIONS = {"Exp": "exp", "Log": "log", "Cos": "cos", "Sin": "sin", "Sqrt": "sqrt", "Abs": "abs", "Neg": "negative"}
MERGES = {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Div": "Multiply", "Max": "Maximum", "Min": "Minimum"}


def unary(imp: ImportContext, type_name: str, fields: dict[str, Any]) -> None:
    x = imp.data(imp.node.input[0])
    name = imp.node_name()
    shape = imp.add_layer(type_name, name, fields, [x])
    imp.set_output(imp.same_layout(x, name, shape))


@handles(*ACTIVATIONS)
def activation(imp: ImportContext) -> None:
    unary(imp, "Activation", {"activation": ACTIVATIONS[imp.node.op_type]})


@handles(*FUNCTIONS)
def function(imp: ImportContext) -> None:
    if imp.node.op_type == "Abs" and softsign(imp):
        return
    unary(imp, "Lambda", {"function": FUNCTIONS[imp.node.op_type]})


@handles("Clip")
def clip(imp: ImportContext) -> None:
    attrs = imp.attrs()
    low = attrs.get("min")
    high = attrs.get("max")
    if imp.optional_input(1):
        low = float(imp.const(imp.node.input[1], "min").reshape(-1)[0])
    if imp.optional_input(2):
        high = float(imp.const(imp.node.input[2], "max").reshape(-1)[0])
    if low == 0 and high == 6:
        unary(imp, "Activation", {"activation": "relu6"})
    elif low == 0 and high is None:
        unary(imp, "Activation", {"activation": "relu"})
    else:
        raise imp.error(f"Clip({low}, {high}) has no spec activation (Clip(0, 6) is relu6)")


@handles("Softmax")
def softmax(imp: ImportContext) -> None:
    x = imp.data(imp.node.input[0])
    opset = imp.opset()
    axis = norm_axis(imp.attrs().get("axis", -1 if opset >= 13 else 1), x.rank)
    if opset < 13 and axis != x.rank - 1:
        raise imp.error("a Softmax before opset 13 over several axes")
    if axis not in x.axes:
        x = imp.identity(x, "Softmax")
    keras_axis = imp.spec_axis(x, axis)
    if keras_axis == -1:
        imp.unary_on(x, "Activation", {"activation": "softmax"})
    else:
        imp.unary_on(x, "Softmax", {"axis": keras_axis})


@handles("Add", "Sub", "Mul", "Div")
def binary(imp: ImportContext) -> None:
    a, b = imp.value(imp.node.input[0]), imp.value(imp.node.input[1])
    op = imp.node.op_type
    if isinstance(a, Const) and isinstance(b, Const):
        function = {"Add": lambda x, y: x + y, "Sub": lambda x, y: x - y, "Mul": lambda x, y: x * y,
                    "Div": divide}[op]
        const_binary(imp, function)
        return
    if isinstance(a, Data) and isinstance(b, Data):
        if op in ("Add", "Mul") and (a.reversed_axis is not None or b.reversed_axis is not None):
            forward, backward = (b, a) if a.reversed_axis is not None else (a, b)
            merge_directions(imp, forward, backward, "sum" if op == "Add" else "mul")  # a Bidirectional
            return
        merge(imp, imp.data(imp.node.input[0]), imp.data(imp.node.input[1]))
        return
    data_name, const_name = imp.node.input[0], imp.node.input[1]
    if not isinstance(a, Data):
        data_name, const_name = const_name, data_name
    if op in ("Add", "Mul") and fold_bias(imp, data_name, const_name):
        return
    if op == "Add" and hard_sigmoid(imp, data_name, const_name):
        return
    if op == "Div" and data_name == imp.node.input[0] and average(imp, imp.data(data_name), const_name):
        return
    if op == "Div" and data_name == imp.node.input[0] and average_directions(imp, imp.data(data_name), const_name):
        return
    raise imp.error(f"{op} of an activation tensor and a constant: no spec layer computes that "
                     "(a bias Add right after MatMul or Conv is read, and a Div of a sum of n tensors by n: "
                     "Average)", hint="docs/importers.md#onnx lists what the ONNX importer reads")


@handles("Max", "Min")
def extremum(imp: ImportContext) -> None:
    """Max / Min of two activations: Maximum / Minimum (of constants only, they are folded before)."""
    inputs = [i for i in imp.node.input if i]
    if len(inputs) != 2 or not all(isinstance(imp.value(i), Data) for i in inputs):
        raise imp.error(f"{imp.node.op_type} of {len(inputs)} tensors, not two activations: only Maximum / "
                        "Minimum of two activation tensors has a spec layer")
    merge(imp, imp.data(inputs[0]), imp.data(inputs[1]))


def average(imp: ImportContext, x: Data, const_name: str) -> bool:
    """(a + b + ...) / n, as torch writes Keras' Average of n tensors: the Add layers become one Average."""
    divisor = imp.const(const_name, "divisor")
    if divisor.size != 1:
        return False
    terms: list[str] = []
    adds: list[str] = []

    def collect(layer: str, top: bool) -> None:
        doc = next((d for d in imp.doc.layers if d.name == layer), None)
        if doc is not None and doc.type == "Add" and (top or imp.spec_uses[layer] == 1):
            adds.append(layer)
            for source in doc.inputs or []:
                collect(source, False)
        else:
            terms.append(layer)

    collect(x.layer, True)
    if not adds or imp.spec_uses[x.layer] or imp.consumers[imp.node.input[0]] != 1:
        return False
    if float(divisor.reshape(-1)[0]) != len(terms):
        return False
    top = imp.doc.layer(x.layer)
    # the inner Adds of a chain ((a + b) + c) / 3 go: their terms are the Average's
    imp.doc.layers = [d for d in imp.doc.layers if d.name not in adds[1:]]
    top.type = "Average"
    top.inputs = terms
    top.comment = f"ONNX Add then Div by {len(terms)}"
    imp.refresh(top)
    imp.set_output(x)
    return True


def merge(imp: ImportContext, a: Data, b: Data) -> None:
    op = imp.node.op_type
    if a.rank != b.rank:
        raise imp.error(f"{op} of tensors of ranks {a.rank} and {b.rank}: nnspec needs the batch axes aligned")
    if (a.axes, a.batch) != (b.axes, b.batch) and not (prefix_layout(a) and prefix_layout(b)):
        a, b = imp.identity(a, op), imp.identity(b, op)
    name = imp.node_name()
    description = "ONNX Div, counted as one operation per element like Multiply" if op == "Div" else None
    shape = imp.add_layer(MERGES[op], name, {}, [a, b], description)
    wide = a if len(a.shape) >= len(b.shape) else b
    if (a.axes, a.batch) == (b.axes, b.batch):
        imp.set_output(imp.same_layout(a, name, shape))
    else:
        imp.set_output(Data(name, shape, tuple(range(wide.rank - len(shape), wide.rank)), 0, wide.rank))


def fold_bias(imp: ImportContext, data_name: str, const_name: str) -> bool:
    slot = imp.bias_slots.get(data_name)
    if slot is None or imp.consumers[data_name] != 1 or not imp.is_weight(const_name):
        return False
    layer_name_, channel_axis, kind = slot
    op = imp.node.op_type
    field = {("bias", "Add"): "use_bias", ("norm", "Add"): "center", ("norm", "Mul"): "scale"}.get((kind, op))
    layer = imp.doc.layer(layer_name_)
    if field is None or layer.fields.get(field) is not False:
        return False
    x = imp.data(data_name, reversed_ok=True)  # a bias keeps a reversal (the input kernel of a go_backwards loop)
    dims = imp.const_dims(const_name)
    channels = x.onnx_shape()[channel_axis]
    if product(dims) != channels or len(dims) > x.rank:
        return False
    aligned = [1] * (x.rank - len(dims)) + list(dims)
    if any(d != 1 for i, d in enumerate(aligned) if i != channel_axis):
        return False
    layer.fields.pop(field)  # the spec default: true
    imp.refresh(layer)
    imp.set_output(x)
    if kind == "norm":
        imp.bias_slots[imp.node.output[0]] = slot
    return True
