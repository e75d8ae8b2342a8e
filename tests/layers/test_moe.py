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
