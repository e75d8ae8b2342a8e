"""Keras' MultiHeadAttention as nnspec's torch export writes it (torch_modules.MultiHeadAttention, attention
over every position axis), read whole as one spec layer:

    q = MatMul(query, Wq) [+ bq] -> Reshape (N, Tq, h, kd) -> Transpose (0, 2, 1, 3) -> Div by sqrt(kd)
    k = MatMul(key, Wk)   [+ bk] -> Reshape (N, Tv, h, kd) -> Transpose (0, 2, 3, 1)
    v = MatMul(value, Wv) [+ bv] -> Reshape (N, Tv, h, vd) -> Transpose (0, 2, 1, 3)
    MatMul(q, k) -> Softmax(last axis) -> MatMul(., v) -> Transpose (0, 2, 1, 3) -> Reshape (N, Tq, h*vd)
    -> MatMul(., Wo) [+ bo] [-> Reshape (N, *query positions, *output_shape)]

The structure (which node reads which) is matched from whichever projection MatMul the importer reaches
first; when it matches, every node of it is claimed (context.claimed) and the last one checks the sizes and
constants, now all computed, and writes the layer, or refuses naming the node that differs. A structure
that does not match is not attention: the nodes are then read one by one (and a MatMul of two activations
is refused there)."""

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
from analyzer.importers.onnx.attention_einsum import einsum_attention
from analyzer.importers.onnx.patterns import scalar, sole_consumer
from analyzer.symbolic import product

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext

HEADS_FIRST = [0, 2, 1, 3]  # (N, T, h, d) <-> (N, h, T, d)
KEYS_TRANSPOSED = [0, 2, 3, 1]  # (N, T, h, d) -> (N, h, d, T)


@dataclass(frozen=True)
class Projection:
    """MatMul(x, W) [+ bias] -> Reshape -> Transpose: a query, key or value projection split into heads."""

    matmul: Any
    bias: Any | None
    reshape: Any
    transpose: Any

    @property
    def nodes(self) -> list[Any]:
        return [n for n in (self.matmul, self.bias, self.reshape, self.transpose) if n is not None]


@dataclass(frozen=True)
class Attention:
    query: Projection
    key: Projection
    value: Projection
    scale: Any  # Div (or Mul) of the query heads by a constant
    scores: Any  # MatMul(q, k^T)
    softmax: Any
    attend: Any  # MatMul(softmax, v)
    merge_transpose: Any
    merge_reshape: Any  # (N, h, Tq, vd) -> (N, Tq, h*vd)
    output: Any  # MatMul by the output kernel
    output_bias: Any | None
    output_reshape: Any | None  # back to the query's positions and output_shape

    @property
    def nodes(self) -> list[Any]:
        inner = [self.scale, self.scores, self.softmax, self.attend, self.merge_transpose, self.merge_reshape,
                 self.output, self.output_bias, self.output_reshape]
        return [*self.query.nodes, *self.key.nodes, *self.value.nodes, *(n for n in inner if n is not None)]


def projection(imp: ImportContext, matmul: Any) -> Projection | None:
    if matmul is None or matmul.op_type != "MatMul":
        return None
    dims = weight_dims(imp, matmul.input[1])
    if dims is None or len(dims) != 2:
        return None
    bias = bias_after(imp, matmul, dims[1])
    last = bias or matmul
    reshape = sole_consumer(imp, last.output[0], "Reshape")
    if reshape is None or reshape.input[0] != last.output[0]:
        return None
    transpose = sole_consumer(imp, reshape.output[0], "Transpose")
    if transpose is None:
        return None
    return Projection(matmul, bias, reshape, transpose)


def projection_into(imp: ImportContext, tensor: str) -> Projection | None:
    """The projection whose Transpose writes `tensor` (walking back Transpose, Reshape, bias Add, MatMul)."""
    transpose = imp.producers.get(tensor)
    reshape = imp.producers.get(transpose.input[0]) if transpose is not None else None
    if transpose is None or transpose.op_type != "Transpose" or reshape is None or reshape.op_type != "Reshape":
        return None
    before = imp.producers.get(reshape.input[0])
    if before is not None and before.op_type == "Add":
        before = next((imp.producers.get(i) for i in before.input if imp.producers.get(i) is not None
                       and imp.producers[i].op_type == "MatMul"), None)
    found = projection(imp, before)
    return found if found is not None and found.transpose is transpose else None


def match(imp: ImportContext) -> Attention | None:
    """The attention the current MatMul projects for, matched by structure (sizes are checked at the end)."""
    start = projection(imp, imp.node)
    if start is None:
        return None
    reader = sole_consumer(imp, start.transpose.output[0], "MatMul") \
        or sole_consumer(imp, start.transpose.output[0], "Div") or sole_consumer(imp, start.transpose.output[0], "Mul")
    if reader is None:
        return None
    if reader.op_type in ("Div", "Mul"):
        scores = sole_consumer(imp, reader.output[0], "MatMul")
    elif reader.input[1] == start.transpose.output[0] and attribute(start.transpose, "perm") == KEYS_TRANSPOSED:
        scores = reader
    else:  # the value's MatMul: the scores are the Softmax's input
        softmax = imp.producers.get(reader.input[0])
        scores = imp.producers.get(softmax.input[0]) if softmax is not None and softmax.op_type == "Softmax" else None
    if scores is None or scores.op_type != "MatMul":
        return None
    scale = imp.producers.get(scores.input[0])
    if scale is None or scale.op_type not in ("Div", "Mul") or sole_consumer(imp, scale.output[0], "MatMul") is not scores:
        return None
    query, key = projection_into(imp, scale.input[0]), projection_into(imp, scores.input[1])
    softmax = sole_consumer(imp, scores.output[0], "Softmax")
    attend = sole_consumer(imp, softmax.output[0], "MatMul") if softmax is not None else None
    if query is None or key is None or attend is None or attend.input[0] != softmax.output[0]:
        return None
    value = projection_into(imp, attend.input[1])
    if value is None or sole_consumer(imp, value.transpose.output[0], "MatMul") is not attend \
            or sole_consumer(imp, query.transpose.output[0], scale.op_type) is not scale \
            or len({id(query.matmul), id(key.matmul), id(value.matmul)}) != 3 \
            or imp.node not in (query.matmul, key.matmul, value.matmul):
        return None
    merge_transpose = sole_consumer(imp, attend.output[0], "Transpose")
    merge_reshape = sole_consumer(imp, merge_transpose.output[0], "Reshape") if merge_transpose else None
    output = sole_consumer(imp, merge_reshape.output[0], "MatMul") if merge_reshape else None
    out_dims = weight_dims(imp, output.input[1]) if output is not None else None
    if out_dims is None or len(out_dims) != 2 or output.input[0] != merge_reshape.output[0]:
        return None
    output_bias = bias_after(imp, output, out_dims[1])
    output_reshape = sole_consumer(imp, (output_bias or output).output[0], "Reshape")
    if output_reshape is not None and output_reshape.input[0] != (output_bias or output).output[0]:
        output_reshape = None
    return Attention(query, key, value, scale, scores, softmax, attend, merge_transpose, merge_reshape, output,
                     output_bias, output_reshape)


def multi_head_attention(imp: ImportContext) -> bool:
    """At a projection MatMul of the pattern above: claim its nodes; the last one writes the layer."""
    found = match(imp)
    if found is None:
        if einsum_attention(imp):  # attention_axes: the export's Einsum form
            return True
        refuse_einsum_attention(imp)
        return False
    last = found.nodes[-1]
    for node in found.nodes[:-1]:
        if node is not imp.node:
            imp.claimed[node.output[0]] = lambda imp: None  # a step inside the attention: nothing to set
    imp.claimed[last.output[0]] = lambda imp: write(imp, found)
    return True


def refuse_einsum_attention(imp: ImportContext) -> None:
    """A projection split into heads in place that leads to an Einsum, when attention_einsum.py did not match
    the whole block: refused here, at the first projection, naming the Einsum, rather than at the query's
    scaling further on (an arithmetic of an activation with a constant)."""
    matmul = imp.node
    dims = weight_dims(imp, matmul.input[1]) if matmul.op_type == "MatMul" else None
    if dims is None or len(dims) != 2:
        return
    last = bias_after(imp, matmul, dims[1]) or matmul
    node = sole_consumer(imp, last.output[0], "Reshape")
    for _ in range(2):  # the Reshape into heads, then maybe the query's scaling
        readers = imp.consumer_nodes.get(node.output[0], []) if node is not None else []
        einsum = next((n for n in readers if n.op_type == "Einsum"), None)
        if einsum is not None:
            raise imp.error(f"projects for an attention whose scores are the Einsum '{einsum.name or einsum.output[0]}' "
                            f"(equation {attribute(einsum, 'equation', b'?').decode()}), which is not the torch "
                            "export's MultiHeadAttention with attention_axes (docs/importers.md#onnx)",
                            hint="write the MultiHeadAttention layer in the spec")
        node = next((n for n in readers if n.op_type in ("Div", "Mul")), None)


def heads_of(imp: ImportContext, part: Projection, positions: sympy.Expr, what: str) -> tuple[int, int]:
    """(heads, per-head width) of a projection's Reshape (N, T, h, d), T its input's positions (or -1)."""
    units = weight_dims(imp, part.matmul.input[1])[1]
    target = reshape_target(imp, part.reshape, f"the {what} heads")
    if len(target) != 3 or not (target[0] == -1 or same(target[0], positions)) \
            or not (target[1].is_Integer and target[2].is_Integer) or int(target[1]) * int(target[2]) != units:
        raise refuse(imp, part.reshape, f"the {what} projection (width {units}) is not split into "
                     f"(N, positions, heads, width): target {[str(e) for e in target]}")
    perm = KEYS_TRANSPOSED if what == "key" else HEADS_FIRST
    if attribute(part.transpose, "perm") != perm:
        raise refuse(imp, part.transpose, f"the {what} heads are not transposed by {perm}")
    return int(target[1]), int(target[2])


def write(imp: ImportContext, found: Attention) -> None:
    """Check every size and constant of the matched block, then write the MultiHeadAttention layer."""
    inputs = attention_inputs(imp, found)
    query_positions = inputs["query"].shape[:-1]
    tq, tv = product(query_positions), product(inputs["value"].shape[:-1])
    if not same(tv, product(inputs["key"].shape[:-1])):
        raise refuse(imp, found.key.matmul, "the key and the value have different numbers of positions")
    heads, key_dim = heads_of(imp, found.query, tq, "query")
    if heads_of(imp, found.key, tv, "key") != (heads, key_dim):
        raise refuse(imp, found.key.reshape, f"the key is not split as the query ({heads} heads of {key_dim})")
    value_heads, value_dim = heads_of(imp, found.value, tv, "value")
    if value_heads != heads:
        raise refuse(imp, found.value.reshape, f"the value has {value_heads} heads, the query {heads}")
    divisor = scalar(imp, found.scale.input[1])
    if found.scale.input[0] != found.query.transpose.output[0] or divisor is None:
        raise refuse(imp, found.scale, "the query heads are not scaled by a constant")
    factor = 1 / divisor if found.scale.op_type == "Div" and divisor else divisor
    if not math.isclose(factor, key_dim ** -0.5, rel_tol=1e-6):
        raise refuse(imp, found.scale, f"the query is scaled by {factor:g}, Keras' attention by 1/sqrt({key_dim})")
    axis = attribute(found.softmax, "axis", -1 if imp.opset() >= 13 else 1)
    if axis not in (-1, 3):
        raise refuse(imp, found.softmax, f"a softmax over axis {axis}, not over the key positions")
    merged = reshape_target(imp, found.merge_reshape, "the attention output")
    if attribute(found.merge_transpose, "perm") != HEADS_FIRST or len(merged) != 2 \
            or not (merged[0] == -1 or same(merged[0], tq)) or not same(merged[1], heads * value_dim):
        raise refuse(imp, found.merge_reshape, "the heads are not merged back to (N, positions, heads * value_dim)")
    out_in, out_units = weight_dims(imp, found.output.input[1])
    if out_in != heads * value_dim:
        raise refuse(imp, found.output, f"the output kernel reads {out_in} features, not {heads * value_dim}")
    output_shape: list[sympy.Expr] = [sympy.Integer(out_units)]
    if found.output_reshape is not None:
        target = reshape_target(imp, found.output_reshape, "the attention output")
        head, tail = target[:len(query_positions)], target[len(query_positions):]
        if len(head) != len(query_positions) or not all(same(a, b) for a, b in zip(head, query_positions, strict=True)) \
                or not tail or any(e == -1 for e in tail) or not same(product(tail), out_units):
            raise refuse(imp, found.output_reshape, f"the output is not reshaped to the query's positions and "
                         f"{out_units} features: target {[str(e) for e in target]}")
        output_shape = tail
    elif len(query_positions) != 1:
        raise refuse(imp, found.output, "the output keeps the query's positions flattened into one axis")
    add_attention_layer(imp, found, inputs, heads, key_dim, value_dim, output_shape,
                        "ONNX q/k/v MatMuls split into heads, scaled MatMul, Softmax, MatMul, output MatMul")


