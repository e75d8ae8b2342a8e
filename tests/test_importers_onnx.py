"""The ONNX importer on small graphs built here with onnx.helper (skipped without the optional
`onnx` package; `make crosscheck` also imports torch.onnx exports of the specs). Expected numbers
are hand calculations written out in each test."""

from __future__ import annotations

import warnings

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


# ---- recurrent layers exported as unrolled loops (analyzer/importers/onnx/loops.py) ------------


def rnn_loop(steps, flip=False, stack=False, skip_step=None):
    """A SimpleRNN(2) over (N, T, 3) as torch.onnx unrolls a Python loop: xs = x W + b, then per step
    h = tanh(xs[:, t] + h U) from a zero initial state (a Constant, as the exporter writes it)."""
    nodes = []
    source = "x"
    if flip:  # x.flip(1): a Slice with step -1 over the time axis (go_backwards)
        nodes.append(helper.make_node("Slice", ["x", "m1", "big_neg", "one", "m1"], ["xf"], name="/rnn/Slice"))
        source = "xf"
    nodes += [helper.make_node("MatMul", [source, "W"], ["xw"], name="/rnn/kernel/MatMul"),
              helper.make_node("Add", ["b", "xw"], ["xs"], name="/rnn/kernel/Add"),
              helper.make_node("Constant", [], ["h0"], name="/rnn/Constant",
                               value=numpy_helper.from_array(np.zeros((1, 2), dtype=np.float32)))]
    h = "h0"
    states = []
    for t in range(steps):
        if t == skip_step:
            continue
        nodes += [helper.make_node("Gather", ["xs", f"t{t}"], [f"x{t}"], name=f"/rnn/Gather_{t}", axis=1),
                  helper.make_node("MatMul", [h, "U"], [f"hu{t}"], name=f"/rnn/recurrent/MatMul_{t}"),
                  helper.make_node("Add", [f"x{t}", f"hu{t}"], [f"s{t}"], name=f"/rnn/Add_{t}"),
                  helper.make_node("Tanh", [f"s{t}"], [f"h{t + 1}"], name=f"/rnn/Tanh_{t}")]
        h = f"h{t + 1}"
        states.append(h)
    if stack:
        for i, state in enumerate(states):
            nodes.append(helper.make_node("Unsqueeze", [state, "one"], [f"u{i}"], name=f"/rnn/Unsqueeze_{i}"))
        nodes.append(helper.make_node("Concat", [f"u{i}" for i in range(len(states))], ["seq"], name="/rnn/Concat",
                                      axis=1))
        nodes.append(helper.make_node("Relu", ["seq"], ["y"], name="/act/Relu"))
    else:
        nodes.append(helper.make_node("Relu", [h], ["y"], name="/act/Relu"))
    inits = [weight("W", 3, 2), weight("b", 2), weight("U", 2, 2), ints("one", [1]), ints("m1", [-1]),
             ints("big_neg", [-(2**63)])] + [numpy_helper.from_array(np.array(t, dtype=np.int64), f"t{t}")
                                             for t in range(steps)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, steps, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return nodes, [x], [y], inits


def test_unrolled_loop_is_one_simple_rnn(tmp_path):
    model = import_model(save(tmp_path, *rnn_loop(4)))
    report = model.report
    rnn = report.layers["rnn"]
    assert rnn.type == "SimpleRNN" and rnn.spec.units == 2 and rnn.spec.return_sequences is False
    # kernel 3 x 2 + bias 2 + recurrent kernel 2 x 2 = 12 params; per step 3*2 + 2*2 = 10 MACs, 4 steps
    assert report.value(report.total.params) == 12
    assert report.value(rnn.counts.macs) == 4 * 10
    assert [row.type for row in report.layers.values()] == ["InputLayer", "SimpleRNN", "Activation"]


def test_unrolled_loop_with_flip_and_stack_is_go_backwards_return_sequences(tmp_path):
    report = import_model(save(tmp_path, *rnn_loop(3, flip=True, stack=True))).report
    rnn = report.layers["rnn"]
    assert rnn.spec.go_backwards is True and rnn.spec.return_sequences is True
    assert rnn.output_shape == (3, 2)
    assert report.value(rnn.counts.macs) == 3 * 10


def test_unrolled_loop_missing_a_step_is_refused(tmp_path):
    with pytest.raises(NNSpecError, match=r"reads steps \[0, 2\]\.\.\. of 3, not every step"):
        import_model(save(tmp_path, *rnn_loop(3, skip_step=1)))


def test_reversed_sequence_read_by_another_layer_is_refused(tmp_path):
    nodes = [helper.make_node("Slice", ["x", "m1", "big_neg", "one", "m1"], ["xf"], name="/flip/Slice"),
             helper.make_node("Relu", ["xf"], ["y"], name="/act/Relu")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 3])
    inits = [ints("one", [1]), ints("m1", [-1]), ints("big_neg", [-(2**63)])]
    with pytest.raises(NNSpecError, match="axis 1 is reversed"):
        import_model(save(tmp_path, nodes, [x], [y], inits))


# ---- merges ------------------------------------------------------------------------------------


def two_inputs():
    return [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("a", "b")]


def test_max_and_min_of_activations_are_maximum_and_minimum(tmp_path):
    nodes = [helper.make_node("Max", ["a", "b"], ["m"], name="/maxed/Max"),
             helper.make_node("Min", ["m", "b"], ["y"], name="/mined/Min")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    report = import_model(save(tmp_path, nodes, two_inputs(), [y], [])).report
    assert [report.layers[n].type for n in ("maxed", "mined")] == ["Maximum", "Minimum"]


def test_sum_divided_by_its_count_is_average(tmp_path):
    # (a + b) / 2, as torch writes Keras' Average: one Average layer, no Add
    nodes = [helper.make_node("Add", ["a", "b"], ["s"], name="/mean/Add"),
             helper.make_node("Div", ["s", "two"], ["y"], name="/mean/Div")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    report = import_model(save(tmp_path, nodes, two_inputs(), [y], [two])).report
    assert [row.type for row in report.layers.values()] == ["InputLayer", "InputLayer", "Average"]


def test_div_by_another_constant_is_refused(tmp_path):
    # attention's q / sqrt(key_dim): a scaling no spec layer computes
    nodes = [helper.make_node("Div", ["a", "three"], ["y"], name="/attention/Div")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    three = numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three")
    with pytest.raises(NNSpecError, match=r"node '/attention/Div' \(Div\): Div of an activation tensor and a constant"):
        import_model(save(tmp_path, nodes, two_inputs()[:1], [y], [three]))


# ---- repeats: Tile + Reshape (UpSampling), Expand (RepeatVector) --------------------------------


def test_tile_then_reshape_is_up_sampling_1d(tmp_path):
    # torch's x.repeat_interleave(3, dim=1) on (N, 5, 4): Unsqueeze(2) -> Tile [1, 1, 3, 1] -> Reshape (N, 15, 4)
    nodes = [helper.make_node("Unsqueeze", ["x", "two"], ["u"], name="/up/Unsqueeze"),
             helper.make_node("Tile", ["u", "repeats"], ["t"], name="/up/Tile"),
             helper.make_node("Reshape", ["t", "shape"], ["y"], name="/up/Reshape")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 15, 4])
    inits = [ints("two", [2]), ints("repeats", [1, 1, 3, 1]), ints("shape", [1, -1, 4])]
    report = import_model(save(tmp_path, nodes, [x], [y], inits)).report
    up = report.layers["up"]
    assert (up.type, up.spec.size, up.output_shape) == ("UpSampling1D", 3, (15, 4))
    assert report.value(report.total.params) == 0 and report.value(report.total.macs) == 0


def test_tile_of_the_second_axis_is_up_sampling_2d(tmp_path):
    # repeat_interleave(2, dim=2) on (N, 3, 5, 4) (channels-last H, W, C): UpSampling2D size (1, 2) -> (3, 10, 4)
    nodes = [helper.make_node("Unsqueeze", ["x", "three"], ["u"], name="/up2/Unsqueeze"),
             helper.make_node("Tile", ["u", "repeats"], ["t"], name="/up2/Tile"),
             helper.make_node("Reshape", ["t", "shape"], ["y"], name="/up2/Reshape")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 10, 4])
    inits = [ints("three", [3]), ints("repeats", [1, 1, 1, 2, 1]), ints("shape", [1, 3, -1, 4])]
    up = import_model(save(tmp_path, nodes, [x], [y], inits)).report.layers["up2"]
    assert (up.type, tuple(up.spec.size), up.output_shape) == ("UpSampling2D", (1, 2), (3, 10, 4))


def test_tile_read_by_anything_but_its_reshape_is_refused(tmp_path):
    nodes = [helper.make_node("Unsqueeze", ["x", "two"], ["u"], name="/up/Unsqueeze"),
             helper.make_node("Tile", ["u", "repeats"], ["t"], name="/up/Tile"),
             helper.make_node("Relu", ["t"], ["y"], name="/act/Relu")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 3, 4])
    inits = [ints("two", [2]), ints("repeats", [1, 1, 3, 1])]
    with pytest.raises(NNSpecError, match=r"node '/act/Relu' \(Relu\): reads 't', a Tile of an activation"):
        import_model(save(tmp_path, nodes, [x], [y], inits))


def test_expand_of_a_vector_is_repeat_vector(tmp_path):
    # torch's x.unsqueeze(1).expand(-1, 6, -1) of (N, 4): RepeatVector(6) -> (6, 4), then Dense(2) on each step
    nodes = [helper.make_node("Unsqueeze", ["x", "one"], ["u"], name="/repeat/Unsqueeze"),
             helper.make_node("Expand", ["u", "shape"], ["e"], name="/repeat/Expand"),
             helper.make_node("MatMul", ["e", "w"], ["y"], name="/dense/MatMul")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 2])
    inits = [ints("one", [1]), ints("shape", [1, 6, 1]), weight("w", 4, 2)]
    report = import_model(save(tmp_path, nodes, [x], [y], inits)).report
    repeat = report.layers["repeat"]
    assert (repeat.type, repeat.spec.n, repeat.output_shape) == ("RepeatVector", 6, (6, 4))
    assert report.value(report.total.params) == 4 * 2  # the Dense, no bias
    assert report.value(report.total.macs) == 6 * 4 * 2


def test_expand_of_an_axis_with_data_is_refused(tmp_path):
    nodes = [helper.make_node("Expand", ["x", "shape"], ["y"], name="/grow/Expand")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4])
    with pytest.raises(NNSpecError, match=r"node '/grow/Expand' \(Expand\): expands an activation tensor"):
        import_model(save(tmp_path, nodes, [x], [y], [ints("shape", [1, 3, 4])]))


# ---- Bidirectional: two directions, a flip and a merge ----------------------------------------


def two_directions(merge):
    """Keras' Bidirectional(SimpleRNN(2, use_bias=False, return_sequences=True)) over (N, 4, 3) as exported:
    an RNN over x, an RNN over flip(x) whose sequence is flipped back, then the merge."""
    flip = ["m1", "big_neg", "one", "m1"]  # Slice(starts -1, ends -inf, axes 1, steps -1): x.flip(1)
    nodes = [helper.make_node("RNN", ["x", "Wf", "Rf"], ["yf4"], name="/bi/forward_layer/RNN", hidden_size=2, layout=1),
             helper.make_node("Squeeze", ["yf4", "two"], ["yf"], name="/bi/forward_layer/Squeeze"),
             helper.make_node("Slice", ["x", *flip], ["xr"], name="/bi/backward_layer/Slice"),
             helper.make_node("RNN", ["xr", "Wb", "Rb"], ["yb4"], name="/bi/backward_layer/RNN", hidden_size=2, layout=1),
             helper.make_node("Squeeze", ["yb4", "two"], ["ybr"], name="/bi/backward_layer/Squeeze"),
             helper.make_node("Slice", ["ybr", *flip], ["yb"], name="/bi/Slice")]
    if merge == "concat":
        nodes.append(helper.make_node("Concat", ["yf", "yb"], ["y"], name="/bi/Concat", axis=-1))
    else:  # ave: (forward + backward) / 2
        nodes += [helper.make_node("Add", ["yf", "yb"], ["s"], name="/bi/Add"),
                  helper.make_node("Div", ["s", "half"], ["y"], name="/bi/Div")]
    inits = [weight(f"W{d}", 1, 2, 3) for d in "fb"] + [weight(f"R{d}", 1, 2, 2) for d in "fb"]
    inits += [ints("one", [1]), ints("two", [2]), ints("m1", [-1]), ints("big_neg", [-(2**63)]),
              numpy_helper.from_array(np.array(2.0, dtype=np.float32), "half")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return nodes, [x], [y], inits


@pytest.mark.parametrize(("merge", "width"), [("concat", 4), ("ave", 2)])
def test_two_directions_and_a_merge_are_bidirectional(tmp_path, merge, width):
    report = import_model(save(tmp_path, *two_directions(merge))).report
    assert [row.type for row in report.layers.values()] == ["InputLayer", "Bidirectional"]
    bi = report.layers["bi"]
    assert bi.spec.merge_mode == merge and bi.spec.layer.type == "SimpleRNN" and bi.spec.layer.go_backwards is False
    assert bi.output_shape == (4, width)
    # per direction: kernel 3 x 2 + recurrent kernel 2 x 2 = 10 params; 10 MACs per step, 4 steps
    assert report.value(report.total.params) == 2 * 10
    assert report.value(report.total.macs) == 2 * 4 * 10


def test_merge_of_a_reversed_sequence_with_another_layer_is_refused(tmp_path):
    nodes, inputs, outputs, inits = two_directions("concat")
    nodes[0] = helper.make_node("RNN", ["x", "Wf", "Rf"], ["yf4"], name="/bi/forward_layer/RNN", hidden_size=3, layout=1)
    inits[0] = weight("Wf", 1, 3, 3)
    inits[2] = weight("Rf", 1, 3, 3)
    with pytest.raises(NNSpecError, match=r"node '/bi/Concat' \(Concat\): merges a reversed sequence .* differ in more "
                                          "than their direction"):
        import_model(save(tmp_path, nodes, inputs, outputs, inits))


def scalar(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype=np.float32)))


def dense_then(tmp_path, nodes, extra=()):
    # x (N, 4) -> Gemm (4 -> 3, a Dense: 4*3 + 3 = 15 params) -> the nodes under test, reading 'd', writing 'y'
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["d"], name="/fc/Gemm", transB=1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    return save(tmp_path, [gemm, *nodes], [x], [y], [weight("w", 3, 4), weight("b", 3), *extra])


def test_relu6_of_x_plus_3_over_6_is_hard_sigmoid(tmp_path):
    # torch writes Keras' hard_sigmoid as relu6(x + 3) / 6; the constants come after the Add, as torch writes them
    nodes = [scalar("three", 3.0),
             helper.make_node("Add", ["d", "three"], ["a"], name="/act/Add"),
             scalar("zero", 0.0), scalar("six", 6.0),
             helper.make_node("Clip", ["a", "zero", "six"], ["c"], name="/act/Clip"),
             scalar("six_2", 6.0),
             helper.make_node("Div", ["c", "six_2"], ["y"], name="/act/Div")]
    report = import_model(dense_then(tmp_path, nodes)).report
    rows = list(report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "Dense", "Activation"]
    assert rows[2].spec.activation == "hard_sigmoid"
    assert report.value(report.total.params) == 4 * 3 + 3


def test_relu6_of_x_plus_3_over_another_constant_is_refused(tmp_path):
    nodes = [scalar("three", 3.0), helper.make_node("Add", ["d", "three"], ["a"], name="/act/Add"),
             scalar("zero", 0.0), scalar("six", 6.0),
             helper.make_node("Clip", ["a", "zero", "six"], ["c"], name="/act/Clip"),
             scalar("five", 5.0), helper.make_node("Div", ["c", "five"], ["y"], name="/act/Div")]
    with pytest.raises(NNSpecError, match=r"node '/act/Add' \(Add\): Add of an activation tensor and a constant"):
        import_model(dense_then(tmp_path, nodes))


def test_x_over_1_plus_abs_x_is_softsign(tmp_path):
    nodes = [helper.make_node("Abs", ["d"], ["m"], name="/act/Abs"), scalar("one", 1.0),
             helper.make_node("Add", ["m", "one"], ["a"], name="/act/Add"),
             helper.make_node("Div", ["d", "a"], ["y"], name="/act/Div")]
    report = import_model(dense_then(tmp_path, nodes)).report
    rows = list(report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "Dense", "Activation"]
    assert rows[2].spec.activation == "softsign"
    # |x| divided by another tensor than x is two layers (a Lambda abs, then the Add of a constant: refused)
    nodes[3] = helper.make_node("Div", ["m", "a"], ["y"], name="/act/Div")
    with pytest.raises(NNSpecError, match="Add of an activation tensor and a constant"):
        import_model(dense_then(tmp_path, nodes))


def test_instance_norm_of_a_reshape_to_groups_is_group_normalization(tmp_path):
    # torch's GroupNorm(2, 4) on x (N, 4, 5): Reshape (0, 2, -1), InstanceNormalization with constant ones and
    # zeros, Reshape back to Shape(x), Mul by gamma (4, 1), Add beta (4, 1): gamma and beta are 2 * 4 = 8 params
    nodes = [
        helper.make_node("Constant", [], ["groups"], value=ints("g", [0, 2, -1])),
        helper.make_node("Reshape", ["x", "groups"], ["r"], name="/gn/norm/Reshape"),
        helper.make_node("Constant", [], ["ones"], value=numpy_helper.from_array(np.ones(2, np.float32))),
        helper.make_node("Constant", [], ["zeros"], value=numpy_helper.from_array(np.zeros(2, np.float32))),
        helper.make_node("InstanceNormalization", ["r", "ones", "zeros"], ["n"], name="/gn/norm/InstanceNormalization",
                         epsilon=1e-3),
        helper.make_node("Shape", ["x"], ["s"], name="/gn/norm/Shape"),
        helper.make_node("Reshape", ["n", "s"], ["b"], name="/gn/norm/Reshape_1"),
        helper.make_node("Mul", ["b", "gamma"], ["m"], name="/gn/norm/Mul"),
        helper.make_node("Add", ["m", "beta"], ["y"], name="/gn/norm/Add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 5])
    path = save(tmp_path, nodes, [x], [y], [weight("gamma", 4, 1), weight("beta", 4, 1)])
    report = import_model(path).report
    rows = list(report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "Permute", "GroupNormalization"]
    norm = rows[2].spec
    assert (norm.groups, norm.center, norm.scale, norm.epsilon) == (2, True, True, 1e-3)
    assert rows[2].output_shape == (5, 4)
    assert report.value(report.total.params) == 8


def same_average_pool(count_pads):
    # x (N, 3, 7) -> Conv 1x1 (3 -> 3) -> 'same' AveragePooling1D(3) as the torch export writes it: the pooled
    # sum of the zero-padded input over the pooled count of real cells (ones of shape (1, 1, 7), padded alike)
    ones = numpy_helper.from_array(np.ones((1, 1, 7), np.float32))
    return [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[1]),
        helper.make_node("Constant", [], ["ones"], value=ones),
        helper.make_node("Constant", [], ["count_pads"], value=ints("cp", count_pads)),
        helper.make_node("Pad", ["ones", "count_pads"], ["padded_ones"], name="/pool/Pad"),
        helper.make_node("Constant", [], ["sum_pads"], value=ints("sp", [0, 0, 1, 0, 0, 1])),
        helper.make_node("Pad", ["c", "sum_pads"], ["padded"], name="/pool/Pad_1"),
        helper.make_node("AveragePool", ["padded"], ["pooled_sum"], name="/pool/pool/AveragePool", kernel_shape=[3]),
        helper.make_node("AveragePool", ["padded_ones"], ["count"], name="/pool/pool_1/AveragePool", kernel_shape=[3]),
        helper.make_node("Div", ["pooled_sum", "count"], ["y"], name="/pool/Div"),
    ]


def test_pooled_sum_over_pooled_count_is_same_average_pooling(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 7])
    path = save(tmp_path, same_average_pool([0, 0, 1, 0, 0, 1]), [x], [y], [weight("w", 3, 3, 1)])
    report = import_model(path).report
    rows = list(report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "Conv1D", "AveragePooling1D"]
    pool = rows[2].spec
    assert (pool.pool_size, pool.strides, pool.padding) == ((3,), (1,), "same")
    assert rows[2].output_shape == (7, 3)  # Keras' 'same': ceil(7 / 1) steps, 3 channels
    # the count padded otherwise is not the count of real cells: refused, naming the Div
    path = save(tmp_path, same_average_pool([0, 0, 2, 0, 0, 0]), [x], [y], [weight("w", 3, 3, 1)], "other.onnx")
    with pytest.raises(NNSpecError, match=r"node '/pool/Div' \(Div\): the export's 'same' AveragePooling"):
        import_model(path)


def test_negative_pad_is_a_cropping(tmp_path):
    # x (N, 2, 10) -> Conv 1x1 -> Pad (-1 before, +2 after): ZeroPadding1D (0, 2) then Cropping1D (1, 0): 10 + 2 - 1
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[1]),
             helper.make_node("Constant", [], ["pads"], value=ints("p", [0, 0, -1, 0, 0, 2])),
             helper.make_node("Pad", ["c", "pads"], ["y"], name="/pad/Pad")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 11])
    rows = list(import_model(save(tmp_path, nodes, [x], [y], [weight("w", 2, 2, 1)])).report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "Conv1D", "ZeroPadding1D", "Cropping1D"]
    assert (rows[2].spec.padding, rows[3].spec.cropping) == (((0, 2),), ((1, 0),))
    assert rows[3].output_shape == (11, 2)


def attention_graph(scale=3 ** 0.5, biases=(True, True, True, True), softmax_axis=-1):
    # torch_modules.MultiHeadAttention as torch.onnx writes it, self-attention on x (N, 5, 4): 2 heads,
    # key_dim = value_dim = 3, output 4 wide. Projections x W (+ b), heads split (N, -1, 2, 3) and moved to
    # axis 1, q / sqrt(3), scores q k^T, softmax, times v, heads merged back, output projection, reshape.
    def projection(tag, perm):
        out = f"{tag}_mm"
        nodes = [helper.make_node("MatMul", ["x", f"w{tag}"], [out], name=f"/attn/{tag}/MatMul")]
        if biases["qkv".index(tag)]:
            nodes.append(helper.make_node("Add", [f"b{tag}", out], [f"{tag}_b"], name=f"/attn/{tag}/Add"))
            out = f"{tag}_b"
        return [*nodes, helper.make_node("Reshape", [out, "heads_shape"], [f"{tag}_r"], name=f"/attn/Reshape_{tag}"),
                helper.make_node("Transpose", [f"{tag}_r"], [f"{tag}_t"], name=f"/attn/Transpose_{tag}", perm=perm)]

    nodes = [helper.make_node("Constant", [], ["heads_shape"], value=ints("hs", [0, -1, 2, 3])),
             *projection("q", [0, 2, 1, 3]), scalar("scale", scale),
             helper.make_node("Div", ["q_t", "scale"], ["q_s"], name="/attn/Div"),
             *projection("k", [0, 2, 3, 1]), *projection("v", [0, 2, 1, 3]),
             helper.make_node("MatMul", ["q_s", "k_t"], ["scores"], name="/attn/MatMul"),
             helper.make_node("Softmax", ["scores"], ["weights"], name="/attn/Softmax", axis=softmax_axis),
             helper.make_node("MatMul", ["weights", "v_t"], ["attended"], name="/attn/MatMul_1"),
             helper.make_node("Transpose", ["attended"], ["merged_t"], name="/attn/Transpose_3", perm=[0, 2, 1, 3]),
             helper.make_node("Constant", [], ["merged_shape"], value=ints("ms", [0, -1, 6])),
             helper.make_node("Reshape", ["merged_t", "merged_shape"], ["merged"], name="/attn/Reshape_3"),
             helper.make_node("MatMul", ["merged", "wo"], ["o_mm"], name="/attn/attention_output/MatMul")]
    if biases[3]:
        nodes.append(helper.make_node("Add", ["bo", "o_mm"], ["o_b"], name="/attn/attention_output/Add"))
    nodes += [helper.make_node("Constant", [], ["out_shape"], value=ints("os", [0, 5, 4])),
              helper.make_node("Reshape", ["o_b" if biases[3] else "o_mm", "out_shape"], ["y"], name="/attn/Reshape_4")]
    inits = [weight("wq", 4, 6), weight("wk", 4, 6), weight("wv", 4, 6), weight("wo", 6, 4)]
    inits += [weight(f"b{tag}", 6) for tag, on in zip("qkv", biases, strict=False) if on]
    inits += [weight("bo", 4)] if biases[3] else []
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, 4])
    return nodes, [x], [y], inits


def test_attention_pattern_is_one_multi_head_attention(tmp_path):
    report = import_model(save(tmp_path, *attention_graph())).report
    rows = list(report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "MultiHeadAttention"]
    layer = rows[1]
    assert (layer.spec.num_heads, layer.spec.key_dim, layer.spec.value_dim, layer.spec.output_shape) == (2, 3, None, None)
    assert layer.spec.use_bias is True
    assert layer.output_shape == (5, 4)
    # h = 2, kd = vd = 3, dq = dk = dv = do = 4: kernels 4 * (2*3*4) = 96, biases 2*2*3 + 2*3 + 4 = 22
    assert report.value(report.total.params) == 96 + 22
    # 5 positions: q, k, v projections 3 * 5*6*4 = 360; scores 2 heads * 5*5 of 3 terms = 150;
    # weights times v 2 * 5*3 of 5 terms = 150; output projection 5*4 of 6 terms = 120
    assert report.value(report.total.macs) == 360 + 150 + 150 + 120


def test_attention_pattern_without_biases_is_use_bias_false(tmp_path):
    report = import_model(save(tmp_path, *attention_graph(biases=(False,) * 4))).report
    assert report.layers["attn"].spec.use_bias is False
    assert report.value(report.total.params) == 96  # the four kernels alone


def test_attention_pattern_with_another_scale_or_softmax_axis_is_refused(tmp_path):
    # q / 2 is not Keras' q / sqrt(key_dim): the block is refused, naming the Div, rather than miscounted
    with pytest.raises(NNSpecError, match=r"node '/attn/Div' \(Div\) does not fit: the query is scaled by 0.5"):
        import_model(save(tmp_path, *attention_graph(scale=2.0)))
    with pytest.raises(NNSpecError, match=r"node '/attn/Softmax' \(Softmax\) does not fit: a softmax over axis 2"):
        import_model(save(tmp_path, *attention_graph(softmax_axis=2), name="axis.onnx"))
    # a bias on some projections only: Keras' use_bias is one flag for all four
    with pytest.raises(NNSpecError, match="some projections have a bias and others not"):
        import_model(save(tmp_path, *attention_graph(biases=(True, True, True, False)), name="bias.onnx"))


def test_torch_export_of_cross_attention_is_multi_head_attention(tmp_path):
    torch = pytest.importorskip("torch")
    from analyzer.layers.torch_modules import MultiHeadAttention

    # query (5, 4), value (6, 2) (the key is the value), 2 heads of key_dim 3, value_dim 2, output 7 wide
    module = MultiHeadAttention(4, 2, 2, num_heads=2, key_dim=3, value_dim=2, output_shape=[7])
    path = tmp_path / "mha.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that the TorchScript exporter is legacy
        torch.onnx.export(module, (torch.randn(1, 5, 4), torch.randn(1, 6, 2)), str(path), dynamo=False,
                          input_names=["query", "value"])
    model = import_model(path)
    report = model.report
    layer = list(report.layers.values())[-1]
    assert layer.type == "MultiHeadAttention"
    assert (layer.spec.num_heads, layer.spec.key_dim, layer.spec.value_dim, layer.spec.output_shape) == (2, 3, 2, (7,))
    assert model.spec.layers[-1].spec.inputs == ["query", "value"]  # cross-attention: the key is the value
    assert layer.output_shape == (5, 7)
    # kernels: q 4*6 = 24, k 2*6 = 12, v 2*4 = 8, output 4*7 = 28; biases 6 + 6 + 4 + 7 = 23
    assert report.value(report.total.params) == 24 + 12 + 8 + 28 + 23 == sum(p.numel() for p in module.parameters())
    # q 5*6 of 4 terms = 120, k 6*6 of 2 = 72, v 6*4 of 2 = 48, scores 2*5*6 of 3 = 180,
    # weights times v 2*5*2 of 6 = 120, output 5*7 of 4 = 140
    assert report.value(report.total.macs) == 120 + 72 + 48 + 180 + 120 + 140


def time_distributed_graph(inner, split_shape):
    # frames x (1, 3, 7, 2) as torch_modules.TimeDistributed writes it at batch 1: Reshape to (1*3, 7, 2), the
    # wrapped module's nodes `inner` (reading 'frames', writing 'inner_out'), Reshape to `split_shape`
    nodes = [helper.make_node("Constant", [], ["merge_shape"], value=ints("m", [3, 7, 2])),
             helper.make_node("Reshape", ["x", "merge_shape"], ["frames"], name="/td/Reshape"),
             *inner,
             helper.make_node("Constant", [], ["split_shape"], value=ints("s", split_shape)),
             helper.make_node("Reshape", ["inner_out", "split_shape"], ["y"], name="/td/Reshape_1")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 7, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, *split_shape[1:]])
    return nodes, [x], [y]


def test_batch_merged_with_time_is_time_distributed(tmp_path):
    dense = [helper.make_node("MatMul", ["frames", "w"], ["mm"], name="/td/layer/linear/MatMul"),
             helper.make_node("Add", ["b", "mm"], ["lin"], name="/td/layer/linear/Add"),
             helper.make_node("Relu", ["lin"], ["inner_out"], name="/td/layer/Relu")]
    path = save(tmp_path, *time_distributed_graph(dense, [1, 3, 7, 5]), [weight("w", 2, 5), weight("b", 5)])
    model = import_model(path)
    rows = list(model.report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "TimeDistributed", "TimeDistributed"]
    assert [r.spec.layer.type for r in rows[1:]] == ["Dense", "Activation"]
    assert rows[1].spec.layer.units == 5 and rows[1].spec.layer.use_bias is True  # the Add folded in
    assert rows[2].output_shape == (3, 7, 5)
    # Dense(5) on each of the 3 frames (7, 2): params once 2*5 + 5 = 15, MACs 3 frames * 7*5 outputs of 2 terms
    assert model.report.value(model.report.total.params) == 15
    assert model.report.value(model.report.total.macs) == 3 * 7 * 5 * 2


def test_time_distributed_conv_reads_its_transposes(tmp_path):
    conv = [helper.make_node("Transpose", ["frames"], ["t"], name="/td/layer/Transpose", perm=[0, 2, 1]),
            helper.make_node("Conv", ["t", "w", "b"], ["c"], name="/td/layer/conv/Conv", kernel_shape=[3]),
            helper.make_node("Transpose", ["c"], ["inner_out"], name="/td/layer/Transpose_1", perm=[0, 2, 1])]
    path = save(tmp_path, *time_distributed_graph(conv, [1, 3, 5, 4]), [weight("w", 4, 2, 3), weight("b", 4)])
    report = import_model(path).report
    rows = list(report.layers.values())
    assert [(r.type, r.spec.layer.type) for r in rows[1:]] == [("TimeDistributed", "Conv1D")]
    assert rows[1].output_shape == (3, 5, 4)
    # Conv1D(4, 3) on frames (7, 2): params 2*3*4 + 4 = 28; per frame 5*4 outputs of 2*3 terms, 3 frames
    assert report.value(report.total.params) == 28
    assert report.value(report.total.macs) == 3 * 5 * 4 * 6


def test_frames_not_split_back_to_batch_and_time_are_refused(tmp_path):
    # (3, 7, 2) frames reshaped to (1, 21, 2): time merged with the frame's axis, not split back to (1, 3, ...)
    nothing = [helper.make_node("Relu", ["frames"], ["inner_out"], name="/td/layer/Relu")]
    path = save(tmp_path, *time_distributed_graph(nothing, [1, 21, 2]), [])
    with pytest.raises(NNSpecError, match=r"node '/td/Reshape_1' \(Reshape\): a Reshape of frames .* not back to "
                                          r"\(N, 3, \.\.\.\)"):
        import_model(path)


def test_static_batch_reshape_dropping_a_size_1_axis_is_not_time_distributed(tmp_path):
    # (1, 1, 4, 3) -> (1, 4, 3) at batch 1 (amc/mcldnn's Reshape before its LSTM): drops the size-1 axis
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="/relu/Relu"),
             helper.make_node("Constant", [], ["shape"], value=ints("s", [1, 4, 3])),
             helper.make_node("Reshape", ["r", "shape"], ["y"], name="/reshape/Reshape")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3])
    rows = list(import_model(save(tmp_path, nodes, [x], [y], [])).report.layers.values())
    assert [r.type for r in rows] == ["InputLayer", "Activation", "Reshape"]
    assert rows[2].output_shape == (4, 3)


# ---- layers with several outputs: initial states, final states (torch exports of torch_modules) -------------


def export_torch(tmp_path, module, args, names, name="model.onnx"):
    torch = pytest.importorskip("torch")
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that the TorchScript exporter is legacy
        torch.onnx.export(module, tuple(torch.randn(1, *shape) for shape in args), str(path), dynamo=False,
                          input_names=names)
    return path


def test_loop_started_from_another_loops_states_takes_them_as_inputs(tmp_path):
    torch = pytest.importorskip("torch")
    from analyzer.layers.torch_modules import KerasLSTM

    class EncoderDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = KerasLSTM(3, 2, return_state=True)
            self.decoder = KerasLSTM(4, 2, return_sequences=True)

        def forward(self, source, target):
            _, h, c = self.encoder(source)
            return self.decoder(target, h, c)

    module = EncoderDecoder()
    model = import_model(export_torch(tmp_path, module, [(5, 3), (3, 4)], ["source", "target"]))
    report = model.report
    assert [row.type for row in report.layers.values()] == ["InputLayer", "InputLayer", "LSTM", "LSTM"]
    # the last h of an LSTM without return_sequences is its output 0 (= state_h); c is output 2: return_state
    assert model.spec.layers[-1].spec.inputs == ["target", "encoder", "encoder:2"]
    assert report.layers["encoder"].spec.return_state is True
    assert report.layers["decoder"].output_shape == (3, 2)
    # encoder: kernel 3*8 + bias 8 + recurrent 2*8 = 48; decoder: 4*8 + 8 + 2*8 = 56
    assert report.value(report.total.params) == 48 + 56 == sum(p.numel() for p in module.parameters())
    # per step: encoder 3*8 + 2*8 = 40 over 5 steps, decoder 4*8 + 2*8 = 48 over 3 steps
    assert report.value(report.total.macs) == 5 * 40 + 3 * 48


def test_onnx_gru_states_start_a_loop_and_final_states_are_outputs(tmp_path):
    torch = pytest.importorskip("torch")
    from analyzer.layers.torch_modules import GRU, KerasRNN

    class GruThenRnn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = GRU(3, 2, return_sequences=True, return_state=True)  # nn.GRU: the ONNX GRU op
            self.rnn = KerasRNN(3, 2, return_sequences=True, return_state=True)  # a loop

        def forward(self, x):
            sequence, state = self.gru(x)
            rnn_sequence, rnn_state = self.rnn(x, state)
            return sequence, rnn_sequence, rnn_state

    module = GruThenRnn()
    model = import_model(export_torch(tmp_path, module, [(4, 3)], ["x"]))
    report = model.report
    layers = {layer.name: layer for layer in model.spec.layers}
    gru = next(name for name, layer in layers.items() if layer.type == "GRU")
    assert layers[gru].spec.return_sequences is True and layers[gru].spec.return_state is True
    assert layers["rnn"].spec.inputs == ["x", f"{gru}:1"]
    assert layers["rnn"].spec.return_state is True
    assert model.spec.outputs == [gru, "rnn", "rnn:1"]
    # GRU (reset_after): kernel 3*6 + recurrent 2*6 + two biases 2*6 = 42; SimpleRNN: 3*2 + 2 + 2*2 = 12
    assert report.value(report.total.params) == 42 + 12 == sum(p.numel() for p in module.parameters())
    # per step: GRU 3*6 + 2*6 = 30, SimpleRNN 3*2 + 2*2 = 10; 4 steps
    assert report.value(report.total.macs) == 4 * 30 + 4 * 10


def test_bidirectional_loops_from_initial_states(tmp_path):
    pytest.importorskip("torch")
    from analyzer.layers.torch_modules import Bidirectional, KerasRNN

    module = Bidirectional(KerasRNN(3, 2, return_sequences=True), KerasRNN(3, 2, return_sequences=True,
                                                                           go_backwards=True),
                           merge_mode="sum", return_sequences=True)
    model = import_model(export_torch(tmp_path, module, [(4, 3), (2,), (2,)], ["x", "hf", "hb"]))
    report = model.report
    (bi,) = [layer for layer in model.spec.layers if layer.type == "Bidirectional"]
    assert bi.spec.merge_mode == "sum" and bi.spec.inputs == ["x", "hf", "hb"]  # forward's state, then backward's
    assert report.value(report.total.params) == 2 * 12 == sum(p.numel() for p in module.parameters())
    assert report.value(report.total.macs) == 2 * 4 * 10


def test_bidirectional_with_merge_mode_none_and_states_is_two_layers(tmp_path):
    pytest.importorskip("torch")
    from analyzer.layers.torch_modules import GRU, Bidirectional

    # merge_mode None, return_state: (forward last h, backward last h, forward state, backward state), each read
    module = Bidirectional(GRU(3, 2, return_state=True), GRU(3, 2, go_backwards=True, return_state=True),
                           merge_mode=None, return_state=True)
    model = import_model(export_torch(tmp_path, module, [(4, 3)], ["x"]))
    report = model.report
    forward, backward = [layer for layer in model.spec.layers if layer.type == "GRU"]
    assert forward.spec.go_backwards is False and backward.spec.go_backwards is True
    assert forward.spec.return_state is True and backward.spec.return_state is True
    assert model.spec.outputs == [forward.name, backward.name, f"{forward.name}:1", f"{backward.name}:1"]
    # the two directions as two layers count what one Bidirectional does: 2 GRUs of 42 params, 30 MACs a step
    assert report.value(report.total.params) == 2 * 42 == sum(p.numel() for p in module.parameters())
    assert report.value(report.total.macs) == 2 * 4 * 30


@pytest.mark.parametrize(("axes", "use_gate"), [([1], True), ([2, 1], False)])
def test_attention_over_chosen_axes_is_read_from_its_einsums(tmp_path, axes, use_gate):
    pytest.importorskip("torch")
    from analyzer.layers.torch_modules import MultiHeadAttention

    # query and value (5, 6, 4): 2 heads of key_dim 3 (value_dim 3), output 4 wide
    module = MultiHeadAttention(4, 4, 4, num_heads=2, key_dim=3, value_dim=3, output_shape=[4], use_gate=use_gate,
                                attention_axes=axes)
    model = import_model(export_torch(tmp_path, module, [(5, 6, 4), (5, 6, 4)], ["query", "value"]))
    report = model.report
    (layer,) = [row for row in report.layers.values() if row.type == "MultiHeadAttention"]
    assert (layer.spec.num_heads, layer.spec.key_dim, layer.spec.use_gate) == (2, 3, use_gate)
    # over axis 1 only: Keras' axes; over both position axes: Keras' default, not written
    assert layer.spec.attention_axes == ([1] if axes == [1] else None)
    assert layer.output_shape == (5, 6, 4)
    # q, k, v: 4*6 + 6 = 30 each; output 6*4 + 4 = 28; the gate another 30
    assert report.value(report.total.params) == 3 * 30 + 28 + 30 * use_gate == sum(p.numel() for p in module.parameters())
    # projections of the 30 positions: q, k, v 30*6*4 = 720 each, output 30*4*6 = 720, the gate 720;
    # over axis 1: 6 batch rows of 5 queries by 5 keys, 2 heads: scores 2*6*5*5*3 = 900, weighted sum 2*6*5*3*5 = 900;
    # over both: 30 queries by 30 keys: 2*30*30*3 = 5400 each
    attention = 900 if axes == [1] else 5400
    assert report.value(report.total.macs) == 4 * 720 + 720 * use_gate + 2 * attention


def test_lstm_loop_from_h_alone_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    from analyzer.layers.torch_modules import KerasLSTM

    class FromH(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = KerasLSTM(3, 2)

        def forward(self, x, h0):
            return self.lstm(x, h0)  # c starts at zeros: Keras' LSTM takes both states or neither

    path = export_torch(tmp_path, FromH(), [(4, 3), (2,)], ["x", "h0"])
    with pytest.raises(NNSpecError, match=r"starts from the tensors 'h0' of other layers: a LSTM starts from 2 state"):
        import_model(path)


def test_merged_bidirectional_whose_states_are_read_is_refused(tmp_path):
    pytest.importorskip("torch")
    from analyzer.layers.torch_modules import Bidirectional, KerasRNN

    module = Bidirectional(KerasRNN(3, 2, return_sequences=True, return_state=True),
                           KerasRNN(3, 2, return_sequences=True, go_backwards=True, return_state=True),
                           merge_mode="sum", return_sequences=True, return_state=True)
    path = export_torch(tmp_path, module, [(4, 3)], ["x"])
    with pytest.raises(NNSpecError, match="a Bidirectional whose merged sequence and states are both read is not read"):
        import_model(path)


def test_attention_einsums_that_are_not_keras_ones_are_refused(tmp_path):
    pytest.importorskip("torch")
    from analyzer.layers.torch_modules import MultiHeadAttention

    module = MultiHeadAttention(4, 4, 4, num_heads=2, key_dim=3, value_dim=3, output_shape=[4], attention_axes=[1])
    path = export_torch(tmp_path, module, [(5, 6, 4), (5, 6, 4)], ["query", "value"])
    model = onnx.load(str(path))
    (_, attend) = [node for node in model.graph.node if node.op_type == "Einsum"]
    for attribute in attend.attribute:  # the weighted sum over the query's axis instead of the key's
        if attribute.name == "equation":
            attribute.s = b"acdbf,abcde->abcde"
    onnx.save(model, str(path))
    with pytest.raises(NNSpecError, match=r"node '/Einsum_1' \(Einsum\) does not fit: the weighted sum's equation is "
                                          "not the scores' reversed"):
        import_model(path)


def test_onnx_gru_started_from_a_loops_state(tmp_path):
    torch = pytest.importorskip("torch")
    from analyzer.layers.torch_modules import GRU, KerasRNN

    class RnnThenGru(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = KerasRNN(3, 2)  # a loop; its last h is its output
            self.gru = GRU(3, 2, return_sequences=True)  # nn.GRU: the ONNX GRU op, initial_h = h.unsqueeze(0)

        def forward(self, x):
            return self.gru(x, self.rnn(x))

    module = RnnThenGru()
    model = import_model(export_torch(tmp_path, module, [(4, 3)], ["x"]))
    report = model.report
    (gru,) = [layer for layer in model.spec.layers if layer.type == "GRU"]
    assert gru.spec.inputs == ["x", "rnn"] and gru.spec.return_sequences is True
    assert report.layers["rnn"].spec.return_state is False  # output 0 is the last h: no state output needed
    # SimpleRNN 3*2 + 2 + 2*2 = 12, GRU 3*6 + 2*6 + 2*6 = 42; per step 10 and 30 MACs, 4 steps
    assert report.value(report.total.params) == 12 + 42 == sum(p.numel() for p in module.parameters())
    assert report.value(report.total.macs) == 4 * 10 + 4 * 30
