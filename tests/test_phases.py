"""Issue 17, phases: prefill (T tokens, no cache) and decode (T new tokens after P cached ones) of a decoder, and
its key/value cache. Numbers worked by hand from Llama-2-7B's sizes (specs/llm/llama.yaml's defaults) and small
attentions; the refusals exit 2."""

from __future__ import annotations

import json

import pytest

from analyzer import analyze, cli
from analyzer.phases import kv_cache

LLAMA = "specs/llm/llama.yaml"

ATTENTION = """
symbols: {{T: 5}}
inputs: [{{name: x, shape: [T, 8]}}]
layers:
  - {{type: GroupedQueryAttention, name: att, inputs: [x, x], head_dim: 2, num_query_heads: 4,
     num_key_value_heads: 2, use_bias: false, causal: true{extra}}}
"""


def test_llama_2_7b_decode_step_macs_by_hand():
    # One new token after P = 4095 cached ones. Per layer: q, k, v, o projections 4·4096² = 67,108,864; the MLP
    # 3·4096·11008 = 135,266,304; the new query sees P + 1 = 4096 keys: scores 32 heads·4096·128 = 16,777,216 and
    # attention·V as many. 235,929,600 per layer, 32 layers, and the LM head 32000·4096 = 131,072,000.
    report = analyze(LLAMA, phase="decode", P=4095)
    assert report.value(report.total.macs) == 32 * (67_108_864 + 135_266_304 + 2 * 16_777_216) + 131_072_000
    assert report.value(report.total.params) == 6_738_415_616  # the weights do not change with the phase
    assert report.phase == "decode"


def test_llama_2_7b_kv_cache():
    # per token and layer the keys and values of 32 heads of 128: 2·4096 = 8192 elements; 32 layers: 262,144 per
    # token (0.5 MiB in float16). Prefill of 4096 tokens writes 4096·262,144 = 1,073,741,824 elements.
    prefill = analyze(LLAMA, T=4096)
    cache = kv_cache(prefill)
    assert prefill.value(cache.written) == 4096 * 262_144 and prefill.value(cache.read) == 0
    decode = analyze(LLAMA, phase="decode", P=4095)
    cache = kv_cache(decode, batch=3)
    assert decode.value(cache.read) == 3 * 4095 * 262_144 and decode.value(cache.written) == 3 * 262_144
    assert decode.value(cache.held) == 3 * 4096 * 262_144


def test_decode_scores_of_a_causal_attention():
    # T = 2 new queries after P = 3 cached tokens: query 0 sees 4 keys, query 1 sees 5: S = 9 per head
    # (T·P + T(T+1)/2 = 6 + 3). Scores 4 heads·9·2 MACs, attention·V as many: 144; projections: q 2·8·8 = 128,
    # k and v 2·(2·8·4) = 128, o 2·8·8 = 128: 528 MACs in all.
    report = analyze(ATTENTION.format(extra=""), phase="decode", T=2, P=3)
    assert report.value(report.total.macs) == 144 + 128 + 128 + 128
    # softmax over each query's keys: 3 per score less one per query, per head: 4·(3·9 - 2) = 100
    assert report.value(report.layers["att"].counts.activation) == 4 * (3 * 9 - 2)


def test_decode_scores_in_a_sliding_window():
    # window W = 3, P = 3 cached, T = 2 new: query 0 (position 3) sees min(4, 3) = 3 keys, query 1 sees 3: S = 6.
    report = analyze(ATTENTION.format(extra=", sliding_window: 3"), phase="decode", T=2, P=3)
    assert report.value(report.total.macs) == 4 * 6 * 2 * 2 + 384
    # P = 1: positions 1 and 2 see 2 and 3 keys: S = 5
    assert analyze(ATTENTION.format(extra=", sliding_window: 3"), phase="decode", T=2, P=1).value(
        report.total.macs) == 4 * 5 * 2 * 2 + 384


def test_torch_convention_counts_every_cached_key():
    # eager attention on a cache multiplies the T new queries by all P + T keys: 4 heads·2·5·2 per matmul, times 2
    from analyzer.conventions import recount_with

    report = analyze(ATTENTION.format(extra=""), phase="decode", T=2, P=3)
    recount = recount_with(report, "torch")
    assert report.value(recount.total) == 2 * (384 + 2 * 4 * 2 * 5 * 2)


def test_decode_defaults_one_new_token_after_the_specs_length():
    report = analyze(LLAMA, phase="decode")
    values = {s.name: report.values[s.symbol] for s in report.symbols}
    assert values["T"] == 1 and values["P"] == 4096


def test_cli_decode_json_has_the_kv_cache(capsys):
    assert cli.main([LLAMA, "--phase", "decode", "--set", "P=4095", "--format", "json", "--dtype", "float16"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kv_cache"]["phase"] == "decode"
    assert data["kv_cache"]["elements"]["value"] == 4096 * 262_144
    assert data["kv_cache"]["bytes"]["value"] == 2 * 4096 * 262_144  # float16
    # weights 2 bytes each + the cache + the live activations at the LM head (norm 4096 and logits 32000)
    assert data["memory"]["inference_bytes"]["value"] == 2 * (6_738_415_616 + 4096 * 262_144 + 4096 + 32000)


@pytest.mark.parametrize("argv, message", [
    (["specs/scnn.yaml", "--phase", "decode"], "needs the sequence length as the symbol T"),
    (["specs/transformer_encoder.yaml", "--phase", "decode"], "needs the sequence length as the symbol T"),
    ([LLAMA, "--phase", "decode", "--training"], "--phase decode is one inference step"),
])
def test_decode_refusals_exit_2(capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_decode_refuses_a_layer_that_mixes_positions(capsys):
    text = """
symbols: {T: 8}
inputs: [{name: x, shape: [T, 4]}]
layers:
  - {type: Conv1D, name: conv, filters: 4, kernel_size: 3, padding: causal}
  - {type: GroupedQueryAttention, name: att, inputs: [conv, conv], head_dim: 2, num_query_heads: 2,
     num_key_value_heads: 1, causal: true}
"""
    from analyzer.errors import UsageError

    with pytest.raises(UsageError, match="layer 'conv' \\(Conv1D\\) would need the past positions"):
        analyze(text, phase="decode")


def test_decode_refuses_a_non_causal_attention():
    from analyzer.errors import NNSpecError

    with pytest.raises(NNSpecError, match="only a causal attention has"):
        analyze(ATTENTION.format(extra="").replace("causal: true", "causal: false"), phase="decode")


def test_a_learned_position_table_must_hold_the_cached_positions():
    from analyzer.errors import NNSpecError

    text = """
symbols: {T: 4}
inputs: [{name: ids, shape: [T]}]
layers:
  - {type: Embedding, name: tok, input_dim: 10, output_dim: 4}
  - {type: PositionEmbedding, name: pos, sequence_length: 8}
"""
    assert analyze(text, phase="decode", P=7).value(analyze(text).total.params) == 72  # 40 + 32
    with pytest.raises(NNSpecError, match="the cached and new positions P \\+ T exceeds sequence_length"):
        analyze(text, phase="decode", P=8)


def test_generation_is_the_prefill_and_g_minus_1_decode_steps():
    # a prompt of T = 4, G = 3 tokens: the prefill at T = 4, then decode steps at P = 4 and P = 5 (one token each),
    # each analyzed on its own and added: the closed form must give the same, for MACs and FLOPs.
    from analyzer.phases import generation
    from analyzer.spec.loader import load_spec

    steps = [analyze(LLAMA, T=4), analyze(LLAMA, phase="decode", P=4), analyze(LLAMA, phase="decode", P=5)]
    result = generation(load_spec(LLAMA))
    report = result.report.at(T=4, G=3)
    for quantity in ("macs", "flops"):
        assert report.value(getattr(result, quantity)) == sum(r.value(getattr(r.total, quantity)) for r in steps)
    # the cache at the end holds T + G - 1 = 6 tokens of 262,144 elements (Llama-2-7B)
    assert report.value(result.kv_cache) == 6 * 262_144
    # G = 1: the prefill alone
    one = result.report.at(T=4, G=1)
    assert one.value(result.macs) == steps[0].value(steps[0].total.macs)


def test_cli_generate(capsys):
    assert cli.main([LLAMA, "--phase", "generate", "--set", "T=4", "--set", "G=3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["generation"]["decode_steps"]["value"] == 2
    assert data["generation"]["kv_cache"]["elements"]["value"] == 6 * 262_144
    assert cli.main([LLAMA, "--phase", "generate", "--format", "csv"]) == 2
    assert "table, json or markdown" in capsys.readouterr().err


def test_generation_with_a_sliding_window_is_refused_not_looped(capsys, tmp_path):
    path = tmp_path / "window.yaml"
    path.write_text(ATTENTION.format(extra=", sliding_window: 3"))
    assert cli.main([str(path), "--phase", "generate"]) == 2
    assert "no closed form" in capsys.readouterr().err


def test_the_readme_llm_example():
    """README's Llama-2-7B example, from the published config (tests/fixtures/hf/llama-2-7b.json). MACs by hand: a
    layer's projections 4·T·d², the causal scores and attention·V 2·d per query-key pair (T(T+1)/2 pairs, or
    T·P + T(T+1)/2 after P cached), the MLP 3·T·d·I; 32 layers and the LM head T·d·V."""
    from analyzer.importers import import_model

    spec = import_model("tests/fixtures/hf/llama-2-7b.json").spec
    d, inner, layers, vocab = 4096, 11008, 32, 32000

    def macs(t, p=0):
        return layers * (4 * t * d * d + 2 * d * (t * p + t * (t + 1) // 2) + 3 * t * d * inner) + t * d * vocab

    from analyzer.api import analyze_phase

    prefill = analyze_phase(spec, "spec", "prefill").at(T=4096)
    assert prefill.value(prefill.total.params) == 6_738_415_616
    assert prefill.value(prefill.total.macs) == macs(4096) == 29_262_149_058_560
    assert prefill.value(prefill.total.flops) == 58_553_091_497_984
    decode = analyze_phase(spec, "spec", "decode").at(P=32767)
    # 32 layers x 2 (keys, values) x 32 heads x 128 x 32,768 tokens = 8,589,934,592 elements, 16 GiB in float16
    assert decode.value(kv_cache(decode, 1).held) == 2 * 32 * 4096 * 32768 == 8_589_934_592
    assert decode.value(decode.total.macs) == macs(1, 32767)
    # generation: the closed form equals the prefill of 2,048 and the 511 decode steps, each analyzed on its own
    from analyzer.phases import generation

    result = generation(spec)
    values = dict(T=2048, G=512)
    assert result.report.at(**values).value(result.macs) == macs(2048) + sum(macs(1, 2048 + k) for k in range(511))
    steps = analyze_phase(spec, "spec", "decode")
    flops = prefill.at(T=2048).value(prefill.total.flops) + sum(
        steps.value(steps.total.flops.subs({steps.symbol("P").symbol: 2048 + k})) for k in range(511))
    assert result.report.at(**values).value(result.flops) == flops == 35_546_299_094_142
