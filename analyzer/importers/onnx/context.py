"""The state of one ONNX import and what every handler shares (the ImportContext each part is passed): the values
of the ONNX tensors, the spec document being written, adding a spec layer (shaped by nnspec's own layer handler),
and moving a tensor's layout (which ONNX axis each spec axis is) where the order of the data matters. It imports
none of the parts, so that they can name it; importer.py drives them over the graph."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import sympy

from analyzer.importers.document import LayerDoc, ModelImportError, SpecDocument, layer_name
from analyzer.importers.onnx.loop_values import Loop
from analyzer.importers.onnx.values import Const, Data, spec_value
from analyzer.importers.symbols import ImportOptions, OpenDims
from analyzer.layers import LAYERS, LayerContext
from analyzer.spec.expressions import ExpressionSyntaxError
from analyzer.spec.fields import SpecContext


def wrap_item(item: dict[str, Any]) -> dict[str, Any]:
    """A layer's validated form, as the TimeDistributed around it (time_distributed.py)."""
    return {"type": "TimeDistributed", "layer": item}


class ImportContext:
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
