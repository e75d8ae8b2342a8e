"""Keras models -> spec documents, read as JSON: no TensorFlow or Keras needed.

Reads
* `.keras` (Keras 3): a zip holding `config.json` (the weights are not read);
* `.json`: `model.to_json()` of Keras 3, or of Keras 2 / tf.keras (class_name / config /
  inbound_nodes in the nested-list format), or a `get_config()` dump;
* `.h5` / `.hdf5` (Keras 2 and tf.keras): the `model_config` attribute, with h5py
  (the optional extra `nnspec[h5]`).

Functional and Sequential models map layer by layer: the layer class is the spec type,
its config arguments that the spec type accepts become its fields (initializers,
regularizers, constraints, dtype policies are dropped: they do not change the counts),
`inbound_nodes` become `inputs`, InputLayer `batch_shape` / `batch_input_shape` the
model inputs, `output_layers` the outputs. A few classes map onto another spec type:
ReLU / LeakyReLU / ELU layers become Activation, Keras 2's CuDNNGRU / CuDNNLSTM become
GRU / LSTM with `cudnn_compatible: true`, a Lambda of a named math function (ops.cos)
becomes `Lambda {function: cos}`. Keras 3's operations saved as layers (module keras.src.ops.numpy: Add,
Subtract, Multiply, Divide) become the merge of that name (two tensors) or ScalarOp (a tensor and a number, the
number read from the inbound node's args); a nested Sequential or Functional becomes a block of layers named
`OUTER.INNER` (Keras' names), wired to the tensors it is called on. A class of the user's own is read as
their --custom-layers file declares it (importers/custom_layers.py). Anything else is refused, naming the layer
and class.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from analyzer.errors import did_you_mean
from analyzer.importers.custom_layers import DeclaredDocument, declared_layer, unknown_class_hint
from analyzer.importers.document import InputDoc, LayerDoc, ModelImportError, SpecDocument, layer_name
from analyzer.importers.symbols import ImportOptions, OpenDims
from analyzer.layers import LAYERS
from analyzer.layers.activations import NOT_ELEMENTWISE
from analyzer.layers.elementwise import ElementwiseFunction
from analyzer.spec.custom_layers import CustomLayers

MAX_CONFIG_BYTES = 64 * 1024 * 1024
LAMBDA_FUNCTIONS = set(ElementwiseFunction.__args__)  # type: ignore[attr-defined]
_COMMON = {"type", "name", "inputs", "description", "trainable"}
_BROADCAST_FIELDS = {"kernel_size", "strides", "dilation_rate", "pool_size", "output_padding", "size"}
_CONTAINERS = {"Functional", "Model", "Sequential"}
# Keras 3 operations saved as layers (module keras.src.ops.numpy) with a number operand -> ScalarOp's op
_SCALAR_OPS = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Divide": "divide",
               "TrueDivide": "divide"}


def read_keras_config(path: str | Path) -> dict[str, Any]:
    """The model config (a dict) of a .keras, .json or .h5 file."""
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix == ".keras":
            return _json(_read_zip_config(file), f"{file}: config.json")
        if suffix in (".h5", ".hdf5"):
            return _read_h5_config(file)
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelImportError(f"{file}: larger than {MAX_CONFIG_BYTES // 2**20} MiB; not a model config")
        return _json(file.read_text(encoding="utf-8"), str(file))
    except FileNotFoundError:
        raise ModelImportError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelImportError(f"{file}: cannot read: {exc}") from None


def _read_zip_config(file: Path) -> str:
    try:
        with zipfile.ZipFile(file) as archive:
            try:
                info = archive.getinfo("config.json")
            except KeyError:
                raise ModelImportError(f"{file}: no config.json inside: not a Keras 3 .keras file") from None
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelImportError(f"{file}: config.json is larger than {MAX_CONFIG_BYTES // 2**20} MiB")
            return archive.read(info).decode("utf-8")
    except zipfile.BadZipFile:
        raise ModelImportError(f"{file}: not a zip archive, so not a Keras 3 .keras file",
                               hint="a Keras 2 model saved as .keras? save it as .h5 or with model.to_json()") from None


def _read_h5_config(file: Path) -> dict[str, Any]:
    try:
        import h5py
    except ImportError:
        raise ModelImportError(f"{file}: reading .h5 files needs h5py, which is not installed",
                               hint="pip install 'nnspec[h5]', or save the model with model.to_json()") from None
    try:
        with h5py.File(file, "r") as h5:
            raw = h5.attrs.get("model_config")
    except OSError as exc:
        raise ModelImportError(f"{file}: not an HDF5 file ({exc})") from None
    if raw is None:
        raise ModelImportError(f"{file}: no 'model_config' attribute: a weights-only file (save_weights)?",
                               hint="save the whole model (model.save('model.h5')) or use model.to_json()")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return _json(str(raw), f"{file}: model_config")


def _json(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelImportError(f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ModelImportError(f"{where}: a Keras model config is a JSON object, found a {type(data).__name__}")
    return data


def keras_document(config: dict[str, Any], source: str, options: ImportOptions | None = None,
                   custom: CustomLayers | None = None) -> tuple[SpecDocument, list[str]]:
    """A spec document for a Keras model config; also returns notes for the user. `custom`: the user's
    declarations of their own layer classes (--custom-layers, analyzer/importers/custom_layers.py)."""
    return _KerasImporter(source, options or ImportOptions(), custom).model(config)


class _KerasImporter:
    def __init__(self, source: str, options: ImportOptions, custom: CustomLayers | None = None) -> None:
        self.source = source
        self.options = options
        self.custom = custom or CustomLayers()
        self.notes: list[str] = []

    def error(self, message: str, layer: str | None = None, layer_type: str | None = None,
              hint: str | None = None) -> ModelImportError:
        return ModelImportError(f"{self.source}: " + (f"layer '{layer}' ({layer_type}): " if layer else "") + message, hint=hint)

    def model(self, data: dict[str, Any]) -> tuple[SpecDocument, list[str]]:
        class_name = data.get("class_name")
        config = data.get("config", data)
        if class_name is None and isinstance(config, dict) and "inputs" in config and "input_layers" not in config:
            raise self.error("this looks like an nnspec spec written as JSON, not a Keras model config",
                             hint="give it a .yaml extension")
        if class_name is None:  # a get_config() dump
            class_name = "Functional" if isinstance(config, dict) and "input_layers" in config else "Sequential"
        if class_name not in _CONTAINERS:
            raise self.error(f"the top level is a '{class_name}', not a Keras model (Functional, Model or Sequential)")
        name = config.get("name", Path(self.source).stem) if isinstance(config, dict) else Path(self.source).stem
        self.doc = DeclaredDocument(str(name), [], [], [], source=self.source)
        self.open_dims = OpenDims(self.doc, self.options, self.notes)
        keras_version = data.get("keras_version")
        if keras_version:
            self.doc.header.append(f"Keras {keras_version} ({data.get('backend', 'unknown backend')}) model config.")
        if class_name == "Sequential":
            self.sequential(config)
        else:
            self.functional(config)
        return self.doc, self.notes

    # ---- inputs -------------------------------------------------------------------------------

    def input_shape(self, input_name: str, batch_shape: Any) -> list[Any]:
        if not isinstance(batch_shape, list) or not batch_shape:
            raise self.error(f"input '{input_name}' has no shape (batch_shape {batch_shape!r})")
        dims = batch_shape[1:]
        shape: list[Any] = []
        for axis, dim in enumerate(dims):
            if dim is None:
                shape.append(self.open_dims.symbol(input_name, axis, len(dims)))
            elif isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1:
                shape.append(dim)
            else:
                raise self.error(f"input '{input_name}': dimension {axis} is {dim!r}, not a positive size")
        return shape

    def add_input(self, name: str, batch_shape: Any) -> None:
        self.doc.inputs.append(InputDoc(name, self.input_shape(name, batch_shape)))

    # ---- Sequential ---------------------------------------------------------------------------

    def sequential(self, config: Any) -> None:
        layers = config if isinstance(config, list) else config.get("layers")  # Keras <= 2.2.2: a bare list
        if not isinstance(layers, list) or not layers:
            raise self.error("a Sequential model without layers")
        layers = list(layers)
        first = layers[0]
        if first.get("class_name") == "InputLayer":
            cfg = first.get("config", {})
            input_name = layer_name(str(cfg.get("name") or first.get("name") or "input_1"), "input_1")
            self.add_input(input_name, cfg.get("batch_shape") or cfg.get("batch_input_shape"))
            layers = layers[1:]
        else:
            cfg = first.get("config", {})
            batch_shape = (cfg.get("batch_input_shape") or cfg.get("batch_shape")
                           or (config.get("build_input_shape") if isinstance(config, dict) else None)
                           or (first.get("build_config") or {}).get("input_shape"))
            if batch_shape is None:
                raise self.error("the Sequential model has no input shape (it was never built)",
                                 hint="build it first: model.build((None, ...)) or start it with keras.Input(...)")
            first_name = str(cfg.get("name") or first.get("name") or "")
            self.add_input(layer_name(f"{first_name}_input", "input_1") if first_name else "input_1", batch_shape)  # Keras' name
        previous = self.doc.inputs[0].name
        for item in layers:
            if isinstance(item, dict) and item.get("class_name") in _CONTAINERS:
                raw = str(item.get("name") or (item.get("config") or {}).get("name") or "model")
                previous = self.inline(item, [previous], layer_name(raw, "model"))[0]
                continue
            doc = self.layer(item)
            # a chain: each layer takes the previous one (the first, the model input)
            doc.inputs = None if previous == (self.doc.layers[-1].name if self.doc.layers else
                                              self.doc.inputs[0].name) else [previous]
            self.doc.layers.append(doc)
            previous = doc.name
        if not self.doc.layers:
            raise self.error("a Sequential model with no layers besides its input")
        self.doc.outputs = [previous]

    # ---- Functional ---------------------------------------------------------------------------

    def functional(self, config: dict[str, Any]) -> None:
        layers = config.get("layers")
        if not isinstance(layers, list) or not layers:
            raise self.error("a Functional model without layers")
        names: dict[str, str] = {}  # Keras name -> spec name
        for item in layers:
            raw = str(item.get("name") or item.get("config", {}).get("name"))
            names[raw] = layer_name(raw, f"layer_{len(names) + 1}")
        input_refs = _refs(config.get("input_layers"))
        inputs_found = {}
        for item in layers:
            raw = str(item.get("name") or item.get("config", {}).get("name"))
            if item.get("class_name") == "InputLayer":
                cfg = item.get("config", {})
                inputs_found[raw] = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        for ref in input_refs or list(inputs_found):
            if ref not in inputs_found:
                raise self.error(f"model input '{ref}' is not an InputLayer")
            self.add_input(names[ref], inputs_found[ref])
        self.wire(layers, names)
        outputs = _tensor_refs(config.get("output_layers"))
        if not outputs:
            raise self.error("the model config names no output_layers")
        for out in outputs:
            if out in inputs_found:
                raise self.error(f"model output '{out}' is a model input: nothing to count")
        self.doc.outputs = [self._spec_ref(names, out) for out in outputs]

    def _spec_ref(self, names: dict[str, str], ref: str, doc: LayerDoc | None = None) -> str:
        """A Keras layer name, with ':INDEX' for a layer's other outputs, as the spec names it."""
        source, colon, index = ref.partition(":")
        if source not in names:
            if doc is None:
                raise self.error(f"model output '{source}' is not a layer of the model")
            raise self.error(f"takes its input from '{source}', which is not a layer of the model", doc.name, doc.type)
        target = names[source]
        if isinstance(target, list):  # a nested model: its outputs, in order
            position = int(index or 0)
            if position >= len(target):
                raise self.error(f"takes output {position} of the nested model '{source}', which has {len(target)}")
            return target[position]
        return target + colon + index

    def wire(self, layers: list[Any], names: dict[str, Any], prefix: str = "") -> None:
        """The layers of a Functional model (or of a nested one, its layers' names after `prefix.`), each wired by its
        inbound node; `names` maps Keras names to spec references (a nested model's name to its outputs)."""
        for item in layers:
            class_name = item.get("class_name")
            if class_name == "InputLayer":
                continue
            raw = str(item.get("name") or item.get("config", {}).get("name"))
            if class_name in _CONTAINERS:
                probe = LayerDoc(str(class_name), names[raw])
                sources = [self._spec_ref(names, source, probe) for source in self.inbound(item, probe)]
                names[raw] = self.inline(item, sources, names[raw])
                continue
            if str(item.get("module") or "").startswith("keras.src.ops"):
                doc = self.ops_layer(item, names[raw])
            else:
                doc = self.layer(item)
                doc.name = names[raw]
            doc.inputs = [self._spec_ref(names, source, doc) for source in self.inbound(item, doc)]
            self.doc.layers.append(doc)

    def inline(self, item: dict[str, Any], sources: list[str], prefix: str) -> list[str]:
        """A Sequential or Functional model used as a layer: its layers join the model as a block, each named
        `prefix.KERAS_NAME`, its inputs taking `sources`; returns its outputs as spec references."""
        class_name = str(item.get("class_name"))
        config = item.get("config") or {}
        inner = config.get("layers")
        if not isinstance(inner, list) or not inner:
            raise self.error("is a nested model without layers", prefix, class_name)
        if class_name == "Sequential":
            previous = sources[0] if len(sources) == 1 else None
            if previous is None:
                raise self.error(f"is a nested Sequential called on {len(sources)} tensors", prefix, class_name)
            for entry in inner:
                if entry.get("class_name") == "InputLayer":
                    continue
                raw = str(entry.get("name") or (entry.get("config") or {}).get("name") or entry.get("class_name"))
                name = f"{prefix}.{layer_name(raw, 'layer')}"
                if entry.get("class_name") in _CONTAINERS:
                    previous = self.inline(entry, [previous], name)[0]
                    continue
                doc = self.layer(entry)
                doc.name, doc.inputs = name, [previous]
                self.doc.layers.append(doc)
                previous = name
            return [previous]
        names: dict[str, Any] = {}
        input_refs = _refs(config.get("input_layers"))
        for entry in inner:
            raw = str(entry.get("name") or entry.get("config", {}).get("name"))
            names[raw] = f"{prefix}.{layer_name(raw, f'layer_{len(names) + 1}')}"
        if len(input_refs) != len(sources):
            raise self.error(f"is a nested model of {len(input_refs)} inputs called on {len(sources)} tensors",
                             prefix, class_name)
        for ref, source in zip(input_refs, sources, strict=True):
            names[ref] = source
        self.wire(inner, names, prefix)
        return [self._spec_ref(names, out) for out in _tensor_refs(config.get("output_layers"))]

    def ops_layer(self, item: dict[str, Any], name: str) -> LayerDoc:
        """A Keras 3 operation saved as a layer (class Add, Multiply, ... of keras.src.ops.numpy): of two tensors,
        the merge layer of that name; of a tensor and a number, ScalarOp."""
        class_name = str(item.get("class_name"))
        nodes = item.get("inbound_nodes") or []
        args = nodes[0].get("args") if len(nodes) == 1 and isinstance(nodes[0], dict) else None
        op = _SCALAR_OPS.get(class_name)
        if op is None or not isinstance(args, list) or len(args) != 2:
            raise self.error(f"is the Keras operation {item.get('module')}.{class_name}, saved as a layer; nnspec "
                             f"reads {', '.join(_SCALAR_OPS)} of a tensor and a number (or of two tensors)",
                             name, class_name, hint="write this layer in the converted spec by hand")
        tensors = [isinstance(a, dict) and a.get("class_name") == "__keras_tensor__" for a in args]
        if all(tensors):
            if class_name not in ("Add", "Subtract", "Multiply"):
                raise self.error("divides two tensors; nnspec has no Divide merge layer", name, class_name)
            return LayerDoc(class_name, name, {})
        number = args[tensors.index(False)]
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise self.error(f"has the operand {number!r}, neither a tensor nor a number (an array is not read)",
                             name, class_name)
        fields: dict[str, Any] = {"op": op, "value": float(number)}
        if tensors[1]:
            fields["reverse"] = True  # the number is the left operand: 1.0 - x
        return LayerDoc("ScalarOp", name, fields)

    def inbound(self, item: dict[str, Any], doc: LayerDoc) -> list[str]:
        nodes = item.get("inbound_nodes") or []
        if len(nodes) != 1:
            if not nodes:
                raise self.error("has no inbound nodes: it is not connected", doc.name, doc.type)
            raise self.error(f"is called {len(nodes)} times (a shared layer); nnspec gives each layer one call",
                             doc.name, doc.type, hint="give each call its own layer")
        node = nodes[0]
        sources = []
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            history = [t for t in _keras_tensors([node.get("args"), node.get("kwargs")])]
        elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            history = [entry[:3] for entry in node if isinstance(entry, list) and len(entry) >= 3]
        else:
            raise self.error(f"inbound node {node!r} is in no known format", doc.name, doc.type)
        for entry in history:
            source, node_index, tensor_index = entry[0], entry[1], entry[2]
            if node_index != 0:
                raise self.error(f"takes the output of call {node_index} of the shared layer '{source}'; nnspec "
                                 "gives each layer one call", doc.name, doc.type)
            sources.append(_tensor_ref(str(source), tensor_index))
        if not sources:
            raise self.error("has no input tensors", doc.name, doc.type)
        return sources

    # ---- one layer ----------------------------------------------------------------------------

    def layer(self, item: dict[str, Any]) -> LayerDoc:
        if not isinstance(item, dict):
            raise self.error(f"a layer entry must be an object, found {item!r}")
        class_name = str(item.get("class_name"))
        config = item.get("config") or {}
        raw_name = str(item.get("name") or config.get("name") or class_name.lower())
        name = layer_name(raw_name, class_name.lower())
        type_name, fields = self.convert(class_name, config, name)
        return LayerDoc(type_name, name, fields)

    def convert(self, class_name: str, config: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        if class_name in _CONTAINERS:
            raise self.error(f"is a nested model ('{class_name}') inside a wrapper; nnspec imports a nested model "
                             "only as a layer of its own", name, class_name)
        special = _SPECIAL.get(class_name)
        if special is not None:
            return special(self, config, name, class_name)
        if class_name in self.custom:
            return declared_layer(self.custom, self.doc, class_name, config, name, self.source, self.fields)
        if class_name not in LAYERS:
            hint = " ".join(filter(None, (did_you_mean(class_name, LAYERS), unknown_class_hint(class_name))))
            raise self.error(f"Keras class '{class_name}' is not supported by nnspec; if it is your own layer, declare "
                             "it with --custom-layers FILE.yaml", name, class_name, hint=hint)
        return class_name, self.fields(class_name, config, name)

    def fields(self, type_name: str, config: dict[str, Any], name: str) -> dict[str, Any]:
        model = LAYERS[type_name].spec_model
        fields: dict[str, Any] = {}
        for key, value in config.items():
            if key not in model.model_fields or key in _COMMON:
                continue
            if key == "data_format" and value not in (None, "channels_last"):
                raise self.error(f"data_format {value!r}: nnspec specs are channels-last", name, type_name,
                                 hint="rebuild the model with data_format='channels_last' (the counts do not change)")
            if key == "axis" and type_name == "BatchNormalization" and isinstance(value, list):
                if len(value) != 1:
                    raise self.error(f"normalizes over several axes {value}; nnspec's BatchNormalization takes one",
                                     name, type_name)
                value = value[0]
            if key == "layer" and isinstance(value, dict):  # Bidirectional, TimeDistributed
                inner_type, inner_fields = self.convert(str(value.get("class_name")), value.get("config") or {}, name)
                value = {"type": inner_type, **inner_fields}
            if key == "activation" and isinstance(value, dict):
                value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
            value = _plain(value)
            if _is_default(model, key, value):
                continue
            fields[key] = _compact(value) if key in _BROADCAST_FIELDS else value
        if config.get("trainable") is False:
            fields["trainable"] = False
        return fields


def _refs(value: Any) -> list[str]:
    """input_layers / output_layers: [name, 0, 0], or a list of those (Keras 3 may nest them)."""
    if not isinstance(value, list) or not value:
        return []
    if isinstance(value[0], str):
        return [value[0]]
    result = []
    for item in value:
        result.extend(_refs(item))
    return result


def _tensor_ref(source: str, tensor_index: Any) -> str:
    """Output `tensor_index` of layer `source` (return_state, Bidirectional merge_mode None): 'source:INDEX',
    the spec's reference to a layer's other outputs; output 0 is the plain name."""
    return source if tensor_index in (0, None) else f"{source}:{tensor_index}"


def _tensor_refs(value: Any) -> list[str]:
    """output_layers: [name, 0, index], or a list of those, as references that keep the output index."""
    if not isinstance(value, list) or not value:
        return []
    if isinstance(value[0], str):
        return [_tensor_ref(value[0], value[2] if len(value) > 2 else 0)]
    return [ref for item in value for ref in _tensor_refs(item)]


def _keras_tensors(value: Any) -> Iterator[list[Any]]:
    """Keras 3 inbound node arguments: the keras_history of each tensor, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield list(value.get("config", {}).get("keras_history", []))
            return
        for item in value.values():
            yield from _keras_tensors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keras_tensors(item)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _compact(value: Any) -> Any:
    """[3, 3] -> 3 for fields that broadcast one value to every axis."""
    if isinstance(value, list) and value and all(v == value[0] and not isinstance(v, list) for v in value):
        return value[0]
    return value


def _default_value(model: Any, key: str) -> Any:
    default = model.model_fields[key].default
    if default is PydanticUndefined:
        return PydanticUndefined
    if isinstance(default, tuple):
        return [int(d) if hasattr(d, "is_Integer") and d.is_Integer else d for d in default]
    if hasattr(default, "is_Integer") and default.is_Integer:
        return int(default)
    return default


def spec_field_default(type_name: str, key: str) -> Any:
    """The value a converted spec means when it leaves `key` out of a `type_name` layer (the
    converter drops fields equal to their default); PydanticUndefined when the field has none."""
    model = LAYERS[type_name].spec_model if type_name in LAYERS else None
    if model is None or key not in model.model_fields:
        return PydanticUndefined
    return _default_value(model, key)


def _is_default(model: Any, key: str, value: Any) -> bool:
    default = _default_value(model, key)
    if default is PydanticUndefined:
        return False
    if key == "activation" and value == "linear" and default is None:
        return True
    if isinstance(default, list) and key in _BROADCAST_FIELDS:
        return _compact(value if isinstance(value, list) else [value]) == _compact(default)
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) == default
    return value == default and type(value) is type(default)


# ---- classes that map onto another spec type ----------------------------------------------------


def _relu(importer: _KerasImporter, config: dict[str, Any], name: str, class_name: str) -> tuple[str, dict[str, Any]]:
    max_value = config.get("max_value")
    slope = config.get("negative_slope", config.get("alpha", 0)) or 0
    threshold = config.get("threshold", 0) or 0
    if threshold:
        raise importer.error(f"ReLU with threshold {threshold} has no spec activation", name, class_name)
    if max_value in (None, 0) and not slope:
        activation = "relu"
    elif max_value == 6 and not slope:
        activation = "relu6"
    elif max_value is None and slope:
        activation = "leaky_relu"
    else:
        raise importer.error(f"ReLU(max_value={max_value}, negative_slope={slope}) has no spec activation "
                             "(relu, relu6 and leaky_relu have)", name, class_name)
    return "Activation", _trainable({"activation": activation}, config)


def _named_activation(activation: str) -> Any:
    def convert(importer: _KerasImporter, config: dict[str, Any], name: str, class_name: str) -> tuple[str, dict[str, Any]]:
        return "Activation", _trainable({"activation": activation}, config)

    return convert


def _activation(importer: _KerasImporter, config: dict[str, Any], name: str, class_name: str) -> tuple[str, dict[str, Any]]:
    value = config.get("activation")
    if isinstance(value, dict):  # Keras 3 may serialize a function reference
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    if not isinstance(value, str):
        raise importer.error(f"activation {value!r} is not a named activation", name, class_name)
    if value in NOT_ELEMENTWISE:
        raise importer.error(f"activation '{value}' {NOT_ELEMENTWISE[value]}", name, class_name)
    return "Activation", _trainable({"activation": value}, config)


def _lambda(importer: _KerasImporter, config: dict[str, Any], name: str, class_name: str) -> tuple[str, dict[str, Any]]:
    function = config.get("function")
    named: Any = None
    if isinstance(function, dict):  # Keras 3: {"module": ..., "class_name": "function", "config": "cos"}
        if function.get("class_name") == "function":
            named = function.get("config")
    elif isinstance(function, str) and config.get("function_type") in ("function", "raw", None):  # Keras 2
        named = function
    if isinstance(named, str):
        named = named.rsplit(".", 1)[-1]
        named = {"neg": "negative", "cosine": "cos", "sine": "sin"}.get(named, named)
    if named not in LAMBDA_FUNCTIONS:
        what = f"the function '{named}'" if isinstance(named, str) else "Python code"
        raise importer.error(f"a Lambda of {what}: nnspec counts only Lambdas of a named elementwise function "
                             f"({', '.join(sorted(LAMBDA_FUNCTIONS))}) and never runs code from a model",
                             name, class_name, hint="write this layer in the converted spec by hand")
    return "Lambda", _trainable({"function": named}, config)


def _cudnn(target: str) -> Any:
    def convert(importer: _KerasImporter, config: dict[str, Any], name: str, class_name: str) -> tuple[str, dict[str, Any]]:
        fields = importer.fields(target, config, name)
        fields["cudnn_compatible"] = True
        if target == "GRU":
            fields["reset_after"] = True
        return target, fields

    return convert


def _trainable(fields: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    if config.get("trainable") is False:
        fields["trainable"] = False
    return fields


_SPECIAL = {
    "ReLU": _relu,
    "LeakyReLU": _named_activation("leaky_relu"),
    "ELU": _named_activation("elu"),
    "Activation": _activation,
    "Lambda": _lambda,
    "CuDNNGRU": _cudnn("GRU"),
    "CuDNNLSTM": _cudnn("LSTM"),
}
