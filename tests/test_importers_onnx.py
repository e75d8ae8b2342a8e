"""The ONNX importer on small graphs built here with onnx.helper (skipped without the optional
`onnx` package; `make crosscheck` also imports torch.onnx exports of the specs). Expected numbers
are hand calculations written out in each test."""

from __future__ import annotations

import pytest
import sympy

onnx = pytest.importorskip("onnx")
import numpy as np  # noqa: E402  (onnx brings numpy)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from analyzer.errors import NNSpecError  # noqa: E402
from analyzer.importers import import_model  # noqa: E402
from analyzer.symbolic import floor_div, make_symbol  # noqa: E402

L = make_symbol("L")
T = make_symbol("T")


def weight(name, *dims):
    return numpy_helper.from_array(np.zeros(dims, dtype=np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def save(tmp_path, nodes, inputs, outputs, initializers, name="model.onnx"):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_conv_pool_gemm_channels_first(tmp_path):
    # x: (N, 2, L) -> Conv(8, k3, pads 1 1) -> Relu -> MaxPool(2) -> GlobalAveragePool -> Flatten -> Gemm(4)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv", kernel_shape=[3], pads=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="/pool/MaxPool", kernel_shape=[2], strides=[2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="/gap/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["f"], name="/flat/Flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="/fc/Gemm", transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, "L"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    path = save(tmp_path, nodes, [x], [y], [weight("w", 8, 2, 3), weight("b", 8), weight("fw", 4, 8), weight("fb", 4)])
    model = import_model(path, values={"L": 100})
    report = model.report
    assert model.spec.inputs[0].shape == (L, 2)  # declared channels-last: it feeds a Conv
    assert [row.type for row in report.layers.values()][1:] == [
        "Conv1D", "Activation", "MaxPooling1D", "GlobalAveragePooling1D", "Flatten", "Dense"]
    assert report.layers["conv"].spec.padding == "same"  # pads (1, 1) of a 3-kernel: Keras' same at every L
    assert report.layers["pool"].output_shape == (floor_div(L - 2, 2) + 1, 8)
    assert report.value(report.total.params) == (2 * 3 * 8 + 8) + (8 * 4 + 4)
    assert sympy.expand(report.total.macs - (L * 8 * 2 * 3 + 4 * 8)) == 0
    assert report.value(report.total.macs) == 100 * 48 + 32


def test_flatten_of_nchw_writes_a_permute(tmp_path):
    # x: (N, 3, 4, 5) -> Conv(6, 1x1) -> Flatten: ONNX flattens (C, H, W); the spec is (H, W, C).
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        helper.make_node("Flatten", ["c"], ["y"], name="/flat/Flatten"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 120])
    model = import_model(save(tmp_path, nodes, [x], [y], [weight("w", 6, 3, 1, 1)]))
    rows = list(model.report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "Conv2D", "Permute", "Flatten"]
    assert rows[2].output_shape == (6, 4, 5)
    assert model.report.value(model.report.total.params) == 3 * 6  # no bias


def test_transposes_cost_nothing_and_write_nothing(tmp_path):
    # A channels-last model: x (N, L, 2) -> Transpose -> Conv -> Transpose -> MatMul + Add (a Dense with bias).
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["t", "w", "b"], ["c"], name="/conv/Conv", kernel_shape=[5]),
        helper.make_node("Transpose", ["c"], ["u"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["u", "m"], ["mm"], name="/dense/MatMul"),
        helper.make_node("Add", ["mm", "mb"], ["y"], name="/dense/Add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "L", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "L", 3])
    path = save(tmp_path, nodes, [x], [y], [weight("w", 7, 2, 5), weight("b", 7), weight("m", 7, 3), weight("mb", 3)])
    report = import_model(path).report
    assert [r.type for r in report.layers.values()] == ["InputLayer", "Conv1D", "Dense"]
    assert report.layers["dense"].spec.use_bias is True  # the Add folded in as the bias
    assert sympy.expand(report.total.params - ((2 * 5 * 7 + 7) + (7 * 3 + 3))) == 0
    assert sympy.expand(report.total.macs - ((L - 4) * 7 * 10 + (L - 4) * 3 * 7)) == 0


def test_gru_last_state_and_hard_coded_reshape(tmp_path):
    # x (N, L, 1) -> Reshape to the hard-coded (N, 64, 2) of L = 128 -> GRU (time-major via a
    # Transpose), its last state Y_h as the output: return_sequences false.
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="/reshape/Reshape"),
        helper.make_node("Transpose", ["r"], ["tm"], perm=[1, 0, 2]),
        helper.make_node("GRU", ["tm", "W", "R", "B"], ["", "h"], name="/gru/GRU", hidden_size=5, linear_before_reset=1),
        helper.make_node("Squeeze", ["h", "zero"], ["y"], name="/squeeze/Squeeze"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "L", 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])
    inits = [ints("shape", [-1, 64, 2]), ints("zero", [0]), weight("W", 1, 15, 2), weight("R", 1, 15, 5), weight("B", 1, 30)]
    model = import_model(save(tmp_path, nodes, [x], [y], inits))
    report = model.report
    # (64, 2) at L = 128: both (L/2, 2) and (64, L/64) fit, so it is reported, not rewritten
    assert list(report.layers["reshape"].spec.target_shape) == [64, 2]
    assert any("ambiguous: (L/2, 2) or (64, L/64)" in m for m in model.messages())
    gru = report.layers["gru"]
    assert gru.spec.reset_after is True and gru.spec.return_sequences is False
    assert report.value(gru.counts.params) == 3 * 5 * (2 + 5) + 6 * 5  # two bias vectors, as ONNX stores them
    assert report.value(gru.counts.macs) == 64 * 3 * 5 * (2 + 5)


def test_unsupported_op_names_the_node(tmp_path):
    nodes = [helper.make_node("Hardmax", ["x"], ["y"], name="/head/Hardmax")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    with pytest.raises(NNSpecError, match=r"node '/head/Hardmax' \(Hardmax\): ONNX op 'Hardmax' is not supported"):
        import_model(save(tmp_path, nodes, [x], [y], []))


def test_product_of_two_activations_is_refused(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "x2"], ["y"], name="/attn/MatMul")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 4])
    x2 = helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 4])
    with pytest.raises(NNSpecError, match="MatMul of two activation tensors"):
        import_model(save(tmp_path, nodes, [x, x2], [y], []))


def test_export_size_is_read_from_a_hard_coded_reshape(tmp_path):
    # x (N, L, 4) reshaped to the hard-coded (N, 400): exported at L = 100. --set L=1000 is the
    # value wanted; the import converts at L = 100, lifts (400,) to (4*L,), then takes L = 1000.
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="/flat/Reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="/act/Relu"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "L", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 400])
    model = import_model(save(tmp_path, nodes, [x], [y], [ints("shape", [-1, 400])]), values={"L": 1000})
    assert list(model.spec.layers[0].spec.target_shape) == [4 * L]
    assert "L = 100 at export" in "\n".join(model.notes)
    assert model.document.symbols[0].default == 1000
    assert model.report.value(model.report.total.flops) == 4 * 1000  # one compare per element (relu)
