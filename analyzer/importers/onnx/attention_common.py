"""What both attention readers use (attention.py: the MatMul form, attention_einsum.py: the Einsum form of
attention_axes): matching a projection's weights and bias, checking a Reshape's batch entry, refusing at the node
that does not fit, and writing the MultiHeadAttention layer once a block matched. Apart from both, so that
attention.py can try the Einsum form without the two importing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.patterns import sole_consumer
from analyzer.importers.onnx.values import BATCH, Const, Data

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


def attribute(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def weight_dims(imp: ImportContext, name: str) -> tuple[int, ...] | None:
    value = imp.values.get(name)
    return value.dims if isinstance(value, Const) and value.weight else None


def bias_after(imp: ImportContext, node: Any, units: int) -> Any:
    """The Add of a bias vector of `units` that alone reads node's output, else None."""
    add = sole_consumer(imp, node.output[0], "Add")
    if add is None:
        return None
    other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
    return add if weight_dims(imp, other) == (units,) else None


def reshape_target(imp: ImportContext, node: Any, what: str) -> list[sympy.Expr]:
    """A Reshape's target, with its batch entry (the batch, 0, or the one batch size of the file) checked."""
    value = imp.values.get(node.input[1])
    if not isinstance(value, Const) or value.opaque:
        raise refuse(imp, node, f"the shape of {what} is not known here")
    entries = [sympy.sympify(e) for e in imp.const(node.input[1]).reshape(-1)]
    batch = entries[0] if entries else None
    batch_ok = batch == BATCH or (batch == 0 and not attribute(node, "allowzero", 0)) \
        or (batch is not None and batch.is_Integer and len(imp.static_batch) == 1 and int(batch) in imp.static_batch)
    if not batch_ok:
        raise refuse(imp, node, f"{what} moves or merges the batch axis")
    return entries[1:]


def refuse(imp: ImportContext, node: Any, why: str) -> Exception:
    return imp.error(f"reads the attention block that ends here as a MultiHeadAttention, but node "
                     f"'{node.name or node.output[0]}' ({node.op_type}) does not fit: {why}")


def same(a: sympy.Expr, b: sympy.Expr) -> bool:
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


def attention_inputs(imp: ImportContext, found: Any) -> dict[str, Data]:
    """The query, key and value the projections of a matched block read (MatMul or Einsum form)."""
    inputs: dict[str, Data] = {}
    arranged: dict[str, Data] = {}  # by ONNX tensor: self-attention reads one tensor three times
    for what, part in (("query", found.query), ("key", found.key), ("value", found.value)):
        tensor = part.matmul.input[0]
        if tensor not in arranged:
            x = imp.data(tensor)
            if x.rank < 3:
                raise refuse(imp, part.matmul, f"the {what} has no position axis")
            arranged[tensor] = imp.identity(x, "MultiHeadAttention")
        inputs[what] = arranged[tensor]
    return inputs


def add_attention_layer(imp: ImportContext, found: Any, inputs: dict[str, Data], heads: int, key_dim: int,
                        value_dim: int, output_shape: list[Any], description: str, gate: Any = None,
                        attention_axes: list[int] | None = None) -> None:
    """The MultiHeadAttention layer of a matched subgraph (MatMul or Einsum form), named after its module."""
    biases = [p.bias is not None for p in (found.query, found.key, found.value)] + [found.output_bias is not None]
    if gate:
        biases.append(len(gate) == 4)
    if len(set(biases)) != 1:
        raise refuse(imp, found.output, "some projections have a bias and others not: Keras' use_bias is one flag")
    fields: dict[str, Any] = {"num_heads": heads, "key_dim": key_dim}
    if value_dim != key_dim:
        fields["value_dim"] = value_dim
    if len(output_shape) != 1 or not same(output_shape[0], inputs["query"].shape[-1]):
        fields["output_shape"] = output_shape
    if not biases[0]:
        fields["use_bias"] = False
    if gate:
        fields["use_gate"] = True
    if attention_axes is not None:
        fields["attention_axes"] = attention_axes
    sources = [inputs["query"], inputs["value"]]
    if found.key.matmul.input[0] != found.value.matmul.input[0]:
        sources.append(inputs["key"])
    here, imp.node = imp.node, found.scores  # name the layer after the attention module, not its last node
    name = imp.node_name()
    imp.node = here
    shape = imp.add_layer("MultiHeadAttention", name, fields, sources, description=description)
    imp.set_output(Data(name, shape, tuple(range(1, len(shape) + 1)), 0, len(shape) + 1))
