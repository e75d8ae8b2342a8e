"""The importer's state and what every handler shares: the values of the ONNX tensors, the spec
document being written, adding a spec layer (shaped by nnspec's own layer handler), and moving a
tensor's layout (which ONNX axis each spec axis is) where the order of the data matters."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import sympy

from analyzer.importers.document import InputDoc, LayerDoc, ModelImportError, SpecDocument, layer_name
from analyzer.importers.onnx.constants import fold
from analyzer.importers.onnx.loop_states import base_layer
from analyzer.importers.onnx.loops import Loop, Step, close, is_step_node, step_op
from analyzer.importers.onnx.registry import HANDLERS
from analyzer.importers.onnx.same_pooling import find_same_average_pools
from analyzer.importers.onnx.time_distributed import keep_frames, wrap_item, write_wrapped
from analyzer.importers.onnx.values import Const, Data, spec_value
from analyzer.importers.symbols import ImportOptions, OpenDims
from analyzer.layers import LAYERS, LayerContext
from analyzer.spec.expressions import ExpressionSyntaxError
from analyzer.spec.fields import SpecContext
from analyzer.symbolic import make_symbol

CHANNEL_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "BatchNormalization", "InstanceNormalization"}
RESHAPING = {"Reshape", "Flatten", "Unsqueeze", "Squeeze", "Transpose", "Identity", "Cast"}
FOLDABLE = {"Reshape", "Flatten", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Min", "Max", "Mod"}


class OnnxImporter:
    def __init__(self, model: Any, source: str, options: ImportOptions) -> None:
        import numpy as np
        from onnx import numpy_helper

        self.np = np
        self.numpy_helper = numpy_helper
        self.model = model
        self.graph = model.graph
        self.source = source
        self.options = options
        self.notes: list[str] = []
        name = self.graph.name or Path(source).stem
        self.doc = SpecDocument(name, [], [], [], source=source)
        producer = " ".join(x for x in (model.producer_name, model.producer_version) if x)
        opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
        self.doc.header.append(f"ONNX model{' from ' + producer if producer else ''} (opset {opsets}); channels-first "
                               "ONNX tensors are channels-last here (docs/importers.md#onnx).")
        self.open_dims = OpenDims(self.doc, options, self.notes)
        self.values: dict[str, Data | Const] = {}
        self.shapes: dict[str, tuple[sympy.Expr, ...]] = {}
        self.names: set[str] = set()
        self.consumers = Counter(i for node in self.graph.node for i in node.input if i)
        for out in self.graph.output:
            self.consumers[out.name] += 1
        self.spec_uses: Counter[str] = Counter()
        # ONNX value -> (layer, ONNX channel axis, kind): a layer an Add / Mul of a per-channel weight can
        # fold into ("bias": a Dense or Conv without bias; "norm": a BatchNormalization without beta or gamma)
        self.bias_slots: dict[str, tuple[str, int, str]] = {}
        self.flipped: set[str] = set()
        self.static_batch: set[int] = set()
        self.node: Any = None
        self.loops: list[Loop] = []  # recurrent layers exported as unrolled loops (loops.py)
        self.consumer_nodes: dict[str, list[Any]] = {}
        self.producers: dict[str, Any] = {}
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumer_nodes.setdefault(name, []).append(node)
            for name in node.output:
                self.producers[name] = node
        # nodes a pattern read ahead of them (patterns.py), by their first output: what to do there instead
        self.claimed: dict[str, Any] = {}
        # the count side of a 'same' average pooling (same_pooling.py): tensor -> (dims, fill, pads)
        self.masks: dict[str, tuple[list[Any], float | None, list[Any] | None]] = {}
        # layers written on frames (the batch merged with time): TimeDistributed around them (time_distributed.py)
        self.time_distributed: set[str] = set()

    def error(self, message: str, hint: str | None = None) -> ModelImportError:
        where = ""
        if self.node is not None:
            where = f"node '{self.node.name or '?'}' ({self.node.op_type}): "
        return ModelImportError(f"{self.source}: {where}{message}", hint=hint)

    def unique(self, base: str) -> str:
        name = base
        counter = 2
        while name in self.names:
            name = f"{base}_{counter}"
            counter += 1
        self.names.add(name)
        return name

    def node_name(self, suffix: str = "") -> str:
        node = self.node
        parts = [p for p in (node.name or "").split("/") if p]
        if len(parts) > 1 and re.fullmatch(rf"{node.op_type}(_\d+)?", parts[-1]):
            parts = parts[:-1]  # torch.onnx names nodes /module/path/OpType: the module path is enough
        base = layer_name(".".join(parts), "") or node.op_type.lower()
        if base + suffix in self.names and len(parts) < len([p for p in (node.name or "").split("/") if p]):
            base = f"{base}.{node.op_type.lower()}"  # several ops of one module: block.add, block.relu
        return self.unique(base + suffix)

    def defaults(self) -> dict[sympy.Symbol, int]:
        return self.doc.defaults()

    def value(self, name: str) -> Data | Const:
        if name not in self.values:
            raise self.error(f"input '{name}' is not computed by any earlier node")
        return self.values[name]

    def data(self, name: str, reversed_ok: bool = False) -> Data:
        value = self.value(name)
        if not isinstance(value, Data):
            raise self.error(f"expects an activation tensor for '{name}', got a constant")
        if value.reversed_axis is not None and not reversed_ok:
            raise self.error(f"reads '{name}', whose axis {value.reversed_axis} is reversed (torch's flip): only a "
                             "recurrent layer reads a reversed sequence (as go_backwards)")
        if value.repeats:
            raise self.error(f"reads '{name}', a Tile of an activation: only the Reshape that merges each repeated "
                             "axis into the axis before it (torch's repeat_interleave: an UpSampling) is read")
        if value.sequence_of is not None and value.sequence_of in self.flipped:
            raise self.error(f"uses the per-step output of '{value.sequence_of}', which another node reduced to its "
                             "last step (a recurrent layer has one output in a spec)")
        return value

    def const(self, name: str, what: str = "value") -> Any:
        """The numpy value of a constant input."""
        value = self.value(name)
        if not isinstance(value, Const):
            raise self.error(f"needs a constant {what} ('{name}'), got an activation tensor")
        if value.opaque:
            raise self.error(f"needs the {what} '{name}', which is unknown here: {value.opaque}")
        if value.value is None:
            array = self.numpy_helper.to_array(value.tensor)
            value = replace(value, value=array)
            self.values[name] = value
        return value.value

    def const_dims(self, name: str) -> tuple[int, ...]:
        value = self.value(name)
        if not isinstance(value, Const):
            raise self.error(f"needs a weight for '{name}', got an activation tensor (a product of two activations, "
                             "as in attention, has no spec layer)")
        return value.dims

    def attrs(self) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in self.node.attribute}

    def optional_input(self, index: int) -> str | None:
        inputs = self.node.input
        return inputs[index] if len(inputs) > index and inputs[index] else None

    def set_output(self, value: Data | Const, index: int = 0) -> None:
        outputs = self.node.output
        if len(outputs) > index and outputs[index]:
            self.values[outputs[index]] = value

    def add_layer(self, type_name: str, name: str, fields: dict[str, Any], inputs: list[Data],
                  description: str | None = None) -> tuple[sympy.Expr, ...]:
        """Append a spec layer; returns its output shape (from nnspec's own handler)."""
        from pydantic import ValidationError

        table = self.doc.symbol_table()
        context = SpecContext(table, self.defaults())
        try:
            item = {"type": type_name, **{k: spec_value(v, table) for k, v in fields.items()}}
        except ExpressionSyntaxError as exc:  # a size the spec language cannot hold (e.g. over its length cap)
            raise self.error(f"a size of the {type_name} layer cannot be written in a spec: {exc}") from None
        frames = [x for x in inputs if x.time is not None]
        if frames and (len(frames) != len(inputs) or len(inputs) != 1):
            raise self.error(f"a {type_name} of {len(inputs)} tensors on frames (the batch merged with time): a "
                             "TimeDistributed wraps a layer with one input")
        try:
            spec = LAYERS[type_name].spec_model.model_validate(item, context=context)
            if frames:  # inside a TimeDistributed: counted wrapped now, written wrapped at the end (run)
                spec = LAYERS["TimeDistributed"].spec_model.model_validate(wrap_item(item), context=context)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise self.error(f"cannot be written as a {type_name} layer ({problems})") from None
        if frames:
            type_name = "TimeDistributed"
        ctx = LayerContext(name, type_name, None, self.defaults())
        for x in inputs:
            self.spec_uses[x.layer] += 1
        result = LAYERS[type_name].handler(spec, [self.shapes[x.layer] for x in inputs], ctx)
        sources = [x.layer for x in inputs]
        self.doc.layers.append(LayerDoc(item["type"], name, dict(fields), sources, description))
        self.shapes[name] = tuple(result.output_shape)
        if frames:
            self.time_distributed.add(name)
            return self.shapes[name][1:]  # the frame's shape: what the handlers lay out
        return self.shapes[name]

    def same_layout(self, x: Data, name: str, shape: tuple[sympy.Expr, ...]) -> Data:
        return Data(name, shape, x.axes, x.batch, x.rank)

    def ensure_layout(self, x: Data, wanted: list[int], why: str) -> Data:
        """x with spec axes exactly the ONNX axes `wanted` (in that order), writing a Permute (and a
        Reshape for size-1 axes the spec does not have) where needed."""
        wanted_t = tuple(wanted)
        if x.axes == wanted_t:
            return x
        if set(wanted_t) == set(x.axes):
            order = [x.axes.index(a) for a in wanted_t]
            shape = tuple(x.shape[j] for j in order)
            big = [j for j in order if x.shape[j] != 1]
            if big == sorted(big):  # only size-1 axes move: the data order is the same, a Reshape does it
                name = self.unique(f"{x.layer}.reshape")
                self.add_layer("Reshape", name, {"target_shape": list(shape)}, [x])
            else:
                name = self.unique(f"{x.layer}.permute")
                self.add_layer("Permute", name, {"dims": [j + 1 for j in order]}, [x],
                               description=f"layout for {why} (free, like a Transpose)")
            return Data(name, shape, wanted_t, x.batch, x.rank)
        if set(x.axes) <= set(wanted_t) and set(wanted_t) - set(x.axes) <= set(x.phantoms):
            if x.batch != 0:
                raise self.error(f"needs the data in ONNX order for {why}, but its batch axis is ONNX axis {x.batch}")
            real = sorted(x.axes)
            y = self.ensure_layout(x, real, why)
            full = [a for a in range(1, x.rank)]
            dims = {a: d for a, d in zip(y.axes, y.shape, strict=False)}
            shape = tuple(dims.get(a, sympy.Integer(1)) for a in full)
            name = self.unique(f"{x.layer}.reshape")
            self.add_layer("Reshape", name, {"target_shape": list(shape)}, [y])
            return self.ensure_layout(Data(name, shape, tuple(full), 0, x.rank), wanted, why)
        raise self.error(f"cannot arrange its input for {why} (ONNX axes {wanted}, the tensor has {list(x.axes)})")

    def identity(self, x: Data, why: str) -> Data:
        if x.batch != 0:
            raise self.error(f"needs the batch on ONNX axis 0 for {why}; here it is axis {x.batch}")
        return self.ensure_layout(x, list(range(1, x.rank)), why)

    def channels_last(self, x: Data, why: str) -> Data:
        if x.batch != 0:
            raise self.error(f"expects (N, C, ...) for {why}; the batch is ONNX axis {x.batch}")
        return self.ensure_layout(x, [*range(2, x.rank), 1], why)

    def spec_axis(self, x: Data, onnx_axis: int) -> int:
        """The Keras axis (batch counted as 0; -1 for the last) of an ONNX axis of x."""
        position = x.axes.index(onnx_axis)
        return -1 if position == len(x.axes) - 1 else position + 1

    def run(self) -> tuple[SpecDocument, list[str]]:
        for tensor in self.graph.initializer:
            self.values[tensor.name] = Const(tuple(tensor.dims), tensor=tensor, weight=True)
        for tensor in self.graph.sparse_initializer:
            raise ModelImportError(f"{self.source}: sparse initializer '{tensor.values.name}' is not supported")
        for graph_input in self.graph.input:
            if graph_input.name not in self.values:
                self.declare_input(graph_input)
        find_same_average_pools(self)
        for node in self.graph.node:
            self.node = node
            if node.domain not in ("", "ai.onnx"):
                raise self.error(f"op domain '{node.domain}' is not supported (only the standard ONNX ops)")
            if node.output and node.output[0] in self.claimed:
                self.claimed.pop(node.output[0])(self)
            elif is_step_node(self):
                step_op(self)
            elif node.op_type in FOLDABLE and all(isinstance(self.values.get(i), Const) for i in node.input if i):
                fold(self)
            else:
                self.dispatch(node)
            keep_frames(self)
            if node.op_type in RESHAPING and node.input and self.is_weight(node.input[0]):
                for out in node.output:
                    if isinstance(self.values.get(out), Const):
                        self.values[out] = replace(self.values[out], weight=True)
        self.node = None
        outputs = []
        for out in self.graph.output:
            if isinstance(self.values.get(out.name), Step):  # a loop's last state is a model output
                self.values[out.name] = close(self, out.name)
            value = self.values.get(out.name)
            if not isinstance(value, Data):
                raise ModelImportError(f"{self.source}: model output '{out.name}' is not an activation tensor")
            if value.time is not None:
                raise ModelImportError(f"{self.source}: model output '{out.name}' is frames never split back to "
                                       "(N, T, ...) (TimeDistributed): no spec layer gives that")
            if value.layer in {x.name for x in self.doc.inputs}:
                raise ModelImportError(f"{self.source}: model output '{out.name}' is a model input: nothing to count")
            outputs.append(value.layer)
        self.doc.outputs = list(dict.fromkeys(outputs))
        write_wrapped(self)
        self.prune()
        return self.doc, self.notes

    def dispatch(self, node: Any) -> None:
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise self.error(f"ONNX op '{node.op_type}' is not supported by nnspec's importer",
                             hint="docs/importers.md#onnx lists the ops it reads")
        handler(self)

    def declare_input(self, graph_input: Any) -> None:
        tensor_type = graph_input.type.tensor_type
        if not tensor_type.HasField("shape"):
            raise ModelImportError(f"{self.source}: input '{graph_input.name}' has no shape")
        dims = list(tensor_type.shape.dim)
        if len(dims) < 2:
            raise ModelImportError(f"{self.source}: input '{graph_input.name}' has rank {len(dims)}; axis 0 is taken "
                                   "as the batch, so an input needs rank 2 or more")
        name = self.unique(layer_name(graph_input.name, "input"))
        if dims[0].HasField("dim_value"):
            self.static_batch.add(dims[0].dim_value)
        shape: list[Any] = []
        for axis, dim in enumerate(dims[1:]):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(sympy.Integer(dim.dim_value))
            else:
                suggested = dim.dim_param if dim.HasField("dim_param") else None
                shape.append(make_symbol(self.open_dims.symbol(name, axis, len(dims) - 1, suggested)))
        rank = len(dims)
        consumers = {n.op_type for n in self.graph.node if graph_input.name in n.input}
        if rank >= 3 and consumers & CHANNEL_OPS:  # declare it channels-last
            axes = (*range(2, rank), 1)
            spec_shape = tuple(shape[a - 1] for a in axes)
        else:
            axes = tuple(range(1, rank))
            spec_shape = tuple(shape)
        model_axes = [a - 1 for a in axes] if list(axes) != list(range(1, rank)) else None
        self.doc.inputs.append(InputDoc(name, [int(d) if d.is_Integer else d for d in spec_shape], model_axes))
        self.shapes[name] = spec_shape
        self.values[graph_input.name] = Data(name, spec_shape, axes, 0, rank)

    def prune(self) -> None:
        """Drop layers (and inputs) that lead to no output, as ONNX allows and a spec does not."""
        needed = {base_layer(o) for o in self.doc.outputs}  # `name:1` is an output of the layer `name`
        for layer in reversed(self.doc.layers):
            if layer.name in needed:
                needed.update(base_layer(i) for i in layer.inputs or [])
        dropped = [layer.name for layer in self.doc.layers if layer.name not in needed]
        if dropped:
            self.notes.append(f"dropped {len(dropped)} layer(s) that lead to no model output: {', '.join(dropped[:5])}"
                              + (" ..." if len(dropped) > 5 else ""))
        self.doc.layers = [layer for layer in self.doc.layers if layer.name in needed]
        unused = [x.name for x in self.doc.inputs if x.name not in needed]
        if unused:
            self.notes.append(f"model input(s) {', '.join(unused)} lead to no output: left out")
            self.doc.inputs = [x for x in self.doc.inputs if x.name in needed]

    def set_const(self, array: Any, index: int = 0) -> None:
        array = self.np.asarray(array)
        self.set_output(Const(tuple(int(d) for d in array.shape), value=array), index)

    def axes_input(self, index: int, required: bool = True) -> list[int]:
        attrs = self.attrs()
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        name = self.optional_input(index)
        if name is None:
            if required:
                raise self.error("has no axes")
            return []
        return [int(a) for a in self.const(name, "axes").reshape(-1)]

    def unary_on(self, x: Data, type_name: str, fields: dict[str, Any]) -> None:
        name = self.node_name()
        shape = self.add_layer(type_name, name, fields, [x])
        self.set_output(self.same_layout(x, name, shape))

    def opset(self) -> int:
        for o in self.model.opset_import:
            if o.domain in ("", "ai.onnx"):
                return int(o.version)
        return 1

    def is_weight(self, name: str) -> bool:
        """Whether a constant is a model weight (an initializer), not a constant the graph computes."""
        value = self.values.get(name)
        return isinstance(value, Const) and value.weight

    def refresh(self, layer: LayerDoc) -> tuple[sympy.Expr, ...]:
        """Re-run a layer's handler after its fields changed; returns its output shape (the callers check
        that it stays the same)."""
        table = self.doc.symbol_table()
        item = {"type": layer.type, **{k: spec_value(v, table) for k, v in layer.fields.items()}}
        wrapped = layer.name in self.time_distributed
        type_name = "TimeDistributed" if wrapped else layer.type
        spec = LAYERS[type_name].spec_model.model_validate(wrap_item(item) if wrapped else item,
                                                           context=SpecContext(table, self.defaults()))
        result = LAYERS[type_name].handler(spec, [self.shapes[s] for s in layer.inputs or []],
                                           LayerContext(layer.name, type_name, None, self.defaults()))
        return tuple(result.output_shape)[1:] if wrapped else tuple(result.output_shape)
