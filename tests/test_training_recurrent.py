"""Issue 16, the training step through the recurrent layers and the wrappers (analyzer/layers/recurrent.py,
wrappers.py): backpropagation through time, exact per step, in the nnspec convention, and what
torch.utils.flop_counter.FlopCounterMode counts on the torch export. Tiny sizes; every number worked by hand from
docs/conventions.md#training (the torch ones also measured with FlopCounterMode on the export, as noted)."""

from __future__ import annotations

import pytest

from analyzer import analyze
from analyzer.layers.backward import Needs, NoBackwardRule
from analyzer.layers.recurrent import torch_train_recurrent, train_recurrent
from analyzer.training import training_step, with_batch
from tests.conftest import run

PARTS = ("forward", "grad_input", "grad_weight", "grad_other")


def parts(step, name):
    return {part: step.report.value(getattr(step.layers[name], part)) for part in PARTS}


def inference(report, name):
    return report.value(report.layers[name].counts.flops)  # the forward per sample, cross-checked against Keras


def test_simple_rnn_return_sequences():
    # T = 3 steps, I = 2 features, H = 2 units (G = 1), tanh, B = 2: 6 rows of x_t
    report = run([3, 2], [{"type": "SimpleRNN", "name": "r", "units": 2, "return_sequences": True}])
    step = training_step(report, batch=2, input_grad=True)
    r = parts(step, "r")
    assert r["forward"] == 2 * inference(report, "r")  # B times the inference forward
    assert r["grad_input"] == 6 * 2 * (2 * 2 - 1)  # dx_t = da_t·Wᵀ: 6 rows · I gradients of G·H terms = 36
    assert r["grad_weight"] == (2 + 2) * 2 * (2 * 6 - 1) + 2 * (6 - 1)  # W and U: 8 weights over 6 rows; b = 98
    assert r["grad_other"] == (2 * 2 * 2  # dh_t = output's + step t+1's: B·(T - 1)·H adds = 8
                               + 3 * 2 * 3 * 2  # tanh backward, 3 per element of the B·T·H = 36
                               + 2 * 2 * 2 * (2 * 2 - 1))  # dh_{t-1} = da_t·Uᵀ at steps 2, 3: B·2·H·(2H - 1) = 24


def test_gru_reset_after_counts_the_first_step_apart():
    # Keras 3's default GRU: T = 3, I = 2, H = 2, G = 3 (6 gate units), two bias vectors, last output only, B = 1
    report = run([3, 2], [{"type": "GRU", "name": "g", "units": 2}])
    g = parts(training_step(report, batch=1, input_grad=True), "g")
    assert g["grad_input"] == 3 * 2 * (2 * 6 - 1)  # 3 rows · I gradients of 6 terms = 66
    assert g["grad_weight"] == (2 + 2) * 6 * (2 * 3 - 1) + 2 * 6 * (3 - 1)  # 24 weights over 3 rows, 2·6 biases = 144
    # per unit: steps 2 and 3 take 9 each (d(1 - z), dn; -d(1 - z); g·h, g·z; dz's merge; dr, dhn; h's merge),
    # step 1 takes 6 and dhn = dm·r 1 for dU (h_0 needs no gradient); no output merge (return_sequences false)
    elementwise = 2 * (2 * 9 + 6 + 1)  # = 50
    activations = 3 * 2 * (3 + 3 + 3)  # z, r sigmoid and n tanh: 3 each per unit and step = 54
    recurrent = 2 * 2 * (2 * 6 - 1)  # dh_{t-1} = da_t·Uᵀ at steps 2, 3: H gradients of 6 terms = 44
    assert g["grad_other"] == elementwise + activations + recurrent  # 148
    # frozen (only dL/dx): step 1's dhn is not needed
    frozen = parts(training_step(report, batch=1, input_grad=True, frozen=("g",)), "g")
    assert frozen["grad_weight"] == 0 and frozen["grad_other"] == 148 - 2


def test_gru_reset_before_multiplies_r_by_h_first():
    # Keras 2's GRU (reset_after false): one bias vector; q = r·h, then q·U_h. T = 3, I = 2, H = 2, B = 1
    report = run([3, 2], [{"type": "GRU", "name": "g", "units": 2, "reset_after": False, "return_sequences": True}])
    g = parts(training_step(report, batch=1, input_grad=True), "g")
    assert g["grad_input"] == 66  # as above: 3 · 2 · 11
    assert g["grad_weight"] == 4 * 6 * 5 + 6 * 2  # 120 + one bias vector 12 = 132
    elementwise = 2 * (2 * 10 + 6)  # 10 per unit at steps 2, 3 (h read three times: 2 merges), 6 at step 1 = 52
    merges = 2 * 2  # return_sequences: the output's gradient and step t+1's at steps 1, 2
    activations = 54
    recurrent = 3 * 2 * (2 * 2 - 1) + 2 * 2 * (2 * 4 - 1)  # dq = dq̂·U_hᵀ at all 3 steps 18; d(z, r)·U_zrᵀ at 2: 28
    assert g["grad_other"] == elementwise + merges + activations + recurrent  # 52 + 4 + 54 + 46 = 156


def test_lstm_with_sequences_and_states():
    # T = 3, I = 2, H = 2, G = 4 (8 gate units), one bias vector, return_sequences and return_state, B = 1
    report = run([3, 2], [{"type": "LSTM", "name": "l", "units": 2, "return_sequences": True, "return_state": True}])
    lstm = parts(training_step(report, batch=1, input_grad=True), "l")
    assert lstm["grad_input"] == 3 * 2 * (2 * 8 - 1)  # 90
    assert lstm["grad_weight"] == 4 * 8 * 5 + 8 * 2  # 160 + 16 = 176
    elementwise = 2 * (2 * 6 + 5)  # do, d act(c); df, di, dgg; dc_{t-1} (not at step 1): 6, 5 = 34
    # h: output + step t+1 (2 steps); c: act(c) + step t+1 (2) = 8. The states are not read: the model's output
    # `l` is output 0, so no gradient arrives at h_T or c_T as states.
    merges = 2 * (2 + 2)
    activations = 3 * 2 * (3 * 3 + 2 * 3)  # i, f, o sigmoid; g, c tanh = 90
    recurrent = 2 * 2 * (2 * 8 - 1)  # 60
    assert lstm["grad_other"] == elementwise + merges + activations + recurrent  # 192
    # with both states among the model's outputs, each state's gradient is added into the last step's: H each, 4
    text = """
inputs: [{name: x, shape: [3, 2]}]
layers:
  - {type: LSTM, name: l, units: 2, return_sequences: true, return_state: true}
outputs: [l, "l:1", "l:2"]
"""
    both = parts(training_step(analyze(text), batch=1, input_grad=True), "l")
    assert both["grad_other"] == elementwise + merges + 2 * 2 + activations + recurrent  # 196
    # and with h_T alone: 2
    one = parts(training_step(analyze(text.replace(', "l:2"', "")), batch=1, input_grad=True), "l")
    assert one["grad_other"] == elementwise + merges + 2 + activations + recurrent  # 194


def test_dropout_masks_in_training_mode():
    # SimpleRNN, dropout and recurrent_dropout: one mask of I = 2 on x, one of H = 2 on h; T = 3, B = 1
    spec = {"type": "SimpleRNN", "name": "r", "units": 2, "dropout": 0.5, "recurrent_dropout": 0.5}
    report = run([3, 2], [spec])
    r = parts(training_step(report, batch=1, input_grad=True), "r")
    # the masks scaled once (I + H), then multiplied at each of the 3 steps: (3 + 1)·(2 + 2) = 16 more
    assert r["forward"] == inference(report, "r") + 16
    assert r["grad_input"] == 3 * (2 * 3 + 2)  # dx_t·mask: I more per step = 24
    # no output merges; tanh 18; dh_{t-1}: 2·2·3 = 12 and its mask, H per step at steps 2, 3: 4
    assert r["grad_other"] == 18 + 12 + 4
    # a GRU with recurrent_dropout runs implementation 1: 3 masks each (per gate block)
    report = run([3, 2], [{"type": "GRU", "name": "g", "units": 2, "dropout": 0.5, "recurrent_dropout": 0.5}])
    g = parts(training_step(report, batch=1, input_grad=True), "g")
    assert g["forward"] == inference(report, "g") + (3 + 1) * (3 * 2 + 3 * 2)  # 48 more
    assert g["grad_input"] == 66 + 3 * 3 * 2 and g["grad_other"] == 148 + 2 * 3 * 2  # dx: 3·I per step; dh: 3·H


def test_bidirectional_concat_sum_and_mul():
    # a SimpleRNN (T = 3, I = 2, H = 2, return_sequences) each way, B = 1. One copy: dx 3·2·3 = 18, dW, dU, db
    # 4·2·5 + 2·2 = 44, the rest: output merges 2·2 = 4, tanh 3·6 = 18, dh 2·2·3 = 12: 34
    def bidirectional(merge_mode):
        layer = {"type": "Bidirectional", "name": "bi", "merge_mode": merge_mode,
                 "layer": {"type": "SimpleRNN", "units": 2, "return_sequences": True}}
        return parts(training_step(run([3, 2], [layer]), batch=1, input_grad=True), "bi")

    concat = bidirectional("concat")
    assert concat["grad_input"] == 2 * 18 + 3 * 2  # both copies read x: their two dL/dx added, B·T·I = 6
    assert concat["grad_weight"] == 2 * 44 and concat["grad_other"] == 2 * 34  # concat's backward: 0
    total = bidirectional("sum")
    assert total["forward"] == concat["forward"] + 3 * 2  # the sum's adds, one per element of the (3, 2) output
    assert {k: total[k] for k in PARTS[1:]} == {k: concat[k] for k in PARTS[1:]}  # its gradient goes to both as is
    mul = bidirectional("mul")
    assert mul["grad_other"] == 2 * 34 + 2 * 3 * 2  # g·y_rev and g·y per element of one copy's (3, 2) output
    assert bidirectional("ave")["grad_other"] == 2 * 34 + 3 * 2  # g/2 once


def test_time_distributed_dense_is_dense_over_b_times_t_rows():
    # TimeDistributed(Dense(4, relu)) over T = 3 slices of 5, B = 2: R = B·T = 6 rows, n = 5, u = 4
    report = run([3, 5], [{"type": "TimeDistributed", "name": "td",
                           "layer": {"type": "Dense", "units": 4, "activation": "relu"}}])
    td = parts(training_step(report, batch=2, input_grad=True), "td")
    assert td["forward"] == 2 * inference(report, "td")
    assert td["grad_input"] == 6 * 5 * (2 * 4 - 1)  # 210
    assert td["grad_weight"] == 5 * 4 * (2 * 6 - 1) + 4 * (6 - 1)  # 220 + 20
    assert td["grad_other"] == 2 * 6 * 4  # relu: 2 per output


def test_the_founding_model_pet_cgdnn_trains():
    # gru_1: GRU(128, reset_after false) over T = L - 11 = 117 steps of I = 25, B = 1; G·H = 384, one bias vector
    step = training_step(analyze("specs/pet_cgdnn.yaml"), batch=1)
    gru = parts(step, "gru_1")
    assert gru["grad_input"] == 117 * 25 * 767  # conv1_2 before it trains
    assert gru["grad_weight"] == (25 + 128) * 384 * (2 * 117 - 1) + 384 * 116
    assert gru["grad_other"] == (128 * (116 * 10 + 6)  # elementwise
                                 + 117 * 128 * 9  # z, r sigmoid, n tanh
                                 + 117 * 128 * 255 + 116 * 128 * 511)  # dq·U_hᵀ every step, d(z, r)·U_zrᵀ after
    assert step.layers["gru_1"].optimizer != 0


def test_an_initial_states_gradient_follows_each_inputs_need():
    # the decoder reads a model input (no gradient) and the encoder's states (which train)
    report = run([3, 2], [
        {"type": "LSTM", "name": "encoder", "units": 2, "return_state": True},
        {"type": "LSTM", "name": "decoder", "units": 2, "inputs": ["x0", "encoder:state_h", "encoder:state_c"]},
    ])
    # the training step gives each input's need: the decoder's dL/dh_0 and dL/dc_0, no dL/dx (32 below)
    assert training_step(report, batch=1).report.value(training_step(report, batch=1).layers["decoder"].grad_input) == 32
    with pytest.raises(NoBackwardRule, match="initial state"):  # a Needs without the per-input flags
        train_recurrent(with_batch(report, 1)[0].layers["decoder"], with_batch(report, 1)[1], Needs(True, True))
    report, b = with_batch(report, 1)
    row = report.layers["decoder"]
    needs = Needs(input=True, weights=True, inputs=(False, True, True))
    decoder = train_recurrent(row, b, needs)
    # no dL/dx; dL/dh_0 = da_1·Uᵀ, H gradients of 8 terms: 2·15 = 30; dL/dc_0 = dc_1·f_1: H = 2
    assert report.value(decoder.grad_input) == 30 + 2
    # FlopCounterMode: the recurrent kernel's dL/dh mm at step 1 too, 2·B·H·4H = 32 (measured on the export)
    assert report.value(torch_train_recurrent(row, b, needs).grad_input) == 2 * 2 * 8
    assert train_recurrent(row, b, Needs(input=False, weights=True, inputs=(False, False, False))).grad_input == 0


# FlopCounterMode on nnspec's torch export, the model input not requiring a gradient, T = 5, I = 3, H = 4: the
# forward 2·T·G·H·(I + H), the input kernel's dL/dW 2·T·I·G·H, the recurrent kernel's dL/dU 2·T·H·G·H at every
# step and its dL/dh 2·(T - 1)·H·G·H (h_0 needs none); measured with FlopCounterMode: the totals below
@pytest.mark.parametrize(("layer", "total"), [
    ({"type": "SimpleRNN"}, 280 + 120 + 160 + 128),  # G = 1: 688
    ({"type": "GRU"}, 840 + 360 + 480 + 384),  # nn.GRU, G = 3: 2064
    # KerasGRU: recurrent_zr's dL/dh at 4 steps 2·4·4·8 = 256, recurrent_h's on r·h at all 5, 2·5·4·4 = 160
    ({"type": "GRU", "reset_after": False}, 840 + 360 + 320 + 160 + 256 + 160),  # 2096
    ({"type": "LSTM", "return_sequences": True}, 1120 + 480 + 640 + 512),  # G = 4: 2752
])
def test_torch_convention_counts_flop_counter_modes_mm(layer, total):
    report = run([5, 3], [{"name": "L", "units": 4, **layer}])
    step = training_step(report, convention="torch", batch=1)
    assert step.report.value(step.total("flops")) == total


def test_torch_convention_with_the_layer_frozen_keeps_dl_dx_and_dl_dh():
    # Dense(3) before the GRU (its forward 2·5·3·3 = 90 and dL/dW 90), the GRU frozen: its forward 840, the input
    # kernel's dL/dx 360 and the recurrent dL/dh 384; measured with FlopCounterMode: 1764
    report = run([5, 3], [{"type": "Dense", "name": "pre", "units": 3}, {"type": "GRU", "name": "L", "units": 4}])
    step = training_step(report, convention="torch", batch=1, frozen=("L",))
    assert step.report.value(step.total("flops")) == 90 + 90 + 840 + 360 + 384


def test_bidirectional_counts_the_merge_of_each_read_state_only():
    # Bidirectional(GRU(2, return_state)), concat: outputs [seq, h_forward, h_backward]. Each state a gradient
    # arrives at adds H = 2 per sample into its copy's last step; B = 3. None read: 0; both: 2·3·2 = 12; the backward
    # copy's alone: 6.
    text = """
inputs: [{name: x, shape: [4, 2]}]
layers:
  - {type: Bidirectional, name: b, layer: {type: GRU, units: 2, return_state: true}}
outputs: OUTPUTS
"""
    def other(outputs):
        step = training_step(analyze(text.replace("OUTPUTS", outputs)), batch=3, input_grad=True)
        return step.report.value(step.layers["b"].grad_other)

    assert other('[b, "b:1", "b:2"]') - other("[b]") == 2 * 3 * 2
    assert other('[b, "b:2"]') - other("[b]") == 3 * 2
