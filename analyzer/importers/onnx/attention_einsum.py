"""Keras' MultiHeadAttention over chosen axes (attention_axes) as nnspec's torch export writes it
(torch_modules.MultiHeadAttention.attention_over_axes, Keras' own einsums), read whole as one spec layer:

    q = MatMul(query, Wq) [+ bq] -> Reshape (N, *positions, h, kd) -> Div by sqrt(kd)
    k = MatMul(key, Wk)   [+ bk] -> Reshape (N, *positions, h, kd)
    v = MatMul(value, Wv) [+ bv] -> Reshape (N, *positions, h, vd)
    Einsum(k, q) -> [Reshape] -> Softmax(last axis) -> [Reshape] -> Einsum(., v) -> Reshape (N, *positions, h*vd)
    [-> Mul by Sigmoid(MatMul(query, Wg) [+ bg]): use_gate] -> MatMul(., Wo) [+ bo] -> Reshape (N, *positions, *out)

The first equation names the axes: the query's position axes whose letter differs in the key are the attended
ones (attention_axes), the others batch axes of the scores. As in attention.py, the structure is matched at the
first projection MatMul, every node of it claimed, and the last one checks the sizes and writes the layer or
refuses naming the node that differs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.attention_common import (
    add_attention_layer,
    attention_inputs,
    attribute,
    bias_after,
    refuse,
    reshape_target,
    same,
    weight_dims,
)
from analyzer.importers.onnx.patterns import scalar, sole_consumer
from analyzer.importers.onnx.values import Data
from analyzer.symbolic import product

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


@dataclass(frozen=True)
class Heads:
    """MatMul(x, W) [+ bias] -> Reshape into (N, *positions, heads, width), in place."""

    matmul: Any
    bias: Any | None
    reshape: Any

    @property
    def nodes(self) -> list[Any]:
        return [n for n in (self.matmul, self.bias, self.reshape) if n is not None]


@dataclass(frozen=True)
class EinsumAttention:
    query: Heads
    key: Heads
    value: Heads
    scale: Any
    scores: Any  # Einsum(k, q)
    softmax_path: list[Any]  # the Reshapes around the Softmax, and the Softmax
    softmax: Any
    attend: Any  # Einsum(weights, v)
    merge_reshape: Any
    gate: list[Any]  # MatMul [Add] Sigmoid Mul, or empty
    output: Any
    output_bias: Any | None
    output_reshape: Any | None

    @property
    def nodes(self) -> list[Any]:
        inner = [self.scale, self.scores, *self.softmax_path, self.attend, self.merge_reshape, *self.gate,
                 self.output, self.output_bias, self.output_reshape]
        return [*self.query.nodes, *self.key.nodes, *self.value.nodes, *(n for n in inner if n is not None)]


def heads_from(imp: ImportContext, matmul: Any) -> Heads | None:
    if matmul is None or matmul.op_type != "MatMul":
        return None
    dims = weight_dims(imp, matmul.input[1])
    if dims is None or len(dims) != 2:
        return None
    bias = bias_after(imp, matmul, dims[1])
    reshape = sole_consumer(imp, (bias or matmul).output[0], "Reshape")
    if reshape is None or reshape.input[0] != (bias or matmul).output[0]:
        return None
    return Heads(matmul, bias, reshape)


def heads_into(imp: ImportContext, tensor: str) -> Heads | None:
    reshape = imp.producers.get(tensor)
    if reshape is None or reshape.op_type != "Reshape":
        return None
    before = imp.producers.get(reshape.input[0])
    if before is not None and before.op_type == "Add":
        before = next((imp.producers[i] for i in before.input if i in imp.producers
                       and imp.producers[i].op_type == "MatMul"), None)
    found = heads_from(imp, before)
    return found if found is not None and found.reshape is reshape else None


def only_reader(imp: ImportContext, tensor: str, shape_readers: bool = False) -> Any:
    """The one node that reads `tensor` (besides Shape nodes, with shape_readers: the export reads an Einsum's
    shape for the Reshapes after it; einsum_shape gives them one)."""
    readers = imp.consumer_nodes.get(tensor, [])
    shapes = [n for n in readers if n.op_type == "Shape"] if shape_readers else []
    readers = [n for n in readers if n not in shapes]
    return readers[0] if len(readers) == 1 and imp.consumers[tensor] == 1 + len(shapes) else None


def match(imp: ImportContext) -> EinsumAttention | None:
    start = heads_from(imp, imp.node)
    if start is None:
        return None
    reader = only_reader(imp, start.reshape.output[0])
    if reader is not None and reader.op_type in ("Div", "Mul"):
        reader = only_reader(imp, reader.output[0])
    if reader is None or reader.op_type != "Einsum":
        return None
    scores = reader  # reached from the query (through its scaling) or the key: the scores' Einsum
    weighted = imp.producers.get(reader.input[1])
    if weighted is None or weighted.op_type not in ("Div", "Mul"):  # from the value: walk back to the scores
        node = imp.producers.get(reader.input[0])
        while node is not None and node.op_type in ("Reshape", "Softmax"):
            node = imp.producers.get(node.input[0])
        scores = node if node is not None and node.op_type == "Einsum" else None
    if scores is None:
        return None
    path, node = [], only_reader(imp, scores.output[0], shape_readers=True)
    while node is not None and node.op_type in ("Reshape", "Softmax"):
        path.append(node)
        node = only_reader(imp, node.output[0])
    softmaxes = [n for n in path if n.op_type == "Softmax"]
    attend = node
    if attend is None or attend.op_type != "Einsum" or len(softmaxes) != 1 or attend.input[0] != path[-1].output[0]:
        return None
    scale = imp.producers.get(scores.input[1])
    if scale is None or scale.op_type not in ("Div", "Mul") or only_reader(imp, scale.output[0]) is not scores:
        return None
    query, key, value = heads_into(imp, scale.input[0]), heads_into(imp, scores.input[0]), heads_into(imp, attend.input[1])
    if query is None or key is None or value is None or imp.node not in (query.matmul, key.matmul, value.matmul) \
            or len({id(query.matmul), id(key.matmul), id(value.matmul)}) != 3 \
            or only_reader(imp, key.reshape.output[0]) is not scores or only_reader(imp, value.reshape.output[0]) is not attend:
        return None
    merge_reshape = only_reader(imp, attend.output[0], shape_readers=True)
    if merge_reshape is None or merge_reshape.op_type != "Reshape":
        return None
    gate: list[Any] = []
    output = only_reader(imp, merge_reshape.output[0])
    if output is not None and output.op_type == "Mul":  # use_gate: times Sigmoid(MatMul(query, Wg) [+ bg])
        other = output.input[1] if output.input[0] == merge_reshape.output[0] else output.input[0]
        sigmoid = imp.producers.get(other)
        before = imp.producers.get(sigmoid.input[0]) if sigmoid is not None and sigmoid.op_type == "Sigmoid" else None
        gate_bias = before if before is not None and before.op_type == "Add" else None
        gate_matmul = next((imp.producers[i] for i in gate_bias.input if i in imp.producers), None) if gate_bias \
            else before
        if gate_matmul is None or gate_matmul.op_type != "MatMul" or gate_matmul.input[0] != query.matmul.input[0]:
            return None
        gate = [n for n in (gate_matmul, gate_bias, sigmoid, output) if n is not None]
        output = only_reader(imp, output.output[0])
    out_dims = weight_dims(imp, output.input[1]) if output is not None and output.op_type == "MatMul" else None
    if out_dims is None or len(out_dims) != 2:
        return None
    output_bias = bias_after(imp, output, out_dims[1])
    output_reshape = sole_consumer(imp, (output_bias or output).output[0], "Reshape")
    return EinsumAttention(query, key, value, scale, scores, path, softmaxes[0], attend, merge_reshape, gate, output,
                           output_bias, output_reshape)


def einsum_attention(imp: ImportContext) -> bool:
    """At a projection MatMul of the pattern above: claim its nodes (in graph order); the last one writes the layer."""
    found = match(imp)
    if found is None:
        return False
    order = {id(node): i for i, node in enumerate(imp.graph.node)}
    nodes = sorted(found.nodes, key=lambda n: order[id(n)])
    for node in nodes[:-1]:
        if node in (found.scores, found.attend):
            imp.claimed[node.output[0]] = lambda imp: imp.set_output(einsum_shape(imp, found, imp.node))
        elif node is not imp.node:
            imp.claimed[node.output[0]] = lambda imp: None  # a step inside the attention: nothing to set
    imp.claimed[nodes[-1].output[0]] = lambda imp: write(imp, found)
    return True


def einsum_shape(imp: ImportContext, found: EinsumAttention, node: Any) -> Data:
    """An Einsum's output as a shape only, for the Shape nodes that read it (it holds no spec layer): each letter's
    size from the heads' Reshape targets (key and value: the first operand's letters, query: the second's)."""
    (source, target), result = equation(imp, found.scores)
    sizes: dict[str, Any] = {}
    for part, letters in ((found.query, target), (found.key, source), (found.value, source)):
        entries = [sympy.sympify(e) for e in imp.const(part.reshape.input[1], "shape").reshape(-1)]
        for letter, size in zip(letters[1:], entries[1:], strict=False):
            sizes.setdefault(letter, size)
    letters = result if node is found.scores else target
    if any(letter not in sizes or sizes[letter] == -1 for letter in letters[1:]):
        raise refuse(imp, node, "the sizes of its axes are not known from the heads' Reshapes")
    return Data(f"({node.name or node.output[0]}: inside an attention)", tuple(sizes[letter] for letter in letters[1:]),
                tuple(range(1, len(letters))), 0, len(letters))


def equation(imp: ImportContext, node: Any) -> tuple[list[str], str]:
    text = attribute(node, "equation", b"")
    text = text.decode() if isinstance(text, bytes) else text
    if "->" not in text:
        raise refuse(imp, node, f"the equation '{text}' has no output")
    operands, result = text.replace(" ", "").split("->")
    return operands.split(","), result


def write(imp: ImportContext, found: EinsumAttention) -> None:
    inputs = attention_inputs(imp, found)
    query_positions = list(inputs["query"].shape[:-1])
    rank = len(query_positions) + 3  # N, positions, heads, width
    (source, target), result = equation(imp, found.scores)
    if len(source) != rank or len(target) != rank or len(set(target)) != rank:
        raise refuse(imp, found.scores, f"the scores' equation does not read (N, positions, heads, width) of rank {rank}")
    batch_axes = [i for i in range(rank - 1) if source[i] == target[i]]
    attended = [i for i in range(1, rank - 2) if source[i] != target[i]]
    if source[0] != target[0] or source[-2:] != target[-2:] or not attended \
            or result != "".join([target[i] for i in batch_axes] + [target[i] for i in attended]
                                 + [source[i] for i in attended]):
        raise refuse(imp, found.scores, f"the equation {','.join([source, target])}->{result} is not Keras' attention "
                     "scores (key, query -> batch axes, query's attended axes, key's)")
    if equation(imp, found.attend) != ([result, source], target):
        raise refuse(imp, found.attend, "the weighted sum's equation is not the scores' reversed")
    heads, key_dim = split_heads(imp, found.query, query_positions, "query")
    value_positions = list(inputs["value"].shape[:-1])
    if split_heads(imp, found.key, list(inputs["key"].shape[:-1]), "key") != (heads, key_dim):
        raise refuse(imp, found.key.reshape, f"the key is not split as the query ({heads} heads of {key_dim})")
    value_heads, value_dim = split_heads(imp, found.value, value_positions, "value")
    if value_heads != heads:
        raise refuse(imp, found.value.reshape, f"the value has {value_heads} heads, the query {heads}")
    divisor = scalar(imp, found.scale.input[1])
    factor = (1 / divisor if found.scale.op_type == "Div" and divisor else divisor) if divisor is not None else None
    if found.scale.input[0] != found.query.reshape.output[0] or factor is None \
            or not math.isclose(factor, key_dim ** -0.5, rel_tol=1e-6):
        raise refuse(imp, found.scale, f"the query heads are not scaled by 1/sqrt({key_dim})")
    axis = attribute(found.softmax, "axis", -1 if imp.opset() >= 13 else 1)
    softmax_rank = len(result) - len(attended) + 1
    if axis not in (-1, softmax_rank - 1):
        raise refuse(imp, found.softmax, f"a softmax over axis {axis}, not over the attended key positions")
    merged = reshape_target(imp, found.merge_reshape, "the attention output")
    if len(merged) != len(query_positions) + 1 or not all(same(a, b) for a, b in zip(merged, query_positions, strict=False)) \
            or not (merged[-1] == -1 or same(merged[-1], heads * value_dim)):  # flatten(-2): the -1 is h*vd
        raise refuse(imp, found.merge_reshape, "the heads are not merged back to (N, *positions, heads * value_dim)")
    if found.gate and weight_dims(imp, found.gate[0].input[1]) != (int(inputs["query"].shape[-1]), heads * value_dim):
        raise refuse(imp, found.gate[0], "the gate does not project the query to heads * value_dim")
    out_in, out_units = weight_dims(imp, found.output.input[1])
    if out_in != heads * value_dim:
        raise refuse(imp, found.output, f"the output kernel reads {out_in} features, not {heads * value_dim}")
    output_shape: list[sympy.Expr] = [sympy.Integer(out_units)]
    if found.output_reshape is not None:
        target_shape = reshape_target(imp, found.output_reshape, "the attention output")
        head, tail = target_shape[:len(query_positions)], target_shape[len(query_positions):]
        if not all(same(a, b) for a, b in zip(head, query_positions, strict=False)) or len(head) != len(query_positions) \
                or not tail or any(e == -1 for e in tail) or not same(product(tail), out_units):
            raise refuse(imp, found.output_reshape, "the output is not reshaped to the query's positions and "
                         f"{out_units} features")
        output_shape = tail
    add_attention_layer(imp, found, inputs, heads, key_dim, value_dim, output_shape,
                        "ONNX q/k/v MatMuls split into heads, Einsum scores over attention_axes, Softmax, Einsum, "
                        "output MatMul", gate=found.gate,
                        # Keras' axes (the batch is 0): the ONNX axes of the query
                        attention_axes=attended if len(attended) != rank - 3 else None)


def split_heads(imp: ImportContext, part: Heads, positions: list[Any], what: str) -> tuple[int, int]:
    """(heads, per-head width) of a projection's Reshape (N, *positions, h, d)."""
    units = weight_dims(imp, part.matmul.input[1])[1]
    target = reshape_target(imp, part.reshape, f"the {what} heads")
    if len(target) != len(positions) + 2 or not all(same(a, b) for a, b in zip(target, positions, strict=False)) \
            or not (target[-2].is_Integer and target[-1].is_Integer) or int(target[-2]) * int(target[-1]) != units:
        raise refuse(imp, part.reshape, f"the {what} projection (width {units}) is not split into "
                     f"(N, *positions, heads, width): target {[str(e) for e in target]}")
    return int(target[-2]), int(target[-1])
