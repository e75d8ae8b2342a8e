"""Issue 17: --sweep and --plot in each phase. --sweep T=... of a prefill, --sweep P=... of a decode step,
--sweep G=... / T=... of a generation (its closed form), and the same with a Hugging Face config.json.

Numbers worked by hand on specs/llm/llama.yaml made tiny with --set: N=1 decoder layer, d_model=8, I=16, h=2
query heads of head_dim 4, kv=1 key/value head, V=10. Per token: q and o projections 8·8 = 64 MACs each, k and v
8·4 = 32 each, the SwiGLU MLP 3·8·16 = 384, the LM head 10·8 = 80: 656 MACs (RMSNorm, rotary and the embedding
lookup have no MACs). A query that sees S keys costs h·head_dim·S = 8·S MACs of scores and 8·S of attention·V.
"""

from __future__ import annotations

import json

import pytest

from analyzer import analyze, cli
from analyzer.phases import generation
from analyzer.spec.loader import load_spec
from analyzer.sweep import generation_sweep, parse_sweep, sweep

LLAMA = "specs/llm/llama.yaml"
TINY = ["--set", "N=1", "--set", "d_model=8", "--set", "I=16", "--set", "h=2", "--set", "kv=1", "--set", "V=10"]
TINY_VALUES = {"N": 1, "d_model": 8, "I": 16, "h": 2, "kv": 1, "V": 10}
LLAMA_JSON = "tests/fixtures/hf/llama-2-7b.json"
MISTRAL_JSON = "tests/fixtures/hf/mistral-7b-v0.1.json"


def prefill_macs(T: int) -> int:
    # T tokens, causal: query t sees t + 1 keys, sum = T(T + 1)/2 per head group; 16 MACs per key seen
    return 656 * T + 16 * T * (T + 1) // 2


def decode_macs(P: int) -> int:
    # one new token after P cached: it sees P + 1 keys
    return 656 + 16 * (P + 1)


def run_json(capsys, argv: list[str]) -> dict:
    assert cli.main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_prefill_sweep_over_t_by_hand(capsys):
    data = run_json(capsys, [LLAMA, *TINY, "--sweep", "T=2..4*2"])
    # T=2: 1,312 + 16·3 = 1,360; T=4: 2,624 + 16·10 = 2,784
    assert [(p["T"], p["macs"]) for p in data["points"]] == [(2, 1_360), (4, 2_784)]
    assert [prefill_macs(2), prefill_macs(4)] == [1_360, 2_784]
    assert "phase" not in data


def test_decode_sweep_over_p_by_hand(capsys):
    data = run_json(capsys, [LLAMA, *TINY, "--phase", "decode", "--sweep", "P=4..8*2"])
    # P=4: 656 + 16·5 = 736; P=8: 656 + 16·9 = 800. The params do not change with the phase:
    # embedding 10·8 + q, o 2·64 + k, v 2·32 + MLP 384 + 2 norms 2·8 + final norm 8 + LM head 80 = 760
    assert [(p["P"], p["macs"], p["params"]) for p in data["points"]] == [(4, 736, 760), (8, 800, 760)]
    assert data["fixed"]["T"] == 1 and data["phase"] == "decode"


def test_decode_sweep_over_t_new_tokens(capsys):
    # T = 2 new tokens after P = 4: queries see 5 and 6 keys, 11 in all: 2·656 + 16·11 = 1,488
    data = run_json(capsys, [LLAMA, *TINY, "--phase", "decode", "--set", "P=4", "--sweep", "T=1,2"])
    assert [(p["T"], p["macs"]) for p in data["points"]] == [(1, 736), (2, 1_488)]


def test_generate_sweep_over_g_by_hand(capsys):
    data = run_json(capsys, [LLAMA, *TINY, "--phase", "generate", "--set", "T=2", "--sweep", "G=1,3"])
    # G=1: the prefill of T=2 alone, 1,360. G=3: the prefill, then 2 decode steps reading 2 and 3 cached tokens:
    # 1,360 + 704 + 720 = 2,784 (= the prefill of 4 tokens: causal attention does the same work either way)
    assert [(p["G"], p["macs"]) for p in data["points"]] == [(1, 1_360), (3, 2_784)]
    assert prefill_macs(2) + decode_macs(2) + decode_macs(3) == 2_784 == prefill_macs(4)
    assert data["phase"] == "generate" and data["fixed"]["T"] == 2


def test_generate_sweep_over_t_by_hand(capsys):
    data = run_json(capsys, [LLAMA, *TINY, "--phase", "generate", "--set", "G=2", "--sweep", "T=1,4"])
    # G=2: the prefill of T and one decode step reading T cached: T=1: 672 + 688 = 1,360; T=4: 2,784 + 736 = 3,520
    assert [(p["T"], p["macs"]) for p in data["points"]] == [(1, 1_360), (4, 3_520)]
    assert prefill_macs(1) + decode_macs(1) == 1_360 and prefill_macs(4) + decode_macs(4) == 3_520


def test_generate_flops_are_the_prefill_plus_the_decode_steps():
    # the FLOPs at G=3 are the prefill's at T=2 plus the decode step's at P=2 and at P=3, each from its own report
    spec = load_spec(LLAMA)
    result = generation(spec)
    report = result.report.at(T=2, **TINY_VALUES)
    s = generation_sweep(result, report, "G", [1, 3])
    prefill = analyze(LLAMA, T=2, **TINY_VALUES)
    steps = [analyze(LLAMA, phase="decode", P=p, **TINY_VALUES) for p in (2, 3)]
    assert s.points[0].counts["flops"] == prefill.value(prefill.total.flops)
    assert s.points[1].counts["flops"] == prefill.value(prefill.total.flops) + sum(r.value(r.total.flops) for r in steps)


def test_hf_config_decode_set_p_and_sweep_p(capsys):
    # --set P with a model file: P is the phase's symbol, not the converted config's (it used to exit 2).
    # Llama-2-7B, one token after 4,095 cached (tests/test_phases.py works it by hand): 32 layers of q, k, v, o
    # 4·4096² and the MLP 3·4096·11008 and 2·32·128·4096 of attention over 4,096 keys, and the LM head 32000·4096
    expected = 32 * (67_108_864 + 135_266_304 + 2 * 16_777_216) + 131_072_000
    data = run_json(capsys, [LLAMA_JSON, "--phase", "decode", "--set", "P=4095"])
    assert data["total"]["macs"]["value"] == expected
    data = run_json(capsys, [LLAMA_JSON, "--phase", "decode", "--sweep", "P=1023..4095*4"])
    # P = 1023, 4092 (a range never goes past its stop). The new token sees P + 1 keys: 2·32·128·(P + 1) per layer
    assert [(p["P"], p["macs"]) for p in data["points"]] == [
        (1023, 32 * (67_108_864 + 135_266_304 + 2 * 4096 * 1024) + 131_072_000),
        (4092, 32 * (67_108_864 + 135_266_304 + 2 * 4096 * 4093) + 131_072_000)]
    assert data["phase"] == "decode" and data["fixed"]["T"] == 1


def test_sliding_window_decode_sweep_over_p(capsys):
    # Mistral-7B (window 4096): the new token sees min(P + 1, 4096) keys. Weights: 7,241,732,096 params less the
    # embedding lookup 32000·4096 and the norms 65·4096 (no MACs): 7,110,393,856 MACs; attention 2·32·128 = 8,192
    # MACs per key per layer, 32 layers. P=1024: 1,025 keys; P=8192: the window, 4,096 keys.
    data = run_json(capsys, [MISTRAL_JSON, "--phase", "decode", "--sweep", "P=1024,8192"])
    weights = 7_241_732_096 - 32000 * 4096 - 65 * 4096
    assert [(p["P"], p["macs"]) for p in data["points"]] == [(1024, weights + 32 * 8192 * 1025),
                                                            (8192, weights + 32 * 8192 * 4096)]


def test_hf_config_sweep_ranges_of_the_brief():
    # `--sweep P=1024..4096*2` is P = 1024, 2048, 4096: geometric, both ends included
    assert parse_sweep("P=1024..4096*2") == ("P", [1024, 2048, 4096])


def test_sliding_window_generation_refuses(capsys):
    # Mistral-7B's sliding window: min(T + k + 1, 4096) has no closed-form sum over the steps
    assert cli.main([MISTRAL_JSON, "--phase", "generate", "--sweep", "G=1,2"]) == 2
    assert "no closed form" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    ([LLAMA, "--sweep", "P=1,2"], "give --phase decode too"),
    ([LLAMA, "--sweep", "G=1,2"], "give --phase generate too"),
    ([LLAMA, "--phase", "generate", "--sweep", "G=1,2", "--set", "G=3"], "give G one way"),
    ([LLAMA, "--phase", "decode", "--sweep", "P=1,2", "--set", "P=3"], "give P one way"),
    ([LLAMA, "--phase", "generate", "--plot", "x.png"], "--plot draws a sweep"),
    ([LLAMA, "--set", "P=3"], "hint: P is the cached tokens of a decode step: give --phase decode too"),
    ([LLAMA_JSON, "--set", "G=3"], "hint: G is the generated tokens: give --phase generate too"),
    ([LLAMA, "--phase", "generate", "--sweep", "G=0,1"], None),  # G >= 1: a row out of the domain, not an error
])
def test_usage(capsys, argv, message):
    code = cli.main(argv)
    if message is None:
        assert code == 0 and "out of domain" in capsys.readouterr().out
    else:
        assert code == 2 and message in capsys.readouterr().err


def test_decode_and_generate_plots(tmp_path):
    pytest.importorskip("matplotlib")
    from analyzer.plot import build_figure, layer_bands

    decode = sweep(analyze(LLAMA, phase="decode", **TINY_VALUES), "P", [4, 8])
    xs, bands = layer_bands(decode)
    assert xs == [4, 8] and sum(b[0] for b in bands.values()) == decode.points[0].counts["flops"]
    assert build_figure(decode).axes[0].get_title().startswith("Llama: decode-step FLOPs per layer vs P")
    result = generation(load_spec(LLAMA))
    s = generation_sweep(result, result.report.at(T=2, **TINY_VALUES), "G", [1, 3])
    xs, bands = layer_bands(s)
    assert list(bands) in (["prefill", "decode steps"], ["decode steps", "prefill"])
    assert bands["decode steps"][0] == 0  # G = 1: no decode step
    assert [bands["prefill"][j] + bands["decode steps"][j] for j in range(2)] == [p.counts["flops"] for p in s.points]
    figure = build_figure(s)
    assert figure.axes[0].get_title().startswith("Llama: generation FLOPs")
    assert cli.main([LLAMA, *TINY, "--phase", "generate", "--set", "T=2", "--sweep", "G=1..8*2",
                     "--plot", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 0
