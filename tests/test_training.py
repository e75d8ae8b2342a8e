"""Issue 16, the training step: forward in training mode, backward split into grad input / grad weight / other,
the optimizer, and the step's memory, per layer, in B. Numbers worked by hand from the rules of
docs/conventions.md#training."""

from __future__ import annotations

import json

import pytest
import sympy

from analyzer import analyze, cli
from analyzer.errors import NNSpecError, UsageError
from analyzer.layers.activations import PER_ELEMENT_FLOPS
from analyzer.layers.backward import NoBackwardRule
from analyzer.layers.registry import TRAINING
from analyzer.training import training_step
from tests.conftest import run


def step_values(step, name):
    layer = step.layers[name]
    return {part: step.report.value(getattr(layer, part))
            for part in ("forward", "grad_input", "grad_weight", "grad_other", "optimizer")}


def test_dense_after_a_trainable_layer():
    # x (5,) -> Dense(4, relu) -> Dense(3): the second Dense, B = 8. n = 4, u = 3, R = 8 rows.
    report = run([5], [{"type": "Dense", "name": "d1", "units": 4, "activation": "relu"},
                       {"type": "Dense", "name": "d2", "units": 3}])
    step = training_step(report, optimizer="sgd", batch=8)
    d2 = step_values(step, "d2")
    assert d2["forward"] == 8 * (3 * (2 * 4 - 1) + 3)  # B x (dot 21 + bias 3) = 192
    assert d2["grad_input"] == 8 * 4 * (2 * 3 - 1)  # R·n gradients of u terms = 160
    assert d2["grad_weight"] == 4 * 3 * (2 * 8 - 1) + 3 * (8 - 1)  # n·u of R terms, u sums of R = 180 + 21
    assert d2["grad_other"] == 0 and d2["optimizer"] == 2 * 15  # SGD: 2 per parameter
    d1 = step_values(step, "d1")
    # the first layer: no input gradient (the model input does not need one), relu's backward 2 per output
    assert d1["grad_input"] == 0 and d1["grad_other"] == 8 * 4 * 2
    assert d1["grad_weight"] == 5 * 4 * 15 + 4 * 7


def test_input_grad_adds_the_first_layers_input_gradient():
    report = run([5], [{"type": "Dense", "name": "d1", "units": 4}])
    step = training_step(report, batch=2, input_grad=True)
    assert step_values(step, "d1")["grad_input"] == 2 * 5 * (2 * 4 - 1)


def test_layers_before_the_first_trainable_layer_need_no_backward():
    report = run([6], [{"type": "Activation", "name": "act", "activation": "tanh"},
                       {"type": "Dense", "name": "d", "units": 2}])
    step = training_step(report, batch=4)
    assert step_values(step, "act") == {"forward": 4 * 6 * PER_ELEMENT_FLOPS["tanh"], "grad_input": 0,
                                        "grad_weight": 0, "grad_other": 0, "optimizer": 0}  # nothing before it trains
    assert "nothing before it trains" in step.layers["act"].note
    # tanh after a trainable layer: g·(1 - y²), 3 per element
    report = run([6], [{"type": "Dense", "name": "d", "units": 2}, {"type": "Activation", "name": "act", "activation": "tanh"}])
    assert step_values(training_step(report, batch=4), "act")["grad_input"] == 4 * 2 * 3


def test_frozen_layer_has_no_weight_gradient_and_no_optimizer_state():
    report = run([5], [{"type": "Dense", "name": "d1", "units": 4}, {"type": "Dense", "name": "d2", "units": 3}])
    step = training_step(report, optimizer="adam", frozen=("d1",), batch=8)
    d1, d2 = step_values(step, "d1"), step_values(step, "d2")
    assert d1["grad_weight"] == 0 and d1["optimizer"] == 0 and "frozen" in step.layers["d1"].note
    assert d1["grad_input"] == 0  # nothing before d1 trains now
    assert d2["grad_input"] == 0  # ...nor before d2: the model input needs no gradient and d1 is frozen
    assert d2["optimizer"] == 13 * 15  # Adam: 13 per parameter
    memory = {k: step.report.value(v) for k, v in step.memory().items()}  # and saved activations, peak: B's
    assert {k: memory[k] for k in ("weights", "gradients", "optimizer_state")} == {"weights": 24 + 15, "gradients": 15,
                                                                                  "optimizer_state": 30}


def test_a_frozen_middle_layer_still_passes_the_gradient_back():
    report = run([5], [{"type": "Dense", "name": "d1", "units": 4}, {"type": "Dense", "name": "d2", "units": 3},
                       {"type": "Dense", "name": "d3", "units": 2}])
    step = training_step(report, frozen=("d2",), batch=1)
    assert step_values(step, "d2")["grad_input"] == 1 * 4 * (2 * 3 - 1)  # d1 trains: dL/dx of d2 is needed
    assert step_values(step, "d2")["grad_weight"] == 0


def test_conv1d_same_padding_and_batch_normalization():
    # x (10, 2) -> Conv1D(3, k 4, same) -> BatchNormalization, B = 2: R = 20 positions, MACs = 20·3·2·4 = 480
    report = run([10, 2], [{"type": "Dense", "name": "d", "units": 2},
                           {"type": "Conv1D", "name": "c", "filters": 3, "kernel_size": 4, "padding": "same"},
                           {"type": "BatchNormalization", "name": "bn"}])
    step = training_step(report, batch=2)
    c = step_values(step, "c")
    assert c["grad_input"] == 2 * 480  # the scatter: a multiply and an add per MAC
    assert c["grad_weight"] == 3 * 2 * 4 * (2 * 20 - 1) + 3 * (20 - 1)  # 24 weights over R, 3 biases
    bn = step_values(step, "bn")
    n, channels = 2 * 10 * 3, 3
    assert bn["forward"] == 5 * n + 2 * channels + 2 * n + 6 * channels  # batch statistics, gamma, beta, moving stats
    assert bn["grad_input"] == 8 * n and bn["grad_weight"] == (2 * n - channels) + (n - channels)


def test_separable_conv_counts_the_intermediate_gradient():
    # (8, 2) -> Dense -> SeparableConv1D(4, k 3, multiplier 2, valid): positions 6, B = 1;
    # depthwise MACs 6·4·3 = 72, pointwise 6·4·4 = 96
    report = run([8, 2], [{"type": "Dense", "name": "d", "units": 2},
                          {"type": "SeparableConv1D", "name": "s", "filters": 4, "kernel_size": 3, "depth_multiplier": 2}])
    s = step_values(training_step(report, batch=1), "s")
    assert s["grad_input"] == 2 * 72 and s["grad_other"] == 2 * 96
    assert s["grad_weight"] == 4 * 4 * (2 * 6 - 1) + 4 * (6 - 1) + 4 * 3 * (2 * 6 - 1)


def test_dropout_and_softmax():
    report = run([6], [{"type": "Dense", "name": "d", "units": 5}, {"type": "Dropout", "name": "drop", "rate": 0.5},
                       {"type": "Activation", "name": "p", "activation": "softmax"}])
    step = training_step(report, batch=3)
    assert step_values(step, "drop")["forward"] == 2 * 15 and step_values(step, "drop")["grad_input"] == 15
    assert step_values(step, "p")["grad_input"] == 3 * (4 * 5 - 1)  # per row of 5: 4n - 1


def test_embedding_has_no_input_gradient_and_scatters_its_weights():
    report = run([7], [{"type": "Embedding", "name": "e", "input_dim": 50, "output_dim": 4}])
    step = training_step(report, batch=2, input_grad=True)
    assert step_values(step, "e")["grad_weight"] == 2 * 7 * 4 and step_values(step, "e")["grad_input"] == 0
    assert "integer ids" in step.layers["e"].note


def test_the_founding_model_scnn_at_b_256():
    # by hand from the rules: conv1d_1 grad weight 128·2·16·(2·32768 - 1) + 128·32767; Dense 8192·11·511 + 11·255
    report = analyze("specs/scnn.yaml")
    step = training_step(report, optimizer="adam", batch=256)
    assert step_values(step, "conv1d_1")["grad_weight"] == 268_431_360 + 4_194_176
    assert step_values(step, "dense_1")["grad_weight"] == 46_047_232 + 2_805
    assert step.report.value(step.total("optimizer")) == 13 * 104_011  # Adam on the trainable params
    total = step.total("flops")
    # the whole step by hand: R = 256·128 positions, N1 = 256·128·128 and N2 = 256·128·64 elements after each block
    r, n1, n2 = 256 * 128, 256 * 128 * 128, 256 * 128 * 64
    inference = report.value(report.total.flops)  # per sample, cross-checked against Keras elsewhere
    forward = (256 * inference - 256 * (2 * 128 * 128 + 2 * 128 * 64)  # inference BatchNorm folded: 2 per element
               + (7 * n1 + 8 * 128) + (7 * n2 + 8 * 64)  # batch statistics, gamma, beta, moving stats
               + 2 * n1 + 2 * n2)  # the dropout masks
    backward = (
        (128 * 2 * 16 * (2 * r - 1) + 128 * (r - 1)) + 2 * r * 128  # conv1d_1: weights, bias; relu
        + (8 * n1 + 3 * n1 - 2 * 128) + n1  # batch_normalization_1, dropout_1
        + 2 * 256 * (128 * 128 * 8)  # separable: dL/dx through the depthwise MACs
        + (64 * 128 * (2 * r - 1) + 64 * (r - 1) + 128 * 8 * (2 * r - 1))  # pointwise, bias, depthwise weights
        + 2 * r * 64 + 2 * 256 * (128 * 128 * 64)  # relu; the intermediate's gradient
        + (8 * n2 + 3 * n2 - 2 * 64) + n2  # batch_normalization_2, dropout_2
        + 256 * 8192 * 21 + (8192 * 11 * 511 + 11 * 255)  # dense_1
        + 256 * (4 * 11 - 1))  # softmax
    assert step.report.value(total) == forward + backward + 13 * 104_011
    b = step.report.symbol("B").symbol
    assert sympy.Poly(total, b).degree() == 1  # the step is linear in B (the optimizer is its constant part)


def test_cli_training_table_and_json():
    out = cli.run(cli.build_parser().parse_args(["specs/scnn.yaml", "--training", "--set", "B=256"]))
    scnn = training_step(analyze("specs/scnn.yaml"), batch=256)
    assert "Training step: optimizer adam, B=256" in out and f"= {scnn.report.value(scnn.total('flops')):,}" in out
    data = json.loads(cli.run(cli.build_parser().parse_args(
        ["specs/scnn.yaml", "--training", "--set", "B=4", "--optimizer", "sgd", "--format", "json"])))
    training = data["training"]
    assert training["optimizer"] == "sgd" and training["total"]["optimizer_flops"]["value"] == 2 * 104_011
    assert training["memory"]["optimizer_state"]["value"] == 0
    assert training["memory"]["gradients"]["bytes"]["value"] == 4 * 104_011
    assert [layer["name"] for layer in training["layers"]][:3] == ["input_1", "reshape_1", "conv1d_1"]


def test_an_unknown_optimizer_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["specs/scnn.yaml", "--training", "--optimizer", "adamx"])
    assert exit_info.value.code == 2 and "invalid choice: 'adamx'" in capsys.readouterr().err


def test_torch_convention_reproduces_flop_counter_modes_depthwise_weight_gradient():
    # SCNN's separable_conv1d_1 (C = 128 channels, multiplier 1, k = 8, P = L = 128), B = 1: torch's
    # conv_backward_flop counts the depthwise weight gradient with the whole C, 2·P·k·C·(C·M) = 33,554,432,
    # where it has P·k·C·M = 131,072 MACs; plus the pointwise one, 2·P·1·128·64 = 2,097,152
    report = analyze("specs/scnn.yaml")
    step = training_step(report, convention="torch", batch=1)
    s = step_values(step, "separable_conv1d_1")
    assert s["grad_weight"] == 2 * 128 * 8 * 128 * 128 + 2 * 128 * 128 * 64
    assert s["optimizer"] == 0 and s["forward"] == 2 * (128 * 8 * 128 + 128 * 128 * 64)  # FlopCounterMode's forward
    nnspec = step_values(training_step(report, batch=1), "separable_conv1d_1")
    assert nnspec["grad_weight"] == 128 * 8 * (2 * 128 - 1) + 64 * 128 * (2 * 128 - 1) + 64 * 127


def test_training_with_another_convention_is_refused(capsys):
    assert cli.main(["specs/scnn.yaml", "--training", "--convention", "thop"]) == 2
    assert "--convention nnspec or torch" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--training", "--frozen", "conv9"], "--frozen conv9: no layer or block of that name"),
    (["--training", "--set", "B=0"], "B=0 is below the minimum 1"),
    (["--frozen", "conv1d_1"], "go with --training"),
    (["--training", "--depth", "1"], "--training does not combine with --depth"),
])
def test_bad_training_options_exit_2(capsys, argv, message):
    assert cli.main(["specs/scnn.yaml", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_layer_type_without_a_training_rule_is_refused_not_guessed(monkeypatch):
    report = run([5, 3], [{"type": "GRU", "name": "g", "units": 2}])
    monkeypatch.delitem(TRAINING, "GRU")  # GRU has a rule now (tests/test_training_recurrent.py): take it away
    with pytest.raises(NoBackwardRule, match="no training rule for layer type 'GRU' yet"):
        training_step(report)
    assert issubclass(NoBackwardRule, UsageError) and issubclass(NoBackwardRule, NNSpecError)


def test_gelu_backward_is_torchs_eleven_operations():
    # cdf = 0.5*(1 + erf(x/sqrt 2)): 4; pdf = exp(-0.5*x*x)/sqrt(2 pi): 4; g*(cdf + x*pdf): 3
    report = run([5], [{"type": "Dense", "name": "d0", "units": 3},
                       {"type": "Dense", "name": "d", "units": 2, "activation": "gelu"}])
    assert step_values(training_step(report, batch=3), "d")["grad_other"] == 3 * 2 * 11


def test_gelu_tanh_backward_is_torchs_twenty_two_operations():
    # torch's tanh gelu_backward: x², x³, κ·x³, x + ., β·., tanh (5), 0.5·x, 1 + t, 0.5·(1 + t), t², 1 - t², 3κ·x²,
    # 1 + ., β·., 0.5x·(1 - t²), ·inner', + 0.5(1 + t), g·. = 17 + 5 = 22 per element
    report = run([5], [{"type": "Dense", "name": "d0", "units": 3},
                       {"type": "Dense", "name": "d", "units": 2, "activation": "gelu_tanh"}])
    assert step_values(training_step(report, batch=3), "d")["grad_other"] == 3 * 2 * 22


def test_a_broadcast_multiply_sums_the_small_inputs_gradient():
    # PET-CGDNN's (L, 1) * (1,), L = 6, B = 2: g·b and g·a 2N (N = 12), then (1,)'s gradient summed over its
    # 6 copies per sample: N - B·1 = 10 adds
    report = run([[6, 1], [1]], [{"type": "Dense", "name": "d", "units": 1, "inputs": ["x0"]},
                                 {"type": "Multiply", "name": "m", "inputs": ["d", "x1"]}])
    assert step_values(training_step(report, batch=2), "m")["grad_input"] == 2 * 12 + (12 - 2)


def test_maximum_has_no_training_rule_yet():
    report = run([[4], [4]], [{"type": "Dense", "name": "d", "units": 4, "inputs": ["x0"]},
                              {"type": "Maximum", "name": "m", "inputs": ["d", "x1"]}])
    with pytest.raises(NoBackwardRule, match="no backward rule for Maximum of 2 inputs yet"):
        training_step(report)


def test_a_block_repeated_n_times_counts_each_copys_norm_weights_once_per_copy():
    # N copies of [LayerNormalization over d = 4]; S = 3 rows per sample, B = 2: per copy the normalized
    # elements are 2·3·4 = 24; d(gamma) = sum g·h: 2·24 - 4 = 44, d(beta) = sum g: 24 - 4 = 20 -> 64 per copy, 3 copies 192.
    text = """
symbols: {N: 3}
blocks:
  norm:
    layers:
      - {type: Dense, name: proj, units: 4}
      - {type: LayerNormalization, name: ln}
inputs: [{name: x, shape: [3, 4]}]
layers:
  - {block: norm, name: stack, repeat: N}
"""
    report = analyze(text)
    step = training_step(report, batch=2)
    assert step.report.value(step.layers["stack.each.ln"].grad_weight) == 3 * (44 + 20)
    assert step.report.at(N=1).value(step.layers["stack.each.ln"].grad_weight) == 64


def test_softmax_over_another_axis_than_the_last():
    # x (3, 2) -> Dense(4) -> Softmax(axis 1): over the 3 positions, in 4 rows (one per feature); B = 2.
    # per row of n = 3: 4n - 1 = 11; 2·4·11 = 88. Over axes [1, 2] jointly: one row of 12 per sample, 2·47 = 94.
    layers = [{"type": "Dense", "name": "d", "units": 4}, {"type": "Softmax", "name": "s", "axis": 1}]
    step = training_step(run([3, 2], layers), batch=2)
    assert step.report.value(step.layers["s"].grad_input) == 2 * 4 * 11
    layers[1]["axis"] = [1, 2]
    step = training_step(run([3, 2], layers), batch=2)
    assert step.report.value(step.layers["s"].grad_input) == 2 * (4 * 12 - 1)
