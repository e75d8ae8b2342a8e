"""Keras' Bidirectional as an export writes it: the wrapped recurrent layer over a sequence, a go_backwards
copy of it over the same sequence whose per-step output is flipped back to forward order (torch's flip,
a Slice with step -1 over time), and a merge of the two: a Concat of the features (merge_mode concat),
Add (sum), Mul (mul), or Add then a Div by 2 (ave). The two layers (already written, each as one layer,
from an ONNX recurrent op or an unrolled loop) become one Bidirectional."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.importers.onnx.values import Data

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

RECURRENT = {"SimpleRNN", "GRU", "LSTM"}


def merge_directions(imp: ImportContext, forward: Data, backward: Data, merge_mode: str) -> None:
    """forward: a recurrent layer's sequence; backward: a go_backwards copy's sequence, reversed back."""
    why = "merges a reversed sequence (torch's flip)"
    if forward.reversed_axis is not None or backward.reversed_axis is None:
        raise imp.error(f"{why} that is not the second of a Bidirectional's two directions (forward first)")
    f = next((d for d in imp.doc.layers if d.name == forward.layer), None)
    b = next((d for d in imp.doc.layers if d.name == backward.layer), None)
    if f is None or b is None or f.type not in RECURRENT or b.type != f.type:
        raise imp.error(f"{why} with a tensor that is not the same kind of recurrent layer: only a Bidirectional's "
                        "two directions are read")
    if b.fields.get("go_backwards") is not True or f.fields.get("go_backwards"):
        raise imp.error(f"{why}: '{f.name}' and '{b.name}' are not a forward layer and its go_backwards copy")
    if {k: v for k, v in b.fields.items() if k != "go_backwards"} != f.fields or f.fields.get("return_sequences") \
            is not True:
        raise imp.error(f"{why}: '{f.name}' and '{b.name}' differ in more than their direction ({f.fields} and "
                        f"{b.fields}): not one Bidirectional")
    f_inputs, b_inputs = f.inputs or [], b.inputs or []
    if f_inputs[:1] != b_inputs[:1] or len(f_inputs) != len(b_inputs):
        raise imp.error(f"{why}: '{f.name}' reads {f_inputs} and '{b.name}' reads {b_inputs}: a Bidirectional's two "
                        "directions read the same sequence (and as many initial states)")
    if f.fields.get("return_state") or b.fields.get("return_state"):
        raise imp.error(f"{why}: the final states of '{f.name}' or '{b.name}' are read too; a Bidirectional whose "
                        "merged sequence and states are both read is not read yet")
    if imp.spec_uses[f.name] or imp.spec_uses[b.name]:
        raise imp.error(f"{why}: '{f.name}' or '{b.name}' is read elsewhere too (a Bidirectional has one output)")
    if backward.reversed_axis != backward.axes[0] or (forward.axes, forward.batch, forward.rank) != (
            backward.axes, backward.batch, backward.rank):
        raise imp.error(f"{why}: the two directions' sequences are not laid out alike (reversed along time)")
    imp.doc.layers = [d for d in imp.doc.layers if d.name not in (f.name, b.name)]
    fields: dict[str, object] = {"layer": {"type": f.type, **f.fields}}
    if merge_mode != "concat":
        fields["merge_mode"] = merge_mode
    # the sequence, then the forward copy's initial states, then the backward one's (as Keras' initial_state)
    sources = [f_inputs[0], *f_inputs[1:], *b_inputs[1:]]
    for state in sources[1:]:
        imp.spec_uses[state] -= 1  # read by the Bidirectional instead of the two layers: counted again below
    name = imp.node_name()
    shape = imp.add_layer("Bidirectional", name, fields, [Data(source, imp.shapes[source], (1, 2), 0, 3)
                                                          for source in sources],
                          description="two directions and a merge in the ONNX file")
    imp.set_output(Data(name, shape, forward.axes, forward.batch, forward.rank))


def average_directions(imp: ImportContext, x: Data, const_name: str) -> bool:
    """(forward + backward) / 2, as the export writes merge_mode ave: the Bidirectional 'sum' becomes 'ave'."""
    doc = next((d for d in imp.doc.layers if d.name == x.layer), None)
    if (doc is None or doc.type != "Bidirectional" or doc.fields.get("merge_mode") != "sum" or imp.spec_uses[x.layer]
            or imp.consumers[imp.node.input[0]] != 1):
        return False
    divisor = imp.const(const_name, "divisor")
    if divisor.size != 1 or float(divisor.reshape(-1)[0]) != 2:
        return False
    doc.fields["merge_mode"] = "ave"
    imp.refresh(doc)
    imp.set_output(x)
    return True
