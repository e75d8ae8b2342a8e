"""The states of a recurrent layer read from the ONNX file, in the spec's terms (docs/spec-format.md, layers with
several outputs): the initial states a layer starts from when they are other layers' outputs (Keras'
`initial_state`: more `inputs` after the sequence), and its final states read by other nodes or as model outputs
(`return_state: true`; output 1 is the state, or state_h, output 2 an LSTM's state_c, written `name:1`, `name:2`).

For an unrolled loop (loops.py) an initial state shows at the first step only: the recurrent MatMul of step 0
reads it (h), and an LSTM's cell update multiplies it (c). A final state is a value of the last step that leaves
the loop: an LSTM's c is the one the cell itself reads again in that step (its activation, or the product by the
output gate when the activation is linear); the h of the last step is read inside the loop by nothing but the
stack of the sequence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.values import Data

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

STATE_COUNT = {"SimpleRNN": 1, "GRU": 1, "LSTM": 2}
CELL_READERS = {"Add", "Sub", "Mul", "Div", "Sigmoid", "Tanh", "Relu", "HardSigmoid", "Elu", "Softsign", "Softplus"}


def base_layer(reference: str) -> str:
    """The layer of a spec reference `name` or `name:OUTPUT` (layer names never hold ':')."""
    return reference.split(":", 1)[0]


def same_size(a: Any, b: Any) -> bool:
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


def state_output(imp: ImportContext, layer: str, index: int, units: Any, axes: tuple[int, ...] = (1,), batch: int = 0,
                 rank: int = 2) -> Data:
    """Output `index` (1: state / state_h, 2: state_c) of the recurrent layer `layer`, which gets return_state."""
    doc = next((d for d in imp.doc.layers if d.name == layer), None)
    if doc is None:  # merged into a Bidirectional (bidirectional.py) before its state was read
        raise imp.error(f"reads a final state of '{layer}', now one direction of a Bidirectional: a Bidirectional "
                        "whose merged sequence and states are both read is not read yet")
    if doc.fields.get("return_state") is not True:
        doc.fields["return_state"] = True
        imp.refresh(doc)
    name = f"{layer}:{index}"
    imp.shapes[name] = (sympy.sympify(units),)
    return Data(name, imp.shapes[name], axes, batch, rank)


def initial_state_inputs(imp: ImportContext, where: str, type_name: str, units: int,
                         initial: list[tuple[str, str]]) -> list[Data]:
    """The spec inputs after the sequence for the initial states a loop read: (kind, ONNX tensor) in the order the
    loop met them, kind 'initial_h' for the state its recurrent MatMul read, 'initial' for one it combined."""
    if not initial:
        return []
    expected = ["initial_h"] + ["initial"] * (STATE_COUNT[type_name] - 1)
    if [kind for kind, _ in initial] != expected:
        names = ", ".join(f"'{tensor}'" for _, tensor in initial)
        raise imp.error(f"{where} starts from the tensors {names} of other layers: a {type_name} starts from "
                        f"{STATE_COUNT[type_name]} state(s) ({'h then c' if type_name == 'LSTM' else 'h'}), h read "
                        "by the recurrent kernel")
    states = []
    for _, tensor in initial:
        x = imp.data(tensor)
        if len(x.shape) != 1 or not same_size(x.shape[0], units):
            raise imp.error(f"{where} starts from '{tensor}' of shape {tuple(map(str, x.shape))}: an initial state "
                            f"of a {type_name} of {units} units is ({units},)")
        states.append(x)
    return states


def is_cell_state(imp: ImportContext, tensor: str, scope: str) -> bool:
    """Whether an LSTM loop's last-step value `tensor` is its cell state c: the cell reads c again in the same
    step (h = o * act(c)); the last h is read inside the loop by nothing but the stack of the sequence."""
    return any(node.op_type in CELL_READERS and ("/".join((node.name or "").split("/")[:-1]) + "/").startswith(scope + "/")
               for node in imp.consumer_nodes.get(tensor, []))
