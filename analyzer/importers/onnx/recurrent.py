"""The recurrent ops (GRU, LSTM, RNN), the last step of their sequence output, and embedding lookups."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.loop_states import same_size, state_output
from analyzer.importers.onnx.registry import handles
from analyzer.importers.onnx.values import Const, Data, norm_axis

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

RNN_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "HardSigmoid": "hard_sigmoid", "Elu": "elu",
                   "Softsign": "softsign", "Softplus": "softplus"}


def embedding(imp: ImportContext, table: Const) -> None:
    if len(table.dims) != 2 or imp.attrs().get("axis", 0) != 0:
        raise imp.error("a Gather from a weight that is not an embedding table (rank 2, axis 0)")
    ids = imp.identity(imp.data(imp.node.input[1]), "an embedding lookup")
    name = imp.node_name()
    shape = imp.add_layer("Embedding", name, {"input_dim": table.dims[0], "output_dim": table.dims[1]}, [ids])
    imp.set_output(Data(name, shape, tuple(range(1, len(shape) + 1)), 0, len(shape) + 1))


def last_step(imp: ImportContext, x: Data, axis: int) -> None:
    """Gather of one time step of a recurrent layer's sequence output: the last one is the layer
    with return_sequences false."""
    axis = norm_axis(axis, x.rank)
    index = imp.const(imp.node.input[1], "index")
    if index.size != 1 or index.ndim != 0:
        raise imp.error("a Gather of several positions from an activation tensor has no spec layer")
    value = sympy.sympify(index.reshape(()).item())
    if axis != x.batch and axis not in x.axes and value in (0, -1):  # a size-1 axis the spec lacks: a Squeeze
        mapping = {a: a - (1 if a > axis else 0) for a in range(x.rank) if a != axis}
        imp.set_output(Data(x.layer, x.shape, tuple(mapping[a] for a in x.axes), mapping[x.batch], x.rank - 1,
                             x.sequence_of))
        return
    layer = x.sequence_of
    steps = x.shape[0] if layer else None
    if layer is None or x.axes.index(axis) != 0 or not (value == -1 or (steps is not None and value == steps - 1)):
        raise imp.error("a Gather from an activation tensor: only the last step of a recurrent output is read "
                         "(as return_sequences=False)")
    if imp.spec_uses[layer]:
        raise imp.error(f"'{layer}' gives its whole sequence to another layer too; a spec layer has one output")
    doc = imp.doc.layer(layer)
    doc.fields.pop("return_sequences", None)
    imp.refresh(doc)
    imp.shapes[layer] = imp.shapes[layer][1:]
    imp.flipped.add(layer)
    axes = tuple(a - (1 if a > axis else 0) for a in x.axes[1:])
    imp.set_output(Data(layer, imp.shapes[layer], axes, x.batch - (1 if x.batch > axis else 0), x.rank - 1))


def recurrent(imp: ImportContext, type_name: str, gates: int) -> None:
    attrs = imp.attrs()
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction == "bidirectional":
        raise imp.error("a bidirectional recurrent op is not read yet",
                         hint="write Bidirectional in the spec, or export each direction as its own layer")
    layout = attrs.get("layout", 0)
    x = imp.data(imp.node.input[0], reversed_ok=True)
    time_axis, batch_axis, feature_axis = (0, 1, 2) if layout == 0 else (1, 0, 2)
    if x.reversed_axis is not None:
        if x.reversed_axis != time_axis or direction != "forward":
            raise imp.error("reads a tensor reversed along an axis other than time, or runs backwards over a "
                            "reversed sequence")
        direction = "reverse"  # the layer over the flipped sequence: Keras' go_backwards
        x = replace(x, reversed_axis=None)
    if x.rank != 3 or x.batch != batch_axis:
        raise imp.error(f"expects its input as {'(T, N, I)' if layout == 0 else '(N, T, I)'}")
    x = imp.ensure_layout(x, [time_axis, feature_axis], type_name)
    weight = imp.const_dims(imp.node.input[1])
    units = attrs.get("hidden_size", weight[1] // gates)
    if type_name == "LSTM" and imp.optional_input(7):
        raise imp.error("LSTM with peepholes (P): no spec layer has them")
    has_bias = imp.optional_input(3) is not None
    names = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    fields: dict[str, Any] = {"units": units}
    defaults = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "SimpleRNN": ["Tanh"]}[type_name]
    names = names or defaults
    if any(n not in RNN_ACTIVATIONS for n in names):
        raise imp.error(f"activations {names}: nnspec knows {', '.join(RNN_ACTIVATIONS)}")
    if type_name == "SimpleRNN":
        if names[0] != "Tanh":
            fields["activation"] = RNN_ACTIVATIONS[names[0]]
    else:
        if type_name == "LSTM" and names[1] != names[2]:
            raise imp.error(f"LSTM activations {names}: Keras uses one activation for the cell and the output")
        if names[0] != "Sigmoid":
            fields["recurrent_activation"] = RNN_ACTIVATIONS[names[0]]
        if names[1] != "Tanh":
            fields["activation"] = RNN_ACTIVATIONS[names[1]]
    if not has_bias:
        fields["use_bias"] = False
    if type_name == "GRU":
        reset_after = bool(attrs.get("linear_before_reset", 0))
        if not reset_after:
            fields["reset_after"] = False
            if has_bias:
                fields["cudnn_compatible"] = True  # ONNX keeps an input and a recurrent bias: 6H
    elif type_name == "LSTM" and has_bias:
        fields["cudnn_compatible"] = True  # ONNX keeps an input and a recurrent bias: 8H
    if direction == "reverse":
        fields["go_backwards"] = True
    outputs = list(imp.node.output) + [""] * 3
    sequence_used, last_used, cell_used = (bool(out) and imp.consumers[out] > 0 for out in outputs[:3])
    if sequence_used:
        fields["return_sequences"] = True
    if attrs.get("clip") is not None:
        imp.notes.append(f"{type_name} '{imp.node.name}': clip is not counted")
    initial = initial_states(imp, type_name, units, layout)
    name = imp.node_name()
    shape = imp.add_layer(type_name, name, fields, [x, *initial])
    # Y_h and Y_c: (1, N, H) or (N, 1, H); the last h is output 0 unless the sequence is (then the state, output 1)
    state_layout = ((2,), 1 if layout == 0 else 0, 3)
    if sequence_used:  # Y: (T, 1, N, H) or (N, T, 1, H)
        axes = (0, 3) if layout == 0 else (1, 3)
        imp.set_output(Data(name, shape, axes, 2 if layout == 0 else 0, 4, sequence_of=name), 0)
        if last_used:
            imp.set_output(state_output(imp, name, 1, units, *state_layout), 1)
    else:
        imp.set_output(Data(name, shape, *state_layout), 1)
    if cell_used:
        imp.set_output(state_output(imp, name, 2, units, *state_layout), 2)


def initial_states(imp: ImportContext, type_name: str, units: int, layout: int) -> list[Data]:
    """initial_h (input 5) and an LSTM's initial_c (input 6), (1, N, H) or (N, 1, H): another layer's states,
    the spec inputs after the sequence. A constant (zeros, as an exporter writes the default) is no input."""
    names = [imp.optional_input(5)] + ([imp.optional_input(6)] if type_name == "LSTM" else [])
    given = [n for n in names if n is not None and isinstance(imp.values.get(n), Data)]
    if not given:
        return []
    if len(given) != len(names):
        raise imp.error(f"starts from {len(given)} of the {len(names)} initial states as activations: a spec "
                        f"{type_name} takes all of them (h then c) or none")
    states = []
    for tensor in given:
        x = imp.data(tensor)
        if len(x.shape) != 1 or not same_size(x.shape[0], units) or x.batch != (1 if layout == 0 else 0):
            raise imp.error(f"reads '{tensor}' (shape {tuple(map(str, x.shape))}) as an initial state: not a "
                            f"({units},) state per batch item")
        states.append(x)
    return states


@handles("GRU")
def gru(imp: ImportContext) -> None:
    recurrent(imp, "GRU", 3)


@handles("LSTM")
def lstm(imp: ImportContext) -> None:
    recurrent(imp, "LSTM", 4)


@handles("RNN")
def rnn(imp: ImportContext) -> None:
    recurrent(imp, "SimpleRNN", 1)
