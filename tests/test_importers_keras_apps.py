"""The Keras importer on what keras.applications saves (no framework needed): Keras 3 operations saved as layers with
a number operand (MobileNetV3's x + 3.0, x * (1/6)), a nested Sequential / Functional used as a layer (ConvNeXt's
stem), LayerScale, Normalization, hard_silu. The JSON is written in Keras 3.15's to_json() format (as
MobileNetV3Small's and ConvNeXtTiny's configs have it); numbers worked by hand."""

from __future__ import annotations

import json

import pytest

from analyzer.importers import ModelImportError, import_model


def tensor(source, shape):
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, *shape], "dtype": "float32",
                                                         "keras_history": [source, 0, 0]}}


def layer(class_name, name, config, args, module="keras.layers"):
    return {"module": module, "class_name": class_name, "config": {"name": name, **config}, "name": name,
            "inbound_nodes": [{"args": args, "kwargs": {}}]}


def model(layers, output, name="m", input_shape=(8, 8, 4)):
    entry = {"module": "keras.layers", "class_name": "InputLayer", "name": "input_layer", "inbound_nodes": [],
             "config": {"batch_shape": [None, *input_shape], "dtype": "float32", "name": "input_layer"}}
    return {"module": "keras", "class_name": "Functional", "keras_version": "3.15.1", "backend": "torch",
            "config": {"name": name, "layers": [entry, *layers], "input_layers": [["input_layer", 0, 0]],
                       "output_layers": [[output, 0, 0]]}}


def imported(tmp_path, config):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    return import_model(path)


def test_ops_layers_with_a_number_are_scalar_ops(tmp_path):
    ops = "keras.src.ops.numpy"
    layers = [
        layer("Add", "add", {}, [tensor("input_layer", [8, 8, 4]), 3.0], ops),
        layer("ReLU", "re_lu", {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0},
              [tensor("add", [8, 8, 4])]),
        layer("Multiply", "multiply", {}, [tensor("re_lu", [8, 8, 4]), 0.16666666666666666], ops),
        layer("Subtract", "subtract", {}, [1.0, tensor("multiply", [8, 8, 4])], ops),
        layer("Add", "add_1", {}, [tensor("subtract", [8, 8, 4]), tensor("input_layer", [8, 8, 4])], ops),
    ]
    result = imported(tmp_path, model(layers, "add_1"))
    spec = {row.name: row.spec for row in result.report.layers.values()}
    assert (spec["add"].type, spec["add"].op, spec["add"].value, spec["add"].reverse) == ("ScalarOp", "add", 3.0, False)
    assert (spec["multiply"].op, spec["multiply"].value) == ("multiply", 0.16666666666666666)
    assert (spec["subtract"].op, spec["subtract"].reverse) == ("subtract", True)  # 1.0 - x
    assert spec["add_1"].type == "Add"  # two tensors: the merge layer
    # 8·8·4 = 256 elements: three ScalarOps 256 each, relu6 2·256, the Add 256: 4·256 + 512 = 1536
    report = result.report
    assert report.value(report.total.flops) == 1536 and report.value(report.total.params) == 0


def test_an_ops_layer_of_an_array_or_another_op_is_refused(tmp_path):
    ops = "keras.src.ops.numpy"
    bad = layer("Mean", "mean", {}, [tensor("input_layer", [8, 8, 4])], ops)
    with pytest.raises(ModelImportError, match=r"layer 'mean' \(Mean\): is the Keras operation keras.src.ops.numpy.Mean"):
        imported(tmp_path, model([bad], "mean"))
    divide = layer("Divide", "divide", {}, [tensor("input_layer", [8, 8, 4]), tensor("input_layer", [8, 8, 4])], ops)
    with pytest.raises(ModelImportError, match="divides two tensors"):
        imported(tmp_path, model([divide], "divide"))


def conv(name, filters, kernel):
    return {"module": "keras.layers", "class_name": "Conv2D", "config": {
        "name": name, "filters": filters, "kernel_size": [kernel, kernel], "strides": [kernel, kernel],
        "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
        "activation": "linear", "use_bias": True}}


def test_a_nested_sequential_is_a_block_named_after_it(tmp_path):
    stem = {"module": "keras", "class_name": "Sequential", "name": "stem", "config": {"name": "stem", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, 8, 8, 4], "name": "input_layer_1"}},
        conv("stem_conv", 6, 2),
        {"module": "keras.layers", "class_name": "LayerNormalization",
         "config": {"name": "stem_layernorm", "axis": [-1], "epsilon": 1e-6}}]},
        "inbound_nodes": [{"args": [tensor("input_layer", [8, 8, 4])], "kwargs": {"mask": None}}]}
    scale = layer("LayerScale", "layer_scale", {"init_values": 1e-6, "projection_dim": 6},
                  [tensor("stem", [4, 4, 6])], "keras.src.applications.convnext")
    act = layer("Activation", "act", {"activation": "hard_silu"}, [tensor("layer_scale", [4, 4, 6])])
    report = imported(tmp_path, model([stem, scale, act], "act")).report
    assert list(report.layers)[1:] == ["stem.stem_conv", "stem.stem_layernorm", "layer_scale", "act"]
    assert report.layers["layer_scale"].inputs == ("stem.stem_layernorm",)
    # conv 2·2·4·6 + 6 = 102, layernorm 2·6 = 12, LayerScale 6: 120 params, all trainable
    assert report.value(report.total.params) == report.value(report.total.trainable_params) == 120
    # hard_silu 5 per element on 4·4·6 = 96: 480
    assert report.value(report.layers["act"].counts.activation) == 480


def test_a_nested_functional_takes_the_tensors_it_is_called_on(tmp_path):
    inner = model([layer("Dense", "inner_dense", {"units": 3, "activation": "linear", "use_bias": True},
                         [tensor("input_layer", [4]), ])], "inner_dense", name="inner", input_shape=(4,))
    inner.update(name="inner", inbound_nodes=[{"args": [tensor("norm", [4])], "kwargs": {}}])
    norm = layer("Normalization", "norm", {"axis": [-1], "invert": False, "mean": None, "variance": None},
                 [tensor("input_layer", [4])])
    report = imported(tmp_path, model([norm, inner], "inner", input_shape=(4,))).report
    assert list(report.layers)[1:] == ["norm", "inner.inner_dense"]
    assert report.layers["inner.inner_dense"].inputs == ("norm",)
    # Normalization without mean/variance: 2·4 + 1 = 9 non-trainable; Dense 4·3 + 3 = 15 trainable
    assert (report.value(report.total.trainable_params), report.value(report.total.non_trainable_params)) == (15, 9)


def test_an_activation_that_is_not_elementwise_is_refused_with_its_reason(tmp_path):
    glu = layer("Activation", "g", {"activation": "glu"}, [tensor("input_layer", [8, 8, 4])])
    with pytest.raises(ModelImportError, match="activation 'glu' splits its axis"):
        imported(tmp_path, model([glu], "g"))
