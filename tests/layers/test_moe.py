"""MixtureOfExperts (analyzer/layers/moe.py): params, active params and cost worked by hand, and Mixtral-8x7B's
published figures from specs/llm/mixtral.yaml."""

from __future__ import annotations

import pytest

from analyzer import analyze
from analyzer.errors import NNSpecError
from tests.conftest import run


def test_a_small_mixture_by_hand():
    # (3, 4): P = 3 positions, d = 4; E = 4 experts of I = 5, k = 2, no bias.
    report = run([3, 4], [{"type": "MixtureOfExperts", "name": "moe", "num_experts": 4, "experts_per_token": 2,
                           "intermediate_dim": 5}])
    c = report.layers["moe"].counts
    v = report.value
    # router 4·4 = 16; each expert 3·4·5 = 60: 16 + 4·60 = 256 params; active 16 + 2·60 = 136
    assert v(c.params) == 256 and v(report.active_params) == 136
    # MACs: router 3·4·4 = 48, experts 3 positions · 2 · 60 = 360
    assert v(c.macs) == 408
    # dot: router 3·4·(2·4 - 1) = 84; per routed row gate and up 2·5·7 = 70, down 4·9 = 36: 6 rows · 106 = 636
    assert v(c.dot) == 84 + 636
    # activation: softmax 3·(3·4 - 1) = 33; silu (x·sigmoid(x): 5 per element, as the Activation layer counts it)
    # on 6·5 = 30 values: 150
    assert v(c.activation) == 33 + 5 * 30
    # other: act·up 30; renormalization 3·(2·2 - 1) = 9; weighted sum 3·4·(2·2 - 1) = 36
    assert v(c.other) == 30 + 9 + 36


def test_mixtral_8x7b_total_and_active_params():
    report = analyze("specs/llm/mixtral.yaml")
    # per layer: attention 2·4096² + 2·4096·1024 = 41,943,040; router 4096·8 = 32,768; experts 8·3·4096·14336 =
    # 1,409,286,144; two norms 8,192. 32 layers, and embeddings 2·32000·4096 plus the final norm 4096.
    assert report.value(report.total.params) == 32 * (41_943_040 + 32_768 + 1_409_286_144 + 8_192) + 262_144_000 + 4_096
    assert report.value(report.total.params) == 46_702_792_704
    # active: 2 experts of 3·4096·14336 = 176,160,768 instead of 8
    assert report.value(report.active_params) == 12_879_925_248
    assert report.as_dict()["total"]["active_params"]["value"] == 12_879_925_248


def test_a_dense_model_has_no_active_params_line():
    report = analyze("specs/llm/llama.yaml")
    assert report.active_params == report.total.params and "active_params" not in report.as_dict()["total"]


def test_more_experts_per_token_than_experts_is_refused():
    with pytest.raises(NNSpecError, match="experts_per_token 5 exceeds num_experts 4"):
        run([3, 4], [{"type": "MixtureOfExperts", "name": "moe", "num_experts": 4, "experts_per_token": 5,
                      "intermediate_dim": 5}])


def test_a_training_step_through_the_mixture_by_hand():
    # the mixture above at B = 1 with --input-grad: P = 3 rows, R = 6 routed rows, d = 4, I = 5, E = 4, k = 2.
    from analyzer.training import training_step

    report = run([3, 4], [{"type": "MixtureOfExperts", "name": "moe", "num_experts": 4, "experts_per_token": 2,
                           "intermediate_dim": 5}])
    step = training_step(report, batch=1, input_grad=True)
    moe = step.layers["moe"]
    v = step.report.value
    # dW: the experts' 3·4·5 = 60 weights each summed over their rows, every expert with a token: 60·(2·6 - 4) = 480;
    # the router's 16 weights over 3 rows: 16·5 = 80
    assert v(moe.grad_weight) == 480 + 80
    # dx: gate and up 2·24·9 = 432 and their sum 24; the router's 3·4·7 = 84; the k + 1 gradients summed 3·2·4 = 24
    assert v(moe.grad_input) == 432 + 24 + 84 + 24
    # other: down's dx 30·7 = 210; dp·up, dp·act 60; silu's backward 9 per element, 270; dy = g·w 24, dw 6·7 = 42;
    # the renormalization 3·(4·2 - 1) = 21; the softmax 3·(4·4 - 1) = 45
    assert v(moe.grad_other) == 210 + 60 + 270 + 24 + 42 + 21 + 45
    # FlopCounterMode's mm: router dx and dW 2·48 each; gate and up dx 2·2·120, all three dW 2·360, down dx 2·120
    torch_step = training_step(report, batch=1, input_grad=True, convention="torch")
    assert v(torch_step.layers["moe"].backward) == 2 * 48 * 2 + 2 * 240 + 2 * 360 + 2 * 120


def test_the_saved_activations_by_hand():
    # the mixture above at B = 2: P = 2·3 = 6 rows, R = P·k = 12 routed rows, d = 4, I = 5, E = 4 (every routing
    # keeps the same total: each expert keeps tensors of its n_e rows, and the n_e sum to R).
    from analyzer.training import training_step
    from analyzer.training_memory import saved_activations, step_memory

    report = run([3, 4], [{"type": "MixtureOfExperts", "name": "moe", "num_experts": 4, "experts_per_token": 2,
                           "intermediate_dim": 5}])
    step = training_step(report, batch=2)
    # floats: the router's input x, 6·4 = 24; the softmax 6·4 = 24; the top-k values 12 and their sum 6; the routed
    # rows 12·4 = 48; gate's output (silu's input), up's output, act(gate), the product, 4·12·5 = 240; the experts'
    # output 48, the picked weights 12, their product 48: 462 floats = 1848 bytes. int64: the top-k indices 12 and
    # torch.where's token and slot, 2·12 = 24: 36 = 288 bytes
    assert step.report.value(saved_activations(step)["moe"]) == 1848 + 288
    assert step_memory(step)[-2].note == ""
    # frozen, x needing a gradient: no router input, routed rows nor product: 462 - 24 - 48 - 60 = 330 floats
    frozen = training_step(report, batch=2, frozen=("moe",), input_grad=True)
    assert frozen.report.value(saved_activations(frozen)["moe"]) == 4 * 330 + 288
