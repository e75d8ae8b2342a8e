"""ONNX models -> spec documents (needs the optional `onnx` package, imported here only).

ONNX is channels-first with the batch on axis 0 (NCHW); specs are channels-last without the
batch. The importer does not move data: it tracks, for every activation tensor, which ONNX
axis each spec axis is (its *layout*), so

* a Transpose costs nothing and writes nothing: it only changes the layout; a model that is
  channels-last around its convolutions (Transpose, Conv, Transpose, as a Keras port is)
  gives a spec without any Permute;
* a Conv, pooling or BatchNormalization reads the channels from ONNX axis 1: their spec input
  is channels-last, and a model input that feeds them directly is declared channels-last
  ((L, C) for an ONNX (N, C, L));
* where the order of the data matters (Reshape, Flatten, MatMul's last axis, Concat, merges)
  and the layout is not the ONNX order, a Permute layer (free, like a Transpose) is written.

Axis 0 of every model input is the batch. `dim_param` dimensions become symbols (named after
the dim_param; default from --set, else DEFAULT_DYNAMIC_SIZE). Shape arithmetic (Shape,
Gather, Unsqueeze, Concat, ... on shapes, as torch.onnx writes for `x.view(x.size(0), -1)`)
is evaluated symbolically; a Reshape to sizes the exporter hard-coded is left to the lifting
step (lift.py), as for Keras.

Supported ops: Conv, ConvTranspose, Gemm, MatMul (by a weight), BatchNormalization,
LayerNormalization, InstanceNormalization, Relu, Sigmoid, Tanh, Softmax, Gelu, Elu, Selu,
LeakyRelu, HardSigmoid, Softplus, Softsign, Clip(0, 6), Exp, Log, Cos, Sin, Sqrt, Abs, Neg,
Add, Sub, Mul, Div (two activations; Add of a bias after MatMul or Conv), Reshape, Flatten,
Transpose, Squeeze, Unsqueeze, Concat, MaxPool, AveragePool, GlobalAveragePool,
GlobalMaxPool, ReduceMean over the spatial axes, Pad (zeros, spatial), GRU, LSTM, RNN
(one direction), Gather (an embedding lookup, or the last step of a recurrent output),
Identity, Dropout, Cast, and constant / shape arithmetic. Anything else is refused with the
node's name and op.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sympy

from analyzer.importers.document import InputDoc, LayerDoc, ModelImportError, SpecDocument, layer_name, size_text
from analyzer.importers.symbols import ImportOptions, OpenDims
from analyzer.layers import LAYERS, LayerContext
from analyzer.spec.fields import SpecContext
from analyzer.symbolic import evaluate, floor_div, make_symbol, product

BATCH = sympy.Symbol("batch__", integer=True, positive=True)  # never written into a spec
MAX_ONNX_BYTES = 2 * 1024**3

ACTIVATIONS = {
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Elu": "elu", "Selu": "selu", "LeakyRelu": "leaky_relu",
    "HardSigmoid": "hard_sigmoid", "Softplus": "softplus", "Softsign": "softsign", "Gelu": "gelu",
}
FUNCTIONS = {"Exp": "exp", "Log": "log", "Cos": "cos", "Sin": "sin", "Sqrt": "sqrt", "Abs": "abs", "Neg": "negative"}
RNN_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "HardSigmoid": "hard_sigmoid", "Elu": "elu",
                   "Softsign": "softsign", "Softplus": "softplus"}
MERGES = {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Div": "Multiply"}
CHANNEL_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "BatchNormalization", "InstanceNormalization"}
PASS_THROUGH = {"Identity", "Dropout", "Cast"}
RESHAPING = {"Reshape", "Flatten", "Unsqueeze", "Squeeze", "Transpose", "Identity", "Cast"}
FOLDABLE = {"Reshape", "Flatten", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Min", "Max", "Mod"}


@dataclass(frozen=True)
class Data:
    """An activation tensor: the spec layer (or input) that holds it, its spec shape, and its layout:
    spec axis i is ONNX axis axes[i]; the batch is ONNX axis `batch`; any other ONNX axis has size 1
    and is not in the spec (a 'phantom' axis, e.g. from Unsqueeze)."""

    layer: str
    shape: tuple[sympy.Expr, ...]
    axes: tuple[int, ...]
    batch: int
    rank: int
    sequence_of: str | None = None  # the recurrent layer whose per-step output this is (return_sequences)

    def onnx_shape(self) -> list[sympy.Expr]:
        dims: list[sympy.Expr] = [sympy.Integer(1)] * self.rank
        dims[self.batch] = BATCH
        for d, a in zip(self.shape, self.axes, strict=False):
            dims[a] = d
        return dims

    @property
    def phantoms(self) -> list[int]:
        return [a for a in range(self.rank) if a != self.batch and a not in self.axes]

    def is_identity(self) -> bool:
        return self.batch == 0 and self.axes == tuple(range(1, self.rank))


@dataclass(frozen=True)
class Const:
    """A constant: an initializer, a Constant, or shape arithmetic (entries may be sympy expressions).
    `value` is None for an initializer not yet read (only its `dims` are known)."""

    dims: tuple[int, ...]
    value: Any = None  # a numpy array (dtype object for symbolic entries)
    tensor: Any = None  # the TensorProto, read on demand
    opaque: str | None = None  # why the value is unknown (e.g. a ConstantOfShape of a symbolic shape)
    weight: bool = False  # an initializer, or one reshaped (a weight, not a constant the graph computes)


def onnx_document(path: str | Path, options: ImportOptions | None = None) -> tuple[SpecDocument, list[str]]:
    try:
        import numpy  # noqa: F401
        import onnx
    except ImportError:
        raise ModelImportError(f"{path}: reading ONNX models needs the 'onnx' package, which is not installed",
                               hint="pip install 'nnspec[onnx]'") from None
    file = Path(path)
    try:
        if file.stat().st_size > MAX_ONNX_BYTES:
            raise ModelImportError(f"{file}: larger than 2 GiB")
        model = onnx.load(str(file), load_external_data=False)
    except FileNotFoundError:
        raise ModelImportError(f"{file}: no such file") from None
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not ONNX
        raise ModelImportError(f"{file}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    return _OnnxImporter(model, str(file), options or ImportOptions()).run()


class _OnnxImporter:
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

    # ---- helpers ----------------------------------------------------------------------------

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

    def data(self, name: str) -> Data:
        value = self.value(name)
        if not isinstance(value, Data):
            raise self.error(f"expects an activation tensor for '{name}', got a constant")
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

    # ---- spec layers ------------------------------------------------------------------------

    def add_layer(self, type_name: str, name: str, fields: dict[str, Any], inputs: list[Data],
                  description: str | None = None) -> tuple[sympy.Expr, ...]:
        """Append a spec layer; returns its output shape (from nnspec's own handler)."""
        from pydantic import ValidationError

        table = self.doc.symbol_table()
        context = SpecContext(table, self.defaults())
        item = {"type": type_name, **{k: _spec_value(v, table) for k, v in fields.items()}}
        try:
            spec = LAYERS[type_name].spec_model.model_validate(item, context=context)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise self.error(f"cannot be written as a {type_name} layer ({problems})") from None
        ctx = LayerContext(name, type_name, None, self.defaults())
        for x in inputs:
            self.spec_uses[x.layer] += 1
        result = LAYERS[type_name].handler(spec, [self.shapes[x.layer] for x in inputs], ctx)
        sources = [x.layer for x in inputs]
        self.doc.layers.append(LayerDoc(type_name, name, dict(fields), sources, description))
        self.shapes[name] = tuple(result.output_shape)
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

    # ---- the graph --------------------------------------------------------------------------

    def run(self) -> tuple[SpecDocument, list[str]]:
        for tensor in self.graph.initializer:
            self.values[tensor.name] = Const(tuple(tensor.dims), tensor=tensor, weight=True)
        for tensor in self.graph.sparse_initializer:
            raise ModelImportError(f"{self.source}: sparse initializer '{tensor.values.name}' is not supported")
        for graph_input in self.graph.input:
            if graph_input.name not in self.values:
                self.declare_input(graph_input)
        for node in self.graph.node:
            self.node = node
            if node.domain not in ("", "ai.onnx"):
                raise self.error(f"op domain '{node.domain}' is not supported (only the standard ONNX ops)")
            if node.op_type in FOLDABLE and all(isinstance(self.values.get(i), Const) for i in node.input if i):
                self.fold()
            else:
                handler = getattr(self, f"op_{node.op_type}", None)
                if handler is None:
                    raise self.error(f"ONNX op '{node.op_type}' is not supported by nnspec's importer",
                                     hint="docs/importers.md#onnx lists the ops it reads")
                handler()
            if node.op_type in RESHAPING and node.input and self.is_weight(node.input[0]):
                for out in node.output:
                    if isinstance(self.values.get(out), Const):
                        self.values[out] = replace(self.values[out], weight=True)
        self.node = None
        outputs = []
        for out in self.graph.output:
            value = self.values.get(out.name)
            if not isinstance(value, Data):
                raise ModelImportError(f"{self.source}: model output '{out.name}' is not an activation tensor")
            if value.layer in {x.name for x in self.doc.inputs}:
                raise ModelImportError(f"{self.source}: model output '{out.name}' is a model input: nothing to count")
            outputs.append(value.layer)
        self.doc.outputs = list(dict.fromkeys(outputs))
        self.prune()
        return self.doc, self.notes

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
        needed = set(self.doc.outputs)
        for layer in reversed(self.doc.layers):
            if layer.name in needed:
                needed.update(layer.inputs or [])
        dropped = [layer.name for layer in self.doc.layers if layer.name not in needed]
        if dropped:
            self.notes.append(f"dropped {len(dropped)} layer(s) that lead to no model output: {', '.join(dropped[:5])}"
                              + (" ..." if len(dropped) > 5 else ""))
        self.doc.layers = [layer for layer in self.doc.layers if layer.name in needed]
        unused = [x.name for x in self.doc.inputs if x.name not in needed]
        if unused:
            self.notes.append(f"model input(s) {', '.join(unused)} lead to no output: left out")
            self.doc.inputs = [x for x in self.doc.inputs if x.name in needed]

    # ---- constants and shapes ---------------------------------------------------------------

    def set_const(self, array: Any, index: int = 0) -> None:
        array = self.np.asarray(array)
        self.set_output(Const(tuple(int(d) for d in array.shape), value=array), index)

    def fold(self) -> None:
        """An op of constants only (shape arithmetic, torch's padding computations): computed here."""
        np = self.np
        op = self.node.op_type
        arrays = [self.const(i) for i in self.node.input if i]
        if op == "Reshape":
            array, shape = arrays
            entries = [sympy.sympify(d) for d in shape.reshape(-1)]
            if not all(e.is_Integer for e in entries):
                self.set_output(Const((len(entries),), opaque="a Reshape of a constant to a symbolic shape"))
                return
            target = [int(e) for e in entries]
            target = [array.shape[i] if d == 0 and not self.attrs().get("allowzero", 0) else d for i, d in enumerate(target)]
            self.set_const(array.reshape(target))
        elif op == "Flatten":
            (array,) = arrays
            axis = _norm(self.attrs().get("axis", 1), array.ndim)
            self.set_const(array.reshape(int(np.prod(array.shape[:axis])), -1))
        elif op in ("Neg", "Abs", "Floor", "Ceil", "Sqrt"):
            (array,) = arrays
            function = {"Neg": lambda v: -v, "Abs": abs, "Floor": sympy.floor, "Ceil": sympy.ceiling,
                        "Sqrt": sympy.sqrt}[op]
            if array.dtype == object:
                self.set_const(np.frompyfunc(lambda v: function(sympy.sympify(v)), 1, 1)(array))
            else:
                self.set_const({"Neg": np.negative, "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil,
                                "Sqrt": np.sqrt}[op](array))
        elif op in ("Min", "Max", "Mod"):
            function = {"Min": lambda a, b: sympy.Min(a, b), "Max": lambda a, b: sympy.Max(a, b),
                        "Mod": lambda a, b: a - b * floor_div(a, b)}[op]
            result = arrays[0]
            for other in arrays[1:]:
                if result.dtype != object and other.dtype != object:
                    result = {"Min": np.minimum, "Max": np.maximum, "Mod": np.mod}[op](result, other)
                else:
                    result = np.frompyfunc(lambda a, b: function(sympy.sympify(a), sympy.sympify(b)), 2, 1)(
                        result.astype(object), other.astype(object))
            self.set_const(result)
        else:
            getattr(self, f"op_{op}")()

    def op_Constant(self) -> None:
        attrs = self.attrs()
        if "value" in attrs:
            self.set_const(self.numpy_helper.to_array(attrs["value"]))
        elif "value_int" in attrs or "value_float" in attrs:
            self.set_const(self.np.array(attrs.get("value_int", attrs.get("value_float"))))
        elif "value_ints" in attrs or "value_floats" in attrs:
            self.set_const(self.np.array(list(attrs.get("value_ints", attrs.get("value_floats")))))
        else:
            raise self.error("a Constant of a kind nnspec does not read (sparse or string)")

    def op_Shape(self) -> None:
        source = self.value(self.node.input[0])
        dims = source.onnx_shape() if isinstance(source, Data) else [sympy.Integer(d) for d in source.dims]
        attrs = self.attrs()
        start, end = attrs.get("start", 0), attrs.get("end", len(dims))
        self.set_const(_objects(self.np, dims[slice(start, end)]))

    def op_Size(self) -> None:
        source = self.value(self.node.input[0])
        dims = source.onnx_shape() if isinstance(source, Data) else [sympy.Integer(d) for d in source.dims]
        self.set_const(_objects(self.np, [product(dims)]).reshape(()))

    def op_ConstantOfShape(self) -> None:
        shape = self.const(self.node.input[0], "shape")
        attrs = self.attrs()
        fill = self.numpy_helper.to_array(attrs["value"]).reshape(-1)[0] if "value" in attrs else 0.0
        dims = [_int_or_none(d) for d in shape.reshape(-1)]
        if any(d is None for d in dims):
            self.set_output(Const((len(dims),), opaque="a ConstantOfShape of a symbolic shape (e.g. a zero initial state)"))
        else:
            self.set_const(self.np.full(dims, fill))

    def op_Gather(self) -> None:
        source = self.value(self.node.input[0])
        axis = self.attrs().get("axis", 0)
        if isinstance(source, Const) and isinstance(self.value(self.node.input[1]), Const):
            data, indices = self.const(self.node.input[0]), self.const(self.node.input[1], "indices")
            self.set_const(self.np.take(data, indices.astype(int) if indices.dtype != object else indices, axis=axis))
            return
        if isinstance(source, Const):
            self.embedding(source)
            return
        self.last_step(self.data(self.node.input[0]), axis)

    def op_Unsqueeze(self) -> None:
        axes = self.axes_input(1)
        source = self.value(self.node.input[0])
        if isinstance(source, Const):
            array = self.const(self.node.input[0])
            for a in sorted(_norm(a, array.ndim + len(axes)) for a in axes):
                array = self.np.expand_dims(array, a)
            self.set_const(array)
            return
        x = self.data(self.node.input[0])
        rank = x.rank + len(axes)
        inserted = sorted(_norm(a, rank) for a in axes)
        mapping = [a for a in range(rank) if a not in inserted]  # old axis i -> new axis mapping[i]
        self.set_output(Data(x.layer, x.shape, tuple(mapping[a] for a in x.axes), mapping[x.batch], rank, x.sequence_of))

    def op_Squeeze(self) -> None:
        source = self.value(self.node.input[0])
        if isinstance(source, Const):
            array = self.const(self.node.input[0])
            axes = self.axes_input(1, required=False)
            self.set_const(self.np.squeeze(array, axis=tuple(axes)) if axes else self.np.squeeze(array))
            return
        x = self.data(self.node.input[0])
        axes = self.axes_input(1, required=False)
        dims = x.onnx_shape()
        removed = sorted(_norm(a, x.rank) for a in axes) if axes else [a for a, d in enumerate(dims) if d == 1 and a != x.batch]
        if x.batch in removed:
            raise self.error("squeezes the batch axis")
        real = [a for a in removed if a in x.axes]
        if real:  # a spec axis of size 1 goes away: a Reshape
            keep = [a for a in x.axes if a not in real]
            y = self.ensure_layout(x, sorted(x.axes), "Squeeze") if list(x.axes) != sorted(x.axes) else x
            shape = tuple(d for d, a in zip(y.shape, y.axes, strict=False) if a not in real)
            name = self.unique(f"{x.layer}.squeeze")
            self.add_layer("Reshape", name, {"target_shape": list(shape)}, [y])
            x = Data(name, shape, tuple(sorted(keep)), x.batch, x.rank)
        mapping = {}
        new = 0
        for a in range(x.rank):
            if a in removed:
                continue
            mapping[a] = new
            new += 1
        self.set_output(Data(x.layer, x.shape, tuple(mapping[a] for a in x.axes), mapping[x.batch], new, x.sequence_of))

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

    def op_Concat(self) -> None:
        values = [self.value(i) for i in self.node.input]
        axis = self.attrs()["axis"]
        if all(isinstance(v, Const) for v in values):
            arrays = [self.const(i) for i in self.node.input]
            if any(a.dtype == object for a in arrays):
                arrays = [a.astype(object) for a in arrays]
            self.set_const(self.np.concatenate(arrays, axis=axis))
            return
        if not all(isinstance(v, Data) for v in values):
            raise self.error("concatenates a constant with an activation tensor: no spec layer does that")
        xs = [self.data(i) for i in self.node.input]
        axis = _norm(axis, xs[0].rank)
        if any(x.rank != xs[0].rank for x in xs):
            raise self.error("concatenates tensors of different ranks")
        if axis == xs[0].batch:
            raise self.error("concatenates along the batch axis")
        first = xs[0]
        if not all((x.axes, x.batch) == (first.axes, first.batch) for x in xs) or axis not in first.axes:
            xs = [self.identity(x, "Concat") for x in xs]
            first = xs[0]
        name = self.node_name()
        fields = {} if self.spec_axis(first, axis) == -1 else {"axis": self.spec_axis(first, axis)}
        shape = self.add_layer("Concatenate", name, fields, xs)
        self.set_output(self.same_layout(first, name, shape))

    def op_Slice(self) -> None:
        if not isinstance(self.value(self.node.input[0]), Const):
            self.crop(self.data(self.node.input[0]))
            return
        array = self.const(self.node.input[0])
        starts = [int(v) for v in self.const(self.node.input[1], "starts").reshape(-1)]
        ends = [int(v) for v in self.const(self.node.input[2], "ends").reshape(-1)]
        axes = list(range(len(starts)))
        if self.optional_input(3):
            axes = [int(v) for v in self.const(self.node.input[3], "axes").reshape(-1)]
        steps = [1] * len(starts)
        if self.optional_input(4):
            steps = [int(v) for v in self.const(self.node.input[4], "steps").reshape(-1)]
        index = [slice(None)] * array.ndim
        for s, e, a, st in zip(starts, ends, axes, steps, strict=False):
            index[_norm(a, array.ndim)] = slice(s, None if e >= 2**62 else e, st)
        self.set_const(array[tuple(index)])

    def crop(self, x: Data) -> None:
        """A Slice of an activation with step 1 along one or two axes: Cropping1D / Cropping2D."""
        starts = [sympy.sympify(v) for v in self.const(self.node.input[1], "starts").reshape(-1)]
        ends = [sympy.sympify(v) for v in self.const(self.node.input[2], "ends").reshape(-1)]
        axes = list(range(len(starts)))
        if self.optional_input(3):
            axes = [_norm(int(a), x.rank) for a in self.const(self.node.input[3], "axes").reshape(-1)]
        if self.optional_input(4) and any(int(v) != 1 for v in self.const(self.node.input[4], "steps").reshape(-1)):
            raise self.error("a Slice with steps other than 1: no spec layer does that")
        dims = x.onnx_shape()
        cuts: dict[int, tuple[sympy.Expr, sympy.Expr]] = {}
        for start, end, axis in zip(starts, ends, axes, strict=True):
            n = dims[axis]
            begin = start + n if start.is_negative else start
            stop = n if end.is_Integer and end >= 2**62 else (end + n if end.is_negative else end)
            cuts[axis] = (begin, n - stop)
        cuts = {a: c for a, c in cuts.items() if c != (0, 0)}
        if x.batch in cuts:
            raise self.error("a Slice of the batch axis")
        if not cuts:
            self.set_output(x)
            return
        if any(a not in x.axes for a in cuts) or len(cuts) > 2 or len(x.axes) - len(cuts) < 1:
            raise self.error("a Slice of an activation that is not a cropping of one or two axes")
        rank = len(x.axes) - 1
        if rank not in (1, 2):
            raise self.error(f"a Slice of a rank-{len(x.axes)} activation: nnspec has Cropping1D and Cropping2D")
        others = [a for a in x.axes if a not in cuts]
        leading = [a for a in x.axes if a in cuts] + others[: rank - len(cuts)]
        x = self.ensure_layout(x, [*leading, *others[rank - len(cuts):]], "Slice")
        cropping = [list(cuts.get(a, (0, 0))) for a in leading]
        name = self.node_name()
        shape = self.add_layer(f"Cropping{rank}D", name, {"cropping": cropping[0] if rank == 1 else cropping}, [x])
        self.set_output(self.same_layout(x, name, shape))

    def op_Range(self) -> None:
        start, limit, delta = (self.const(i, "bound").reshape(()).item() for i in self.node.input)
        if not all(isinstance(v, (int, float)) or getattr(v, "is_Integer", False) for v in (start, limit, delta)):
            self.set_output(Const((0,), opaque="a Range with symbolic bounds"))
            return
        self.set_const(self.np.arange(int(start), int(limit), int(delta)))

    def op_Equal(self) -> None:
        self.const_binary(lambda a, b: sympy.true if sympy.expand(a - b) == 0 else sympy.false)

    def op_Where(self) -> None:
        cond, a, b = (self.const(i) for i in self.node.input)
        cond = self.np.vectorize(lambda c: bool(c))(cond)
        self.set_const(self.np.where(cond, a, b))

    def op_Expand(self) -> None:
        if isinstance(self.value(self.node.input[0]), Data):
            raise self.error("expands an activation tensor: no spec layer does that")
        array = self.const(self.node.input[0])
        shape = [_int_or_none(d) for d in self.const(self.node.input[1], "shape").reshape(-1)]
        if any(d is None for d in shape):
            self.set_output(Const((len(shape),), opaque="an Expand to a symbolic shape"))
            return
        self.set_const(array * self.np.ones(shape, dtype=array.dtype))

    def const_binary(self, function: Any) -> None:
        a, b = self.const(self.node.input[0]), self.const(self.node.input[1])
        if a.dtype == object or b.dtype == object:
            a, b = a.astype(object), b.astype(object)
            result = self.np.frompyfunc(lambda x, y: function(sympy.sympify(x), sympy.sympify(y)), 2, 1)(a, b)
            self.set_const(result)
        else:
            self.set_const(self.np.frompyfunc(lambda x, y: function(sympy.sympify(x), sympy.sympify(y)), 2, 1)(a, b)
                           .astype(a.dtype) if self.node.op_type != "Equal" else
                           self.np.frompyfunc(lambda x, y: bool(x == y), 2, 1)(a, b).astype(bool))

    # ---- pass-through and layout ------------------------------------------------------------

    def op_Identity(self) -> None:
        self.set_output(self.value(self.node.input[0]))

    op_Cast = op_Identity

    def op_Dropout(self) -> None:
        self.set_output(self.value(self.node.input[0]))

    def op_Transpose(self) -> None:
        source = self.value(self.node.input[0])
        perm = self.attrs().get("perm")
        if isinstance(source, Const):
            self.set_const(self.np.transpose(self.const(self.node.input[0]), perm))
            return
        x = self.data(self.node.input[0])
        perm = [_norm(int(p), x.rank) for p in perm] if perm is not None else list(reversed(range(x.rank)))
        if sorted(perm) != list(range(x.rank)):
            raise self.error(f"perm {list(self.attrs().get('perm'))} is not a permutation of the {x.rank} axes: the ONNX "
                             "file is invalid", hint="torch.onnx (TorchScript) writes such perms for movedim with "
                             "negative dims; use non-negative dims in the model")
        inverse = [0] * x.rank
        for new, old in enumerate(perm):
            inverse[old] = new
        self.set_output(Data(x.layer, x.shape, tuple(inverse[a] for a in x.axes), inverse[x.batch], x.rank, x.sequence_of))

    def op_Flatten(self) -> None:
        x = self.data(self.node.input[0])
        axis = _norm(self.attrs().get("axis", 1), x.rank)
        if axis != 1:
            raise self.error(f"Flatten with axis {axis} merges the batch with other axes; nnspec reads axis 1 only")
        if len(x.shape) == 1 and x.rank == 2:
            self.set_output(x)
            return
        if not _order_kept(x):
            x = self.identity(x, "Flatten")
        name = self.node_name()
        shape = self.add_layer("Flatten", name, {}, [x])
        self.set_output(Data(name, shape, (1,), 0, 2))

    def op_Reshape(self) -> None:
        x = self.data(self.node.input[0])
        target = list(self.const(self.node.input[1], "shape").reshape(-1))
        allow_zero = self.attrs().get("allowzero", 0)
        dims = x.onnx_shape()
        batch_entry = sympy.sympify(target[0]) if target else None
        batch_ok = (batch_entry == BATCH or (batch_entry == 0 and not allow_zero) or batch_entry == -1
                    or (batch_entry is not None and batch_entry.is_Integer and int(batch_entry) in self.static_batch
                        and len(self.static_batch) == 1))
        if not batch_ok or x.batch != 0:
            raise self.error("a Reshape that moves or merges the batch axis; nnspec keeps the batch on axis 0")
        rest: list[Any] = []
        for i, entry in enumerate(target[1:], start=1):
            e = sympy.sympify(entry)
            if e == 0 and not allow_zero:
                e = dims[i]
            if e.has(BATCH):
                raise self.error("a Reshape whose sizes involve the batch")
            rest.append(e)
        if batch_entry == -1 and any(e == -1 for e in rest):
            raise self.error("a Reshape with two inferred (-1) sizes")
        if not rest:
            raise self.error("a Reshape to the batch axis alone")
        if not _order_kept(x):
            x = self.identity(x, "Reshape")
        same = len(rest) == len(x.shape) and all(sympy.expand(a - b) == 0 for a, b in zip(rest, x.shape, strict=False))
        if same and all(e != -1 for e in rest):
            self.set_output(x)  # the same shape: nothing to write
            return
        self.infer_export_size(x.shape, rest)
        name = self.node_name()
        shape = self.add_layer("Reshape", name, {"target_shape": rest}, [x])
        self.set_output(Data(name, shape, tuple(range(1, len(shape) + 1)), 0, len(shape) + 1))

    def infer_export_size(self, shape: tuple[sympy.Expr, ...], target: list[Any]) -> None:
        """A Reshape to sizes the exporter hard-coded tells the size of an open dimension at export
        (PET-CGDNN's (117, 25) after (L - 11, 1, 25): L = 128). That size becomes the symbol's
        default while importing, so the hard-coded sizes hold; lifting then rewrites them."""
        if any(not sympy.sympify(d).is_Integer or d == -1 for d in target):
            return
        total = product(shape)
        free = total.free_symbols
        if len(free) != 1 or total.has(sympy.floor, sympy.ceiling):
            return
        (symbol,) = free
        doc = next((d for d in self.doc.symbols if d.name == symbol.name), None)
        if doc is None or doc.default == 0:
            return
        if evaluate(total, self.defaults()) == product(int(d) for d in target):
            return
        try:
            roots = sympy.roots(sympy.Poly(sympy.expand(total - product(int(d) for d in target)), symbol))
        except sympy.PolynomialError:
            return
        sizes = [int(r) for r in roots if r.is_Integer and r > 0]
        if len(sizes) == 1:
            self.notes.append(f"{symbol.name} = {sizes[0]} at export (from the hard-coded Reshape of node "
                              f"'{self.node.name}'): the default while converting")
            doc.default = sizes[0]

    # ---- elementwise ------------------------------------------------------------------------

    def unary(self, type_name: str, fields: dict[str, Any]) -> None:
        x = self.data(self.node.input[0])
        name = self.node_name()
        shape = self.add_layer(type_name, name, fields, [x])
        self.set_output(self.same_layout(x, name, shape))

    def activation(self) -> None:
        self.unary("Activation", {"activation": ACTIVATIONS[self.node.op_type]})

    def function(self) -> None:
        self.unary("Lambda", {"function": FUNCTIONS[self.node.op_type]})

    def op_Clip(self) -> None:
        attrs = self.attrs()
        low = attrs.get("min")
        high = attrs.get("max")
        if self.optional_input(1):
            low = float(self.const(self.node.input[1], "min").reshape(-1)[0])
        if self.optional_input(2):
            high = float(self.const(self.node.input[2], "max").reshape(-1)[0])
        if low == 0 and high == 6:
            self.unary("Activation", {"activation": "relu6"})
        elif low == 0 and high is None:
            self.unary("Activation", {"activation": "relu"})
        else:
            raise self.error(f"Clip({low}, {high}) has no spec activation (Clip(0, 6) is relu6)")

    def op_Softmax(self) -> None:
        x = self.data(self.node.input[0])
        opset = self.opset()
        axis = _norm(self.attrs().get("axis", -1 if opset >= 13 else 1), x.rank)
        if opset < 13 and axis != x.rank - 1:
            raise self.error("a Softmax before opset 13 over several axes")
        if axis not in x.axes:
            x = self.identity(x, "Softmax")
        keras_axis = self.spec_axis(x, axis)
        if keras_axis == -1:
            self.unary_on(x, "Activation", {"activation": "softmax"})
        else:
            self.unary_on(x, "Softmax", {"axis": keras_axis})

    def unary_on(self, x: Data, type_name: str, fields: dict[str, Any]) -> None:
        name = self.node_name()
        shape = self.add_layer(type_name, name, fields, [x])
        self.set_output(self.same_layout(x, name, shape))

    def opset(self) -> int:
        for o in self.model.opset_import:
            if o.domain in ("", "ai.onnx"):
                return int(o.version)
        return 1

    def binary(self) -> None:
        a, b = self.value(self.node.input[0]), self.value(self.node.input[1])
        op = self.node.op_type
        if isinstance(a, Const) and isinstance(b, Const):
            function = {"Add": lambda x, y: x + y, "Sub": lambda x, y: x - y, "Mul": lambda x, y: x * y,
                        "Div": _divide}[op]
            self.const_binary(function)
            return
        if isinstance(a, Data) and isinstance(b, Data):
            self.merge(self.data(self.node.input[0]), self.data(self.node.input[1]))
            return
        data_name, const_name = self.node.input[0], self.node.input[1]
        if not isinstance(a, Data):
            data_name, const_name = const_name, data_name
        if op in ("Add", "Mul") and self.fold_bias(data_name, const_name):
            return
        raise self.error(f"{op} of an activation tensor and a constant: no spec layer computes that "
                         "(only a bias Add right after MatMul or Conv is read)",
                         hint="docs/importers.md#onnx lists what the ONNX importer reads")

    op_Add = op_Sub = op_Mul = op_Div = binary

    def merge(self, a: Data, b: Data) -> None:
        op = self.node.op_type
        if a.rank != b.rank:
            raise self.error(f"{op} of tensors of ranks {a.rank} and {b.rank}: nnspec needs the batch axes aligned")
        if (a.axes, a.batch) != (b.axes, b.batch) and not (_prefix_layout(a) and _prefix_layout(b)):
            a, b = self.identity(a, op), self.identity(b, op)
        name = self.node_name()
        description = "ONNX Div, counted as one operation per element like Multiply" if op == "Div" else None
        shape = self.add_layer(MERGES[op], name, {}, [a, b], description)
        wide = a if len(a.shape) >= len(b.shape) else b
        if (a.axes, a.batch) == (b.axes, b.batch):
            self.set_output(self.same_layout(a, name, shape))
        else:
            self.set_output(Data(name, shape, tuple(range(wide.rank - len(shape), wide.rank)), 0, wide.rank))

    def fold_bias(self, data_name: str, const_name: str) -> bool:
        slot = self.bias_slots.get(data_name)
        if slot is None or self.consumers[data_name] != 1 or not self.is_weight(const_name):
            return False
        layer_name_, channel_axis, kind = slot
        op = self.node.op_type
        field = {("bias", "Add"): "use_bias", ("norm", "Add"): "center", ("norm", "Mul"): "scale"}.get((kind, op))
        layer = self.doc.layer(layer_name_)
        if field is None or layer.fields.get(field) is not False:
            return False
        x = self.data(data_name)
        dims = self.const_dims(const_name)
        channels = x.onnx_shape()[channel_axis]
        if product(dims) != channels or len(dims) > x.rank:
            return False
        aligned = [1] * (x.rank - len(dims)) + list(dims)
        if any(d != 1 for i, d in enumerate(aligned) if i != channel_axis):
            return False
        layer.fields.pop(field)  # the spec default: true
        self.refresh(layer)
        self.set_output(x)
        if kind == "norm":
            self.bias_slots[self.node.output[0]] = slot
        return True

    def is_weight(self, name: str) -> bool:
        """Whether a constant is a model weight (an initializer), not a constant the graph computes."""
        value = self.values.get(name)
        return isinstance(value, Const) and value.weight

    def refresh(self, layer: LayerDoc) -> None:
        """Re-run a layer's handler after its fields changed (its output shape stays the same)."""
        table = self.doc.symbol_table()
        item = {"type": layer.type, **{k: _spec_value(v, table) for k, v in layer.fields.items()}}
        spec = LAYERS[layer.type].spec_model.model_validate(item, context=SpecContext(table, self.defaults()))
        LAYERS[layer.type].handler(spec, [self.shapes[s] for s in layer.inputs or []],
                                   LayerContext(layer.name, layer.type, None, self.defaults()))

    # ---- kernels ----------------------------------------------------------------------------

    def op_Gemm(self) -> None:
        attrs = self.attrs()
        if attrs.get("transA", 0):
            raise self.error("Gemm with transA: the activation must be the left operand, untransposed")
        x = self.data(self.node.input[0])
        dims = self.const_dims(self.node.input[1])
        units = dims[0] if attrs.get("transB", 0) else dims[1]
        x = self.identity(x, "Gemm")
        name = self.node_name()
        fields: dict[str, Any] = {"units": units}
        if not self.optional_input(2):
            fields["use_bias"] = False
        shape = self.add_layer("Dense", name, fields, [x])
        if attrs.get("alpha", 1.0) != 1.0 or (self.optional_input(2) and attrs.get("beta", 1.0) != 1.0):
            self.notes.append(f"Gemm '{self.node.name}': alpha / beta scaling is not counted")
        self.set_output(Data(name, shape, (1,), 0, 2))

    def op_MatMul(self) -> None:
        a, b = self.value(self.node.input[0]), self.value(self.node.input[1])
        if isinstance(a, Const) or not isinstance(b, Const):
            raise self.error("MatMul of two activation tensors (as in attention) or of a weight by an activation: "
                             "no spec layer but Dense (activation x weight) is read",
                             hint="write such blocks in the spec (e.g. MultiHeadAttention)")
        x = self.data(self.node.input[0])
        dims = b.dims
        if len(dims) != 2:
            raise self.error(f"MatMul by a weight of rank {len(dims)}; Dense takes a matrix")
        last = x.rank - 1
        if last not in x.axes:
            raise self.error("MatMul over a size-1 axis")
        wanted = [a for a in x.axes if a != last] + [last]
        x = self.ensure_layout(x, wanted, "MatMul")
        name = self.node_name()
        shape = self.add_layer("Dense", name, {"units": dims[1], "use_bias": False}, [x])
        self.bias_slots[self.node.output[0]] = (name, last, "bias")
        self.set_output(self.same_layout(x, name, shape))

    def conv_padding(self, x: Data, kernel: list[int], strides: list[int], dilations: list[int],
                     pool: bool = False) -> tuple[Data, str]:
        """'valid' or 'same' (when the ONNX pads give Keras' 'same' output at every size), or a
        ZeroPadding layer then 'valid'."""
        attrs = self.attrs()
        rank = len(kernel)
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            return x, "same"
        pads = list(attrs.get("pads", [0] * (2 * rank)))
        if auto == "VALID" or not any(pads):
            return x, "valid"
        begins, ends = pads[:rank], pads[rank:]
        if all(b == e and 2 * b == d * (k - 1) for b, e, k, d in zip(begins, ends, kernel, dilations, strict=False)):
            return x, "same"
        if rank not in (1, 2):
            raise self.error(f"explicit padding {pads} of a {rank}-D kernel: nnspec has ZeroPadding1D/2D only")
        name = self.node_name(".pad")
        padding = [[b, e] for b, e in zip(begins, ends, strict=False)]
        shape = self.add_layer(f"ZeroPadding{rank}D", name, {"padding": padding[0] if rank == 1 else padding}, [x],
                               description="explicit ONNX pads" + (" (zeros here; the pool pads with -inf)" if pool else ""))
        return self.same_layout(x, name, shape), "valid"

    def op_Conv(self) -> None:
        attrs = self.attrs()
        weight = self.const_dims(self.node.input[1])
        rank = len(weight) - 2
        if rank not in (1, 2, 3):
            raise self.error(f"a {rank}-D convolution: nnspec has Conv1D, Conv2D and Conv3D")
        x = self.channels_last(self.data(self.node.input[0]), "Conv")
        kernel = list(attrs.get("kernel_shape", weight[2:]))
        strides = list(attrs.get("strides", [1] * rank))
        dilations = list(attrs.get("dilations", [1] * rank))
        groups = attrs.get("group", 1)
        x, padding = self.conv_padding(x, kernel, strides, dilations)
        fields: dict[str, Any] = {"filters": weight[0], "kernel_size": _compact(kernel)}
        if any(s != 1 for s in strides):
            fields["strides"] = _compact(strides)
        if padding != "valid":
            fields["padding"] = padding
        if any(d != 1 for d in dilations):
            fields["dilation_rate"] = _compact(dilations)
        if groups != 1:
            fields["groups"] = groups
        if not self.optional_input(2):
            fields["use_bias"] = False
        name = self.node_name()
        shape = self.add_layer(f"Conv{rank}D", name, fields, [x])
        if not self.optional_input(2):
            self.bias_slots[self.node.output[0]] = (name, 1, "bias")
        self.set_output(self.same_layout(x, name, shape))

    def op_ConvTranspose(self) -> None:
        attrs = self.attrs()
        weight = self.const_dims(self.node.input[1])
        rank = len(weight) - 2
        if rank not in (1, 2):
            raise self.error(f"a {rank}-D transposed convolution: nnspec has Conv1DTranspose and Conv2DTranspose")
        if attrs.get("group", 1) != 1:
            raise self.error("a grouped transposed convolution: nnspec's Conv1D/2DTranspose have no groups")
        if "output_shape" in attrs:
            raise self.error("ConvTranspose with output_shape: give pads and output_padding instead")
        x = self.channels_last(self.data(self.node.input[0]), "ConvTranspose")
        kernel = list(attrs.get("kernel_shape", weight[2:]))
        strides = list(attrs.get("strides", [1] * rank))
        dilations = list(attrs.get("dilations", [1] * rank))
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        out_pad = list(attrs.get("output_padding", [0] * rank))
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            padding, paddings = "same", None
        else:
            pads = list(attrs.get("pads", [0] * (2 * rank)))
            extra = [d * (k - 1) + 1 - (pads[i] + pads[i + rank]) + out_pad[i]
                     for i, (k, d) in enumerate(zip(kernel, dilations, strict=False))]  # out = (n - 1)s + extra
            spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=False)]
            if all(e == s for e, s in zip(extra, strides, strict=False)):
                padding, paddings = "same", None
            elif all(0 <= e - span < s for e, span, s in zip(extra, spans, strides, strict=False)):
                padding, paddings = "valid", [e - span for e, span in zip(extra, spans, strict=False)]
            elif all(0 <= e - span % 2 < s for e, span, s in zip(extra, spans, strides, strict=False)):
                padding, paddings = "same", [e - span % 2 for e, span in zip(extra, spans, strict=False)]
            else:
                raise self.error(f"pads {pads} with output_padding {out_pad}: no Keras padding gives that output size")
        fields: dict[str, Any] = {"filters": weight[1], "kernel_size": _compact(kernel)}
        if any(s != 1 for s in strides):
            fields["strides"] = _compact(strides)
        if padding != "valid":
            fields["padding"] = padding
        if any(d != 1 for d in dilations):
            fields["dilation_rate"] = _compact(dilations)
        if paddings is not None:
            fields["output_padding"] = _compact(paddings)
        if not self.optional_input(2):
            fields["use_bias"] = False
        name = self.node_name()
        shape = self.add_layer(f"Conv{rank}DTranspose", name, fields, [x])
        self.set_output(self.same_layout(x, name, shape))

    def pool(self, kind: str) -> None:
        attrs = self.attrs()
        x = self.channels_last(self.data(self.node.input[0]), self.node.op_type)
        rank = x.rank - 2
        if rank not in (1, 2):
            raise self.error(f"{rank}-D pooling: nnspec has 1D and 2D pooling")
        kernel = list(attrs["kernel_shape"])
        strides = list(attrs.get("strides", [1] * rank))
        dilations = list(attrs.get("dilations", [1] * rank))
        if any(d != 1 for d in dilations):
            raise self.error("pooling with dilations")
        if attrs.get("ceil_mode", 0) and any(s != 1 for s in strides):
            raise self.error("ceil_mode pooling: Keras pools floor their output size",
                             hint="export with ceil_mode=False")
        x, padding = self.conv_padding(x, kernel, strides, dilations, pool=kind == "Max")
        fields: dict[str, Any] = {"pool_size": _compact(kernel), "strides": _compact(strides)}
        if padding != "valid":
            fields["padding"] = padding
        name = self.node_name()
        shape = self.add_layer(f"{kind}Pooling{rank}D", name, fields, [x])
        self.set_output(self.same_layout(x, name, shape))

    def op_MaxPool(self) -> None:
        if len([o for o in self.node.output if o]) > 1:
            raise self.error("MaxPool with indices")
        self.pool("Max")

    def op_AveragePool(self) -> None:
        self.pool("Average")

    def global_pool(self, kind: str, keepdims: bool = True) -> None:
        x = self.channels_last(self.data(self.node.input[0]), self.node.op_type)
        rank = x.rank - 2
        if rank not in (1, 2):
            raise self.error(f"{rank}-D global pooling: nnspec has 1D and 2D")
        name = self.node_name()
        shape = self.add_layer(f"Global{kind}Pooling{rank}D", name, {"keepdims": True} if keepdims else {}, [x])
        if keepdims:
            self.set_output(self.same_layout(x, name, shape))
        else:
            self.set_output(Data(name, shape, (1,), 0, 2))

    def op_GlobalAveragePool(self) -> None:
        self.global_pool("Average")

    def op_GlobalMaxPool(self) -> None:
        self.global_pool("Max")

    def op_ReduceMean(self) -> None:
        self.reduce("Average")

    def op_ReduceMax(self) -> None:
        self.reduce("Max")

    def reduce(self, kind: str) -> None:
        """A mean / max over every axis but the batch and one (the channels): global pooling."""
        x = self.data(self.node.input[0])
        axes = sorted(_norm(a, x.rank) for a in self.axes_input(1))
        keepdims = bool(self.attrs().get("keepdims", 1))
        rest = [a for a in range(x.rank) if a != x.batch and a not in axes]
        if x.batch in axes or len(rest) != 1 or len(axes) not in (1, 2):
            raise self.error(f"a {self.node.op_type} over axes {axes}: only one over all axes but the batch and "
                             "the channels (global pooling) has a spec layer")
        (channels,) = rest
        x = self.ensure_layout(x, [*axes, channels], self.node.op_type)
        name = self.node_name()
        shape = self.add_layer(f"Global{kind}Pooling{len(axes)}D", name, {"keepdims": True} if keepdims else {}, [x])
        if keepdims:
            self.set_output(self.same_layout(x, name, shape))
        else:
            self.set_output(Data(name, shape, (1 if channels > x.batch else 0,), 0 if channels > x.batch else 1, 2))

    def op_Pad(self) -> None:
        x = self.data(self.node.input[0])
        attrs = self.attrs()
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        raw = self.const(self.node.input[1], "pads").reshape(-1) if self.optional_input(1) else attrs["pads"]
        pads = [sympy.sympify(p) for p in raw]  # symbolic when computed from a dynamic shape
        fill = 0.0
        if self.optional_input(2):
            fill = float(self.const(self.node.input[2], "value").reshape(-1)[0])
        if mode != "constant":
            raise self.error(f"Pad in mode {mode!r}: nnspec pads with zeros")
        if self.optional_input(3):
            axes = [_norm(int(a), x.rank) for a in self.const(self.node.input[3], "axes").reshape(-1)]
        else:
            axes = list(range(x.rank))
        half = len(pads) // 2
        per_axis = {a: (pads[i], pads[i + half]) for i, a in enumerate(axes)}
        if any(per_axis.get(a, (0, 0)) != (0, 0) for a in (0, 1)):
            raise self.error("Pad of the batch or channel axis: nnspec pads the spatial axes of (N, C, ...)")
        rank = x.rank - 2
        if rank not in (1, 2):
            raise self.error("Pad of a tensor that is not (N, C, L) or (N, C, H, W)")
        x = self.channels_last(x, "Pad")
        padding = [list(per_axis.get(a, (0, 0))) for a in range(2, x.rank)]
        name = self.node_name()
        description = f"ONNX Pad with {fill} (a copy, like zero padding)" if fill != 0 else None
        shape = self.add_layer(f"ZeroPadding{rank}D", name, {"padding": padding[0] if rank == 1 else padding}, [x],
                               description)
        self.set_output(self.same_layout(x, name, shape))

    def embedding(self, table: Const) -> None:
        if len(table.dims) != 2 or self.attrs().get("axis", 0) != 0:
            raise self.error("a Gather from a weight that is not an embedding table (rank 2, axis 0)")
        ids = self.identity(self.data(self.node.input[1]), "an embedding lookup")
        name = self.node_name()
        shape = self.add_layer("Embedding", name, {"input_dim": table.dims[0], "output_dim": table.dims[1]}, [ids])
        self.set_output(Data(name, shape, tuple(range(1, len(shape) + 1)), 0, len(shape) + 1))

    def last_step(self, x: Data, axis: int) -> None:
        """Gather of one time step of a recurrent layer's sequence output: the last one is the layer
        with return_sequences false."""
        axis = _norm(axis, x.rank)
        index = self.const(self.node.input[1], "index")
        if index.size != 1 or index.ndim != 0:
            raise self.error("a Gather of several positions from an activation tensor has no spec layer")
        value = sympy.sympify(index.reshape(()).item())
        if axis != x.batch and axis not in x.axes and value in (0, -1):  # a size-1 axis the spec lacks: a Squeeze
            mapping = {a: a - (1 if a > axis else 0) for a in range(x.rank) if a != axis}
            self.set_output(Data(x.layer, x.shape, tuple(mapping[a] for a in x.axes), mapping[x.batch], x.rank - 1,
                                 x.sequence_of))
            return
        layer = x.sequence_of
        steps = x.shape[0] if layer else None
        if layer is None or x.axes.index(axis) != 0 or not (value == -1 or (steps is not None and value == steps - 1)):
            raise self.error("a Gather from an activation tensor: only the last step of a recurrent output is read "
                             "(as return_sequences=False)")
        if self.spec_uses[layer]:
            raise self.error(f"'{layer}' gives its whole sequence to another layer too; a spec layer has one output")
        doc = self.doc.layer(layer)
        doc.fields.pop("return_sequences", None)
        self.refresh(doc)
        self.shapes[layer] = self.shapes[layer][1:]
        self.flipped.add(layer)
        axes = tuple(a - (1 if a > axis else 0) for a in x.axes[1:])
        self.set_output(Data(layer, self.shapes[layer], axes, x.batch - (1 if x.batch > axis else 0), x.rank - 1))

    # ---- normalization ----------------------------------------------------------------------

    def op_BatchNormalization(self) -> None:
        x = self.data(self.node.input[0])
        if 1 not in x.axes:
            raise self.error("BatchNormalization over a size-1 channel axis")
        if len([o for o in self.node.output if o]) > 1:
            raise self.error("BatchNormalization in training mode (running statistics as outputs)")
        attrs = self.attrs()
        fields: dict[str, Any] = {}
        axis = self.spec_axis(x, 1)
        if axis != -1:
            fields["axis"] = axis
        fields["epsilon"] = _float32(attrs.get("epsilon", 1e-5))
        # gamma and beta are params when they are weights; torch's affine=False writes constants instead
        if not self.is_weight(self.node.input[1]):
            fields["scale"] = False
        if not self.is_weight(self.node.input[2]):
            fields["center"] = False
        self.unary_on(x, "BatchNormalization", fields)
        if fields.get("scale") is False or fields.get("center") is False:
            self.bias_slots[self.node.output[0]] = (self.doc.layers[-1].name, 1, "norm")

    def op_InstanceNormalization(self) -> None:
        x = self.channels_last(self.data(self.node.input[0]), "InstanceNormalization")
        self.unary_on(x, "GroupNormalization", {"groups": -1, "epsilon": _float32(self.attrs().get("epsilon", 1e-5))})

    def op_LayerNormalization(self) -> None:
        x = self.data(self.node.input[0])
        attrs = self.attrs()
        if len([o for o in self.node.output if o]) > 1:
            raise self.error("LayerNormalization with mean / inverse std outputs")
        start = _norm(attrs.get("axis", -1), x.rank)
        axes = [a for a in range(start, x.rank) if a in x.axes]
        if x.batch >= start:
            raise self.error("LayerNormalization over the batch axis")
        keras_axes = sorted(x.axes.index(a) + 1 for a in axes)
        fields: dict[str, Any] = {}
        if keras_axes != [len(x.axes)]:
            fields["axis"] = keras_axes if len(keras_axes) > 1 else keras_axes[0]
        fields["epsilon"] = _float32(attrs.get("epsilon", 1e-5))
        if not self.optional_input(2):
            fields["center"] = False
        self.unary_on(x, "LayerNormalization", fields)

    # ---- recurrent --------------------------------------------------------------------------

    def recurrent(self, type_name: str, gates: int) -> None:
        attrs = self.attrs()
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction == "bidirectional":
            raise self.error("a bidirectional recurrent op is not read yet",
                             hint="write Bidirectional in the spec, or export each direction as its own layer")
        layout = attrs.get("layout", 0)
        x = self.data(self.node.input[0])
        time_axis, batch_axis, feature_axis = (0, 1, 2) if layout == 0 else (1, 0, 2)
        if x.rank != 3 or x.batch != batch_axis:
            raise self.error(f"expects its input as {'(T, N, I)' if layout == 0 else '(N, T, I)'}")
        x = self.ensure_layout(x, [time_axis, feature_axis], type_name)
        weight = self.const_dims(self.node.input[1])
        units = attrs.get("hidden_size", weight[1] // gates)
        if type_name == "LSTM" and self.optional_input(7):
            raise self.error("LSTM with peepholes (P): no spec layer has them")
        has_bias = self.optional_input(3) is not None
        names = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
        fields: dict[str, Any] = {"units": units}
        defaults = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "SimpleRNN": ["Tanh"]}[type_name]
        names = names or defaults
        if any(n not in RNN_ACTIVATIONS for n in names):
            raise self.error(f"activations {names}: nnspec knows {', '.join(RNN_ACTIVATIONS)}")
        if type_name == "SimpleRNN":
            if names[0] != "Tanh":
                fields["activation"] = RNN_ACTIVATIONS[names[0]]
        else:
            if type_name == "LSTM" and names[1] != names[2]:
                raise self.error(f"LSTM activations {names}: Keras uses one activation for the cell and the output")
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
        outputs = list(self.node.output) + [""] * 3
        sequence_used = bool(outputs[0]) and self.consumers[outputs[0]] > 0
        last_used = bool(outputs[1]) and self.consumers[outputs[1]] > 0
        if outputs[2] and self.consumers[outputs[2]] > 0:
            raise self.error("uses the LSTM cell state (Y_c): a spec layer has one output")
        if sequence_used and last_used:
            raise self.error("uses both the sequence (Y) and the last state (Y_h): a spec layer has one output")
        if sequence_used:
            fields["return_sequences"] = True
        if attrs.get("clip") is not None:
            self.notes.append(f"{type_name} '{self.node.name}': clip is not counted")
        name = self.node_name()
        shape = self.add_layer(type_name, name, fields, [x])
        if sequence_used:  # Y: (T, 1, N, H) or (N, T, 1, H)
            axes = (0, 3) if layout == 0 else (1, 3)
            self.set_output(Data(name, shape, axes, 2 if layout == 0 else 0, 4, sequence_of=name), 0)
        else:  # Y_h: (1, N, H) or (N, 1, H)
            self.set_output(Data(name, shape, (2,), 1 if layout == 0 else 0, 3), 1)

    def op_GRU(self) -> None:
        self.recurrent("GRU", 3)

    def op_LSTM(self) -> None:
        self.recurrent("LSTM", 4)

    def op_RNN(self) -> None:
        self.recurrent("SimpleRNN", 1)


def _spec_value(value: Any, table: dict[str, sympy.Symbol]) -> Any:
    """A field value as a spec would hold it (sizes as ints or expression text)."""
    if isinstance(value, sympy.Basic):
        return int(value) if value.is_Integer else size_text(value, table)
    if isinstance(value, (list, tuple)):
        return [_spec_value(v, table) for v in value]
    if isinstance(value, dict):
        return {k: _spec_value(v, table) for k, v in value.items()}
    return value


def _float32(value: float) -> float:
    """The shortest decimal that is the same float32 (ONNX stores 1e-3 as 0.0010000000474974513)."""
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if abs(float(text) - value) <= abs(value) * 2**-23:
            return float(text)
    return float(value)


def _compact(values: list[int]) -> Any:
    return values[0] if len(set(values)) == 1 else list(values)


def _norm(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _int_or_none(value: Any) -> int | None:
    value = sympy.sympify(value)
    return int(value) if value.is_Integer else None


def _objects(np: Any, items: list[Any]) -> Any:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = sympy.sympify(item)
    return array


def _divide(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    if a.is_integer and b.is_integer:
        return floor_div(a, b)  # sizes are positive: truncation and floor agree
    return a / b


def _order_kept(x: Data) -> bool:
    """Whether the spec tensor holds its data in ONNX order (batch first; the axes that are not of
    size 1 in increasing ONNX order), so that a Flatten or Reshape of it is the ONNX one."""
    big = [a for a, d in zip(x.axes, x.shape, strict=False) if d != 1]
    return x.batch == 0 and big == sorted(big)


def _prefix_layout(x: Data) -> bool:
    """Batch first, spec axes in ONNX order, any size-1 axes the spec lacks right after the batch:
    broadcasting then lines up the same way in ONNX and in Keras."""
    if x.batch != 0 or list(x.axes) != sorted(x.axes):
        return False
    return x.phantoms == list(range(1, 1 + len(x.phantoms)))


for _op in ACTIVATIONS:
    setattr(_OnnxImporter, f"op_{_op}", _OnnxImporter.activation)
for _op in FUNCTIONS:
    setattr(_OnnxImporter, f"op_{_op}", _OnnxImporter.function)
