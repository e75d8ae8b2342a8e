"""The decoder vocabulary's torch export (analyzer/layers/torch_modules/transformer.py), which has no Keras model
to compare against (the harness skips those cases, naming the layer): params per layer = the module's unique
parameters, the torch convention = FlopCounterMode per layer and in total, and the modules' values = a reference
written from the definitions (per-head loops, the rotation as complex numbers, masks by their conditions).
test_profiles.py checks thop, ptflops and fvcore on the same specs and sizes."""

from __future__ import annotations

import math

import pytest
import torch
from crosscheck_harness import ROOT, assert_torch_flops_per_row, cases_of, load_sizes, torch_export_with_its_params_checked
from torch.utils.flop_counter import FlopCounterMode

from analyzer.layers.torch_modules.transformer import GatedMLP, GroupedQueryAttention, RMSNormPlusOne

SPECS = ("specs/llm/llama.yaml", "tests/crosscheck/specs/zoo_llm.yaml")
CASES = [(path, values) for path in SPECS for values in cases_of(load_sizes()[path])]


@pytest.mark.parametrize(("path", "values"), CASES, ids=[f"{p}{v}" for p, v in CASES])
def test_params_and_flop_counter_mode_on_the_torch_export(path, values):
    plan, report, model = torch_export_with_its_params_checked(ROOT / path, values)
    counter = FlopCounterMode(display=False)
    tokens = torch.randint(0, values["V"], (1, values["T"])).float()
    with torch.no_grad(), counter:
        model(tokens)
    assert_torch_flops_per_row(model, plan, report, counter)


def reference_attention(module, query, value, causal, window, theta, rotary):
    """Per head h, its key/value head h // (Hq/Hkv); the pair (x_i, x_{i + r/2}) at position p turned by the angle
    p·theta^(-2i/r), in float64 from the definition; the mask from its conditions."""
    hd, hq, hkv = module.head_dim, module.heads, module.kv_heads
    q = module.query(query)[0].reshape(-1, hq, hd)
    k = module.key(value)[0].reshape(-1, hkv, hd)
    v = module.value(value)[0].reshape(-1, hkv, hd)
    if module.query_norm is not None:
        q, k = module.query_norm(q), module.key_norm(k)

    def turn(x):
        if not rotary:
            return x
        half = rotary // 2
        out = x.clone().double()
        for p in range(x.shape[0]):
            for i in range(half):
                angle = p * theta ** (-2 * i / rotary)
                a, b = x[p, :, i].double(), x[p, :, i + half].double()
                out[p, :, i] = a * math.cos(angle) - b * math.sin(angle)
                out[p, :, i + half] = b * math.cos(angle) + a * math.sin(angle)
        return out.float()

    q, k = turn(q), turn(k)
    tq, tv = q.shape[0], k.shape[0]
    heads = []
    for h in range(hq):
        g = h // (hq // hkv)
        scores = q[:, h] @ k[:, g].T / math.sqrt(hd)
        for i in range(tq):
            for j in range(tv):
                if (causal and j > i) or (window is not None and abs(i - j) >= window):
                    scores[i, j] = float("-inf")
        heads.append(torch.softmax(scores, -1) @ v[:, g])
    return module.attention_output(torch.cat(heads, -1))[None]


@pytest.mark.parametrize(("causal", "window", "theta", "factor", "qk_norm"), [
    (True, None, 10000.0, 1.0, False), (True, 3, 500000.0, 0.5, True), (False, 2, None, 1.0, False),
    (False, None, 100.0, 0.25, True)])
def test_grouped_query_attention_values(causal, window, theta, factor, qk_norm):
    torch.manual_seed(0)
    hd, t = 8, 7
    rotary = int(hd * factor) if theta else 0
    module = GroupedQueryAttention(12, 12, 12, hd, 4, 2, 10, t, t, query_bias=True, key_bias=True, value_bias=True,
                                   output_bias=False, qk_norm=qk_norm, causal=causal, sliding_window=window,
                                   rope_theta=theta, rotary_dim=rotary)
    x = torch.randn(1, t, 12)
    with torch.no_grad():
        ours = module(x, x)
        expected = reference_attention(module, x, x, causal, window, theta or 1.0, rotary)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_rms_norm_plus_one_and_the_gated_mlp_values():
    torch.manual_seed(0)
    norm = RMSNormPlusOne((6,), 1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(6))
    x = torch.randn(2, 3, 6)
    expected = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * (1 + norm.weight)
    torch.testing.assert_close(norm(x), expected)
    mlp = GatedMLP(6, 5, 4, "silu", use_bias=True)
    gate = mlp.gate(x)
    torch.testing.assert_close(mlp(x), mlp.down(gate * torch.sigmoid(gate) * mlp.up(x)))


def test_grouped_query_attention_equals_keras_where_keras_has_the_options(tmp_path):
    # keras.layers.GroupQueryAttention (6 query heads sharing 2 key/value heads, the symmetric window of 3): the
    # same params and, with Keras' weights copied in, the same values as the torch export.
    import keras
    import numpy as np

    from analyzer.export import copy_keras_weights, to_keras, to_torch

    spec = tmp_path / "gqa.yaml"
    spec.write_text("name: g\ninputs: [{name: x, shape: [7, 12]}]\nlayers:\n  - {type: GroupedQueryAttention, "
                    "name: attn, inputs: [x, x], head_dim: 4, num_query_heads: 6, num_key_value_heads: 2, "
                    "sliding_window: 3}\n", encoding="utf-8")
    keras_model, torch_model = to_keras(spec), to_torch(spec)
    rng = np.random.default_rng(0)
    for w in keras_model.weights:
        w.assign(rng.normal(0, 0.3, w.shape).astype("float32"))
    copy_keras_weights(keras_model, torch_model)
    x = rng.normal(size=(2, 7, 12)).astype("float32")
    # q 12·24 + 24, k and v 12·8 + 8 each, o 24·12 + 12
    assert keras_model.count_params() == sum(p.numel() for p in torch_model.parameters()) == 312 + 2 * 104 + 300
    with torch.no_grad():
        ours = torch_model(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(keras_model(x)), atol=1e-5)
