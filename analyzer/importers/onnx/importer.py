"""The driver of an ONNX import: it reads the graph's nodes in order and gives each to the part that reads it
(a pattern that claimed it, an unrolled loop, constant folding, or its op's handler in registry.HANDLERS), then
checks the model outputs and drops what leads to none. The parts get the ImportContext (context.py), never this
driver."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sympy

from analyzer.importers.document import InputDoc, ModelImportError, SpecDocument, layer_name
from analyzer.importers.onnx.constants import fold
from analyzer.importers.onnx.context import ImportContext
from analyzer.importers.onnx.loop_states import base_layer
from analyzer.importers.onnx.loop_values import Step
from analyzer.importers.onnx.loops import close, is_step_node, step_op
from analyzer.importers.onnx.registry import HANDLERS
from analyzer.importers.onnx.same_pooling import find_same_average_pools
from analyzer.importers.onnx.time_distributed import keep_frames, write_wrapped
from analyzer.importers.onnx.values import Const, Data
from analyzer.importers.symbols import ImportOptions
from analyzer.symbolic import make_symbol

CHANNEL_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "BatchNormalization", "InstanceNormalization"}
RESHAPING = {"Reshape", "Flatten", "Unsqueeze", "Squeeze", "Transpose", "Identity", "Cast"}
FOLDABLE = {"Reshape", "Flatten", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Min", "Max", "Mod"}


class OnnxImporter:
    def __init__(self, model: Any, source: str, options: ImportOptions) -> None:
        self.context = ImportContext(model, source, options)

    def run(self) -> tuple[SpecDocument, list[str]]:
        imp = self.context
        for tensor in imp.graph.initializer:
            imp.values[tensor.name] = Const(tuple(tensor.dims), tensor=tensor, weight=True)
        for tensor in imp.graph.sparse_initializer:
            raise ModelImportError(f"{imp.source}: sparse initializer '{tensor.values.name}' is not supported")
        for graph_input in imp.graph.input:
            if graph_input.name not in imp.values:
                self.declare_input(graph_input)
        find_same_average_pools(imp)
        for node in imp.graph.node:
            imp.node = node
            if node.domain not in ("", "ai.onnx"):
                raise imp.error(f"op domain '{node.domain}' is not supported (only the standard ONNX ops)")
            if node.output and node.output[0] in imp.claimed:
                imp.claimed.pop(node.output[0])(imp)
            elif is_step_node(imp):
                if not step_op(imp):  # it took step values out of their loop: its handler reads it
                    self.dispatch(node)
            elif node.op_type in FOLDABLE and all(isinstance(imp.values.get(i), Const) for i in node.input if i):
                fold(imp)
            else:
                self.dispatch(node)
            keep_frames(imp)
            if node.op_type in RESHAPING and node.input and imp.is_weight(node.input[0]):
                for out in node.output:
                    if isinstance(imp.values.get(out), Const):
                        imp.values[out] = replace(imp.values[out], weight=True)
        imp.node = None
        outputs = []
        for out in imp.graph.output:
            if isinstance(imp.values.get(out.name), Step):  # a loop's last state is a model output
                imp.values[out.name] = close(imp, out.name)
            value = imp.values.get(out.name)
            if not isinstance(value, Data):
                raise ModelImportError(f"{imp.source}: model output '{out.name}' is not an activation tensor")
            if value.time is not None:
                raise ModelImportError(f"{imp.source}: model output '{out.name}' is frames never split back to "
                                       "(N, T, ...) (TimeDistributed): no spec layer gives that")
            if value.layer in {x.name for x in imp.doc.inputs}:
                raise ModelImportError(f"{imp.source}: model output '{out.name}' is a model input: nothing to count")
            outputs.append(value.layer)
        imp.doc.outputs = list(dict.fromkeys(outputs))
        write_wrapped(imp)
        self.prune()
        return imp.doc, imp.notes

    def dispatch(self, node: Any) -> None:
        imp = self.context
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise imp.error(f"ONNX op '{node.op_type}' is not supported by nnspec's importer",
                            hint="docs/importers.md#onnx lists the ops it reads")
        handler(imp)

    def declare_input(self, graph_input: Any) -> None:
        imp = self.context
        tensor_type = graph_input.type.tensor_type
        if not tensor_type.HasField("shape"):
            raise ModelImportError(f"{imp.source}: input '{graph_input.name}' has no shape")
        dims = list(tensor_type.shape.dim)
        if len(dims) < 2:
            raise ModelImportError(f"{imp.source}: input '{graph_input.name}' has rank {len(dims)}; axis 0 is taken "
                                   "as the batch, so an input needs rank 2 or more")
        name = imp.unique(layer_name(graph_input.name, "input"))
        if dims[0].HasField("dim_value"):
            imp.static_batch.add(dims[0].dim_value)
        shape: list[Any] = []
        for axis, dim in enumerate(dims[1:]):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(sympy.Integer(dim.dim_value))
            else:
                suggested = dim.dim_param if dim.HasField("dim_param") else None
                shape.append(make_symbol(imp.open_dims.symbol(name, axis, len(dims) - 1, suggested)))
        rank = len(dims)
        consumers = {n.op_type for n in imp.graph.node if graph_input.name in n.input}
        if rank >= 3 and consumers & CHANNEL_OPS:  # declare it channels-last
            axes = (*range(2, rank), 1)
            spec_shape = tuple(shape[a - 1] for a in axes)
        else:
            axes = tuple(range(1, rank))
            spec_shape = tuple(shape)
        model_axes = [a - 1 for a in axes] if list(axes) != list(range(1, rank)) else None
        imp.doc.inputs.append(InputDoc(name, [int(d) if d.is_Integer else d for d in spec_shape], model_axes))
        imp.shapes[name] = spec_shape
        imp.values[graph_input.name] = Data(name, spec_shape, axes, 0, rank)

    def prune(self) -> None:
        """Drop layers (and inputs) that lead to no output, as ONNX allows and a spec does not."""
        imp = self.context
        needed = {base_layer(o) for o in imp.doc.outputs}  # `name:1` is an output of the layer `name`
        for layer in reversed(imp.doc.layers):
            if layer.name in needed:
                needed.update(base_layer(i) for i in layer.inputs or [])
        dropped = [layer.name for layer in imp.doc.layers if layer.name not in needed]
        if dropped:
            imp.notes.append(f"dropped {len(dropped)} layer(s) that lead to no model output: {', '.join(dropped[:5])}"
                             + (" ..." if len(dropped) > 5 else ""))
        imp.doc.layers = [layer for layer in imp.doc.layers if layer.name in needed]
        unused = [x.name for x in imp.doc.inputs if x.name not in needed]
        if unused:
            imp.notes.append(f"model input(s) {', '.join(unused)} lead to no output: left out")
            imp.doc.inputs = [x for x in imp.doc.inputs if x.name in needed]
