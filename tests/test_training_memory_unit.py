"""Issue 16, the memory of a training step: weights, gradients, optimizer state, the activations autograd saves for
the backward (per layer, each storage once), the peak, and Keras' mixed-precision policies. Numbers worked by hand
from docs/conventions.md#training (Memory); tests/crosscheck/test_training_saved.py holds the same rules against
torch's saved_tensors_hooks."""

from __future__ import annotations

import json

import pytest

from analyzer import analyze, cli
from analyzer.layers.registry import SAVES
from analyzer.training import training_step
from analyzer.training_memory import saved_activations, step_memory
from tests.conftest import run


def per_layer(step, dtype="float32"):
    return {name: step.report.value(b) for name, b in saved_activations(step, dtype).items()}


def lines(step, dtype="float32"):
    return {line.name: (step.report.value(line.elements), step.report.value(line.bytes), line.note)
            for line in step_memory(step, dtype)}


DENSE_RELU_DENSE = [{"type": "Dense", "name": "d1", "units": 4}, {"type": "Activation", "name": "relu", "activation": "relu"},
                    {"type": "Dense", "name": "d2", "units": 3}]


def test_dense_relu_dense():
    # x (5,) -> Dense(4) -> relu -> Dense(3), B = 8, float32.
    step = training_step(run([5], DENSE_RELU_DENSE), optimizer="adam", batch=8)
    # d1: dL/dW = xᵀ·dz keeps the model input x: 8·5 = 40 floats = 160 bytes.
    # relu keeps its output: 8·4 = 32 floats = 128 bytes; d2 keeps its input, that same storage: counted at relu.
    assert per_layer(step) == {"d1": 160, "relu": 128, "d2": 0}
    memory = lines(step)
    # weights 5·4 + 4 + 4·3 + 3 = 39, all trainable; Adam 2 per parameter
    assert memory["weights"][:2] == (39, 156) and memory["gradients"][:2] == (39, 156)
    assert memory["optimizer_state"][:2] == (78, 312)
    assert memory["saved_activations"][:2] == (40 + 32, 288)
    # gradients in flight, the largest layer's dL/d(output) + dL/d(input): d1 8·4 (x needs none), relu 8·4 + 8·4,
    # d2 8·3 + 8·4 = 56: relu's 64 elements = 256 bytes
    assert memory["peak"][:2] == (39 + 39 + 78 + 72 + 64, 156 + 156 + 312 + 288 + 256)
    assert "relu" in memory["peak"][2]


def test_conv1d_batch_norm_relu_max_pool():
    # x (10, 2) -> Conv1D(4, k 3, valid) -> BatchNormalization -> relu -> MaxPooling1D(2), B = 2.
    report = run([10, 2], [{"type": "Conv1D", "name": "conv", "filters": 4, "kernel_size": 3},
                           {"type": "BatchNormalization", "name": "bn"},
                           {"type": "Activation", "name": "relu", "activation": "relu"},
                           {"type": "MaxPooling1D", "name": "pool", "pool_size": 2}])
    step = training_step(report, batch=2)
    assert per_layer(step) == {
        "conv": 2 * 10 * 2 * 4,  # x.movedim(-1, 1).contiguous(): the model input is channels-last, so a copy, 160
        "bn": 2 * 8 * 4 * 4 + 2 * 4 * 4,  # its input (the conv's output, 8 positions x 4) 256, batch mean and 1/std 32
        "relu": 2 * 8 * 4 * 4,  # its output, 256
        "pool": 2 * 4 * 4 * 8,  # its input is relu's output (counted); the argmax indices, int64 per output: 256
    }
    assert lines(step)["saved_activations"][0] == 40 + 64 + 8 + 64 + 32


def test_dropout_keeps_its_mask_only_when_its_input_needs_a_gradient():
    # x (6,) -> Dense(4) -> Dropout -> Dense(2), B = 3: x 18 floats (72 bytes); the mask 12 (48); d2's input, the
    # dropout's output, 12 (48).
    layers = [{"type": "Dense", "name": "d1", "units": 4}, {"type": "Dropout", "name": "drop", "rate": 0.5},
              {"type": "Dense", "name": "d2", "units": 2}]
    assert per_layer(training_step(run([6], layers), batch=3)) == {"d1": 72, "drop": 48, "d2": 48}
    # first, nothing before it trains: no backward node, no mask; the Dense keeps its input, the dropped-out x (72)
    step = training_step(run([6], layers[1:]), batch=3)
    assert per_layer(step) == {"drop": 0, "d2": 72}


def test_a_frozen_first_layer_keeps_nothing():
    # d1 frozen: nothing before relu needs a gradient, so neither d1 nor relu records a node; d2 keeps its input,
    # relu's output: 8·4 floats = 128 bytes.
    step = training_step(run([5], DENSE_RELU_DENSE), frozen=("d1",), batch=8)
    assert per_layer(step) == {"d1": 0, "relu": 0, "d2": 128}
    assert lines(step)["gradients"][0] == 15  # d2's 4·3 + 3


def test_a_batch_of_one_lets_the_dense_view_what_a_batch_of_more_copies():
    # x (5, 2) -> Conv1D(3, k 1, relu) -> Dense(2): the conv keeps the channels-first copy of x (10·B) and relu's
    # output (15·B). The Dense folds (B, 5, 3) into rows: a copy of the channels-first data for B >= 2 (15·B), a view
    # of relu's output at B = 1 (counted already): Min(B - 1, 1).
    layers = [{"type": "Conv1D", "name": "conv", "filters": 3, "kernel_size": 1, "activation": "relu"},
              {"type": "Dense", "name": "d", "units": 2}]
    step = training_step(run([5, 2], layers))
    assert "Min" in str(saved_activations(step)["d"])
    for batch, dense in ((1, 0), (2, 2 * 15 * 4), (8, 8 * 15 * 4)):
        at = step.report.at(B=batch)
        assert at.value(saved_activations(step)["conv"]) == batch * 25 * 4
        assert at.value(saved_activations(step)["d"]) == dense


def test_mixed_bfloat16_with_adam_is_16_bytes_per_parameter():
    step = training_step(run([5], DENSE_RELU_DENSE), optimizer="adam", batch=8)
    memory = lines(step, "mixed_bfloat16")
    assert list(memory) == ["weights", "gradients", "master_weights", "optimizer_state", "saved_activations", "peak"]
    # 39 parameters: bf16 weights 2, bf16 gradients 2, fp32 master 4, fp32 Adam moments 4 + 4 = 16 each
    per_parameter = sum(memory[k][1] for k in ("weights", "gradients", "master_weights", "optimizer_state"))
    assert per_parameter == 16 * 39 and memory["master_weights"] == (39, 156, "fp32 master copy")
    assert memory["saved_activations"][1] == 2 * 72  # the 72 saved floats at 2 bytes
    # SGD keeps no state: 2 + 2 + 4 = 8 per parameter
    sgd = lines(training_step(run([5], DENSE_RELU_DENSE), optimizer="sgd", batch=8), "mixed_float16")
    assert sum(sgd[k][1] for k in ("weights", "gradients", "master_weights", "optimizer_state")) == 8 * 39


def test_mixed_precision_keeps_moving_statistics_and_normalization_statistics_in_float32():
    # x (3, 2) -> BatchNormalization: gamma, beta trainable (2 + 2), moving mean and variance not (2 + 2).
    step = training_step(run([3, 2], [{"type": "BatchNormalization", "name": "bn"}]), batch=4)
    memory = lines(step, "mixed_float16")
    assert memory["weights"][:2] == (8, 4 * 2 + 4 * 4)
    # bn keeps the model input (4·3·2 = 24 elements, 2 bytes each) and 2 float32 per channel (4 elements, 4 bytes)
    assert memory["saved_activations"][:2] == (28, 24 * 2 + 4 * 4)


def test_a_type_without_a_rule_is_named_not_guessed(monkeypatch):
    monkeypatch.delitem(SAVES, "Dense")
    step = training_step(run([5], DENSE_RELU_DENSE), batch=8)
    assert lines(step)["saved_activations"][2] == "not counted for Dense"
    assert "d1" not in saved_activations(step) and "relu" in saved_activations(step)
    assert "not counted for Dense" in lines(step)["peak"][2]


def test_cli_json_memory_and_the_mixed_policy(tmp_path, capsys):
    spec = tmp_path / "m.yaml"
    spec.write_text("name: m\ninputs: [{name: x, shape: [5]}]\nlayers:\n  - {type: Dense, name: d1, units: 4}\n"
                    "  - {type: Activation, name: relu, activation: relu}\n  - {type: Dense, name: d2, units: 3}\n")
    assert cli.main([str(spec), "--training", "--set", "B=8", "--format", "json", "--dtype", "mixed_bfloat16"]) == 0
    memory = json.loads(capsys.readouterr().out)["training"]["memory"]
    assert memory["dtype"] == "mixed_bfloat16"
    assert memory["saved_activations"]["value"] == 72 and memory["saved_activations"]["bytes"]["value"] == 144
    assert memory["master_weights"]["bytes"] == {"expr": "156", "value": 156}
    assert {"weights", "gradients", "optimizer_state", "peak"} <= set(memory)
    assert cli.main([str(spec), "--training", "--set", "B=8"]) == 0
    table = capsys.readouterr().out
    assert "saved activations: 72 elements = 288 bytes" in table


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16"])
def test_a_mixed_policy_needs_training(tmp_path, capsys, dtype):
    spec = tmp_path / "m.yaml"
    spec.write_text("name: m\ninputs: [{name: x, shape: [5]}]\nlayers:\n  - {type: Dense, name: d1, units: 4}\n")
    assert cli.main([str(spec), "--dtype", dtype]) == 2
    assert "give --training" in capsys.readouterr().err


def test_every_layer_type_has_a_saved_activation_rule():
    from analyzer.layers.registry import LAYERS

    LAYERS.load_all()
    assert set(LAYERS) - set(SAVES) == set()
    for type_name, rule in SAVES.items():
        assert rule.__doc__ and len(rule.__doc__) > 30, f"{type_name}: its saved-activation rule says nothing of why"


def test_multi_head_attention_keeps_the_projections_inputs_the_heads_and_the_softmax():
    # x (3, 4) -> Dense(4) -> MultiHeadAttention(h 2, kd = vd 2) on [d, d], B = 2: Tq = Tv = 3.
    layers = [{"type": "Dense", "name": "d", "units": 4},
              {"type": "MultiHeadAttention", "name": "mha", "num_heads": 2, "key_dim": 2, "inputs": ["d", "d"]}]
    step = training_step(run([3, 4], layers), batch=2)
    # d keeps x, 2·3·4 = 24 floats = 96 bytes. mha: the q, k, v projections' input, d's output (one storage), 24;
    # the heads of q, k, v, B·T·h·kd = 2·3·2·2 = 24 each; the softmax output B·h·Tq·Tv = 2·2·3·3 = 36; the merged
    # heads, the output projection's input, 24: 24 + 3·24 + 36 + 24 = 156 floats = 624 bytes
    assert per_layer(step) == {"d": 96, "mha": 624}
    # frozen: no projection keeps its input; the heads of q and k (each for the other's gradient), the softmax,
    # the heads of v: 24 + 24 + 36 + 24 = 108 floats = 432 bytes
    assert per_layer(training_step(run([3, 4], layers), batch=2, frozen=("mha",)))["mha"] == 432
    # use_gate: + the sigmoid's output and the product, B·Tq·h·vd = 24 each: 156 + 48 = 204 floats = 816 bytes
    gated = [layers[0], {**layers[1], "use_gate": True}]
    assert per_layer(training_step(run([3, 4], gated), batch=2))["mha"] == 816
    dropout = [layers[0], {**layers[1], "dropout": 0.1}]  # not in the torch export: refused, not guessed
    assert lines(training_step(run([3, 4], dropout), batch=2))["saved_activations"][2] == "not counted for MultiHeadAttention"


def test_conv_transpose_keeps_a_channels_first_copy_and_its_activation_sees_the_whole_output():
    # x (4, 2) -> Conv1DTranspose(F 3, k 3, s 2, same), B = 2: full length (4 - 1)·2 + 3 = 9, Keras' 4·2 = 8, the
    # crop (0, 1). The input, channels-last, is copied channels-first: 2·4·2 = 16 floats = 64 bytes.
    def conv(activation):
        return {"type": "Conv1DTranspose", "name": "t", "filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                "activation": activation}

    # relu keeps its output, the cropped 2·8·3 = 48 floats: 64 + 192 = 256 bytes
    assert per_layer(training_step(run([4, 2], [conv("relu")]), batch=2)) == {"t": 256}
    # gelu keeps its input, the narrowed view: its storage is the full output, 2·9·3 = 54 floats: 64 + 216 = 280
    assert per_layer(training_step(run([4, 2], [conv("gelu")]), batch=2)) == {"t": 280}
    # no activation, then a gelu layer: the same 54-float storage, kept by the Activation: 216 bytes
    after = [conv(None), {"type": "Activation", "name": "g", "activation": "gelu"}]
    assert per_layer(training_step(run([4, 2], after), batch=2)) == {"t": 64, "g": 216}


def test_a_symbolically_repeated_block_counts_its_first_copy_and_the_others_reading_the_one_before():
    # x (4,) -> block [Dense(4, relu)] x N, B = 2: copy 1 keeps x (2·4 = 8 floats) and its relu output (2·4 = 8);
    # each later copy keeps its input, the previous relu output (counted there), and its own output (8):
    # 8 + 8 + (N - 1)·8 floats
    text = ("name: r\nsymbols: {N: {default: 3}}\nblocks:\n  b:\n    layers:\n"
            "      - {type: Dense, name: d, units: 4, activation: relu}\n"
            "inputs: [{name: x, shape: [4]}]\nlayers:\n  - {block: b, name: s, repeat: N}\n")
    from analyzer import analyze

    step = training_step(analyze(text), batch=2)
    assert not lines(step)["saved_activations"][2]
    for n in (1, 2, 5):
        assert step.report.at(N=n).value(sum(saved_activations(step).values())) == 4 * (16 + (n - 1) * 8)


def test_a_one_channel_conv2d_answers_in_channels_last_memory():
    # x (6, 2, 1) -> Conv2D(3, 2x1) -> Conv2D(2, 2x1), B = 2. The first conv keeps the model input (it trains):
    # 2·6·2·1 = 24 floats = 96 bytes. Its input has one channel: moved to (B, 1, 6, 2) without a copy, its channel
    # stride is 1, which torch reads as channels-last, so the convolution answers in channels-last memory and the
    # export's movedim back gives a Keras-order tensor (5, 2, 3). The second conv's .contiguous() must copy it to
    # channels-first and keeps the copy: 2·5·2·3 = 60 floats = 240 bytes.
    step = training_step(run([6, 2, 1], [
        {"type": "Conv2D", "name": "c1", "filters": 3, "kernel_size": [2, 1]},
        {"type": "Conv2D", "name": "c2", "filters": 2, "kernel_size": [2, 1]}]), batch=2)
    assert per_layer(step) == {"c1": 96, "c2": 240}
    # two input channels: the first conv answers channels-first, and the second keeps that output as it is (no
    # copy; the same 240 bytes, c1's output storage, first kept by c2); c1 keeps its input, 2·6·2·2 floats.
    step = training_step(run([6, 2, 2], [
        {"type": "Conv2D", "name": "c1", "filters": 3, "kernel_size": [2, 1]},
        {"type": "Conv2D", "name": "c2", "filters": 2, "kernel_size": [2, 1]}]), batch=2)
    assert per_layer(step) == {"c1": 2 * 6 * 2 * 2 * 4, "c2": 240}


def test_a_reshape_that_only_drops_size_one_axes_is_a_view_whatever_the_strides():
    # a conv output (B, 5, 1, 4) lies channels-first: memory order B, channels, 5, 1. Reshape to (5, 4) drops the
    # size-1 axis: a view, its axes in memory B, then the 4 channels (new axis 2), then the 5 positions (axis 1).
    import sympy

    from analyzer.layers import saved
    from analyzer.layers.reshaping import squeeze_layout

    b = sympy.Symbol("B", positive=True, integer=True)
    x = saved.Tensor((b, sympy.Integer(5), sympy.Integer(1), sympy.Integer(4)), saved.channels_first(4), True,
                     saved.World())
    assert squeeze_layout(x, (b, sympy.Integer(5), sympy.Integer(4))) == saved.Layout((0, 2, 1))
    # inserting a size-1 axis: (B, 5, 1, 4) -> (B, 5, 4, 1): the new axis innermost, the others as they lie
    assert squeeze_layout(x, (b, sympy.Integer(5), sympy.Integer(4), sympy.Integer(1))) == saved.Layout((0, 2, 1, 3))
    # merging the 5 positions with the 4 channels is no squeeze: None (the rule then counts a contiguous copy)
    assert squeeze_layout(x, (b, sympy.Integer(20))) is None


def test_saved_activations_of_nested_symbolic_repeats():
    """first (Dense) -> N x [pre (Dense) -> M x [d (Dense), add = x + d] -> res = x + in]: each Dense keeps its
    input (4 floats, B = 1); the adds keep nothing. first 4, pre N·4, d N·M·4: at N = 3, M = 2, 4 + 12 + 24 = 40,
    each copy's input its own storage (the copy before's output); as the unrolled block (N = 3, M = 2 written out)."""
    from tests.test_training_gradient_sums import NESTED as nested

    for outer, inner in (("N", "M"), (3, 2), ("N", 2), (3, "M")):
        step = training_step(analyze(nested.format(outer=outer, inner=inner)), batch=1)
        lines = {line.name: line for line in step_memory(step)}
        assert step.report.value(lines["saved_activations"].elements) == 40, (outer, inner)
        assert not lines["saved_activations"].note
    symbolic = training_step(analyze(nested.format(outer="N", inner="M")), batch=2)
    saved = {line.name: line for line in step_memory(symbolic)}["saved_activations"].elements
    assert symbolic.report.at(N=5, M=4).value(saved) == 2 * (4 + 5 * 4 + 5 * 4 * 4)


@pytest.mark.parametrize("spec", ["specs/scnn.yaml", "specs/transformer_encoder.yaml", "specs/resnet50.yaml",
                                  "tests/crosscheck/specs/zoo_wrappers.yaml"])  # the last: a B = 1 blend (sensitive)
@pytest.mark.parametrize("batch", [1, 3])
def test_the_saved_activations_line_is_the_sum_of_the_layers(spec, batch):
    """step_memory totals a stack's repeated storages by multiplicity (_saved_totals), saved_activations() per layer:
    the two must agree, in float32 and in mixed precision (2-byte activations, float32 statistics)."""
    step = analyze(spec).training(batch=batch)
    for dtype in ("float32", "mixed_bfloat16"):
        line = {m.name: m for m in step_memory(step, dtype)}["saved_activations"]
        layers = saved_activations(step, dtype)
        assert step.report.value(line.bytes) == sum(step.report.value(v) for v in layers.values()) > 0
