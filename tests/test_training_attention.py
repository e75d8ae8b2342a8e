"""Issue 16, the training step through MultiHeadAttention and the transposed convolutions: nnspec's exact backward
and what FlopCounterMode counts (--convention torch), worked by hand from the rules of docs/conventions.md#training.
A dot product of n terms is 2n - 1 FLOPs, a bias gradient over R rows R - 1 adds."""

from __future__ import annotations

from analyzer import analyze
from analyzer.training import training_step
from tests.conftest import run


def step_values(step, name):
    layer = step.layers[name]
    return {part: step.report.value(getattr(layer, part))
            for part in ("forward", "grad_input", "grad_weight", "grad_other")}


def self_attention(**options):
    # x (3, 4) -> Dense(4) -> MultiHeadAttention(h 2, kd = vd 2) on [d, d]: Tq = Tv = 3, dq = dk = dv = do = 4
    return run([3, 4], [{"type": "Dense", "name": "d", "units": 4},
                        {"type": "MultiHeadAttention", "name": "mha", "num_heads": 2, "key_dim": 2, "inputs": ["d", "d"],
                         **options}])


def test_self_attention_with_bias():
    # B = 2: Rq = Rv = 6 rows, A = B·h·Qa·Va = 2·2·3·3 = 36 attention weights
    mha = step_values(training_step(self_attention(), batch=2), "mha")
    # per sample: q, k, v, output projections 12 outputs of 4 terms, 12·7 + 12 bias = 96 each; scores 18 of 2 terms
    # 18·3 = 54; softmax 6 rows of 3, 6·(3·3 - 1) = 48; weighted sum 12 of 3 terms, 12·5 = 60; the scale 12
    assert mha["forward"] == 2 * (4 * 96 + 54 + 48 + 60 + 12)
    # q, k, v, o: 16 weights of R = 6 terms, 16·11 = 176, and 4 biases, 4·5 = 20
    assert mha["grad_weight"] == 4 * (176 + 20)
    # q, k, v: 24 input gradients of h·kd = 4 terms, 24·7 = 168 each; x is read by three projections: 2 adds per
    # element, 2·(B·12) = 48
    assert mha["grad_input"] == 3 * 168 + 48
    # through the output projection 24 of do = 4 terms, 24·7 = 168; da 36 of vd = 2, 36·3 = 108; dv B·h·Va·vd = 24
    # of Qa = 3, 24·5 = 120; softmax 12 rows of 3, 12·(4·3 - 1) = 132; dq 24 of Va = 3, 120; dk 24 of Qa = 3, 120;
    # the scale 24
    assert mha["grad_other"] == 168 + 108 + 120 + 132 + 120 + 120 + 24


def test_a_frozen_attention_layer_still_passes_the_gradient_back():
    # frozen: no weight gradient, but dL/dx for d (it trains) and every gradient inside the heads
    mha = step_values(training_step(self_attention(), batch=2, frozen=("mha",)), "mha")
    assert mha["grad_weight"] == 0 and mha["grad_input"] == 3 * 168 + 48 and mha["grad_other"] == 792


def cross_attention(inputs):
    # query x0 (2, 3), value x1 (4, 5), key x2 (4, 6); h 1, kd 2, vd 3, output_shape [4], no bias
    return run([[2, 3], [4, 5], [4, 6]], [
        {"type": "MultiHeadAttention", "name": "mha", "num_heads": 1, "key_dim": 2, "value_dim": 3,
         "output_shape": [4], "use_bias": False, "inputs": inputs}])


def test_cross_attention_without_bias():
    # B = 1, --input-grad: Rq = 2, Rv = 4, A = 1·2·4 = 8
    mha = step_values(training_step(cross_attention(["x0", "x1", "x2"]), batch=1, input_grad=True), "mha")
    # q 3·2 = 6 weights of 2 rows, 6·3 = 18; k 6·2 = 12 of 4, 12·7 = 84; v 5·3 = 15 of 4, 105; o 3·4 = 12 of 2, 36
    assert mha["grad_weight"] == 18 + 84 + 105 + 36
    # dL/dquery 2·3 = 6 of kd = 2 terms, 6·3 = 18; dL/dkey 4·6 = 24 of 2, 72; dL/dvalue 4·5 = 20 of vd = 3, 100
    assert mha["grad_input"] == 18 + 72 + 100
    # output projection 2·3 = 6 of do = 4, 6·7 = 42; da 8 of 3, 40; dv 4·3 = 12 of Qa = 2, 36; softmax 2 rows of 4,
    # 2·15 = 30; dq 2·2 = 4 of Va = 4, 28; dk 4·2 = 8 of 2, 24; the scale 2·2 = 4
    assert mha["grad_other"] == 42 + 40 + 36 + 30 + 28 + 24 + 4


def test_key_defaulting_to_value_sums_the_values_two_gradients():
    # [x0, x1]: the key is x1 (4, 5) too; dL/dkey 4·5 = 20 of 2 terms, 60; x1's two gradients summed, 20 adds
    report = run([[2, 3], [4, 5]], [{"type": "MultiHeadAttention", "name": "mha", "num_heads": 1, "key_dim": 2,
                                     "value_dim": 3, "output_shape": [4], "use_bias": False, "inputs": ["x0", "x1"]}])
    mha = step_values(training_step(report, batch=1, input_grad=True), "mha")
    assert mha["grad_input"] == 18 + 60 + 100 + 20


def test_cross_attention_torch_convention():
    # FlopCounterMode, 2 per MAC: linears q 2·3·2 = 12, k 4·6·2 = 48, v 4·5·3 = 60, o 2·3·4 = 24 MACs; the scores
    # 8·2 = 16, the weighted sum 8·3 = 24. Backward: dL/dx of q, k, v 2·120; dL/dW of all four 2·144; the output
    # projection's dL/dx 2·24 and both operands of each bmm 2·2·(16 + 24)
    mha = step_values(training_step(cross_attention(["x0", "x1", "x2"]), batch=1, input_grad=True,
                                    convention="torch"), "mha")
    assert mha == {"forward": 2 * (144 + 40), "grad_input": 240, "grad_weight": 288, "grad_other": 48 + 160}


def test_gate_and_dropout():
    # x (2, 2) -> Dense(2) -> MHA(h 1, kd = vd 1, use_gate, dropout 0.5) on [d, d], B = 1: Rq = Rv = 2, A = 4
    report = run([2, 2], [{"type": "Dense", "name": "d", "units": 2},
                          {"type": "MultiHeadAttention", "name": "mha", "num_heads": 1, "key_dim": 1, "use_gate": True,
                           "dropout": 0.5, "inputs": ["d", "d"]}])
    mha = step_values(training_step(report, batch=1), "mha")
    # q, k, v, gate projections 2 outputs of 2 terms + bias, 8 each; scores 4 of 1, 4; softmax 2 rows of 2, 2·5 = 10;
    # weighted sum 2 of 2, 6; output 4 of 1 + bias, 8; the scale 2; the gate's sigmoid 4·2, times it 2; the dropout
    # mask scaled and applied, 2 per attention weight, 8
    assert mha["forward"] == 4 * 8 + 4 + 10 + 6 + 8 + 2 + 8 + 2 + 8
    # q, k, v, gate 4 input gradients of 1 term, 4 each; x read by four projections, 3 adds per element, 3·4
    assert mha["grad_input"] == 4 * 4 + 12
    # q, k, v, gate: 2 weights of 2 rows, 2·3, and a bias, 1; o: 2 weights of 2 rows, 6, and 2 biases, 2
    assert mha["grad_weight"] == 4 * (6 + 1) + 6 + 2
    # output projection 2 of 2 terms, 6; g·gate and g·o 4, the sigmoid's backward 3·2; da 4 of 1; dv 2 of Qa = 2, 6;
    # the dropout's g·mask 4; softmax 2 rows of 2, 2·7 = 14; dq 2 of 2, 6; dk 2 of 2, 6; the scale 2
    assert mha["grad_other"] == 6 + 4 + 6 + 4 + 6 + 4 + 14 + 6 + 6 + 2


def test_the_transformer_encoder_trains():
    # BERT-base sizes (d_model 768, S 128, N 12), B = 1: the attention's four 768 x 768 projections over 128 rows,
    # 4·768²·255 weights and 4·768·127 biases, per block
    step = training_step(analyze("specs/transformer_encoder.yaml"), batch=1)
    assert step_values(step, "encoder.each.attention")["grad_weight"] == 12 * (4 * 768 * 768 * 255 + 4 * 768 * 127)


def test_conv1d_transpose_stride_2():
    # x (3, 2) -> Dense(2) -> Conv1DTranspose(3, k 3, s 2, valid, relu): P_in = 3, C = 2, F = 3, output
    # (3 - 1)·2 + 3 = 7; B = 2, R = 6 input rows
    report = run([3, 2], [{"type": "Dense", "name": "d", "units": 2},
                          {"type": "Conv1DTranspose", "name": "t", "filters": 3, "kernel_size": 3, "strides": 2,
                           "activation": "relu"}])
    t = step_values(training_step(report, batch=2), "t")
    assert t["grad_input"] == 12 * (2 * 9 - 1)  # R·C = 12 gradients of k·F = 9 terms
    assert t["grad_weight"] == 18 * (2 * 6 - 1) + 3 * (2 * 7 - 1)  # k·F·C = 18 weights of R = 6; 3 biases of B·7
    assert t["grad_other"] == 2 * 7 * 3 * 2  # relu, 2 per output
    torch = step_values(training_step(report, batch=2, convention="torch"), "t")
    # conv_backward_flop: 2·B·MACs each, MACs = 3·3·3·2 = 54 per sample
    assert torch["grad_input"] == 2 * 2 * 54 and torch["grad_weight"] == 2 * 2 * 54 and torch["grad_other"] == 0


def test_conv2d_transpose_stride_2_same_cropped():
    # x (2, 2, 2) -> Dense(2) -> Conv2DTranspose(1, k 3, s 2, same): output 4 x 4, the full 5 x 5 cropped;
    # P_in = 4, C = 2, F = 1, k = 9; B = 1
    report = run([2, 2, 2], [{"type": "Dense", "name": "d", "units": 2},
                             {"type": "Conv2DTranspose", "name": "t", "filters": 1, "kernel_size": 3, "strides": 2,
                              "padding": "same"}])
    t = step_values(training_step(report, batch=1), "t")
    assert t["grad_input"] == 8 * (2 * 9 - 1)  # 4·2 gradients of 9·1 terms
    assert t["grad_weight"] == 18 * (2 * 4 - 1) + (16 - 1)  # 9·1·2 weights of 4 rows; the bias over the 16 kept
    assert t["grad_other"] == 0
    torch = step_values(training_step(report, batch=1, convention="torch"), "t")
    assert torch["grad_input"] == 2 * 72 and torch["grad_weight"] == 2 * 72  # MACs 4·9·1·2 = 72
