"""analyze config.json (Hugging Face): published configs (tests/fixtures/hf/, copied from the model hub) against
their published parameter counts, worked by hand below; refusals exit 2 naming the field. No transformers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.importers import ModelImportError, import_model

HF = Path(__file__).parent / "fixtures" / "hf"


def params(path):
    report = import_model(path).report
    return report.value(report.total.params)


def test_llama_2_7b():
    # d=4096, I=11008, N=32, V=32000, MHA: per layer 4·d² attention + 3·d·I MLP + 2·d norms
    # = 67,108,864 + 135,266,304 + 8,192 = 202,383,360; x32 = 6,476,267,520; + 2·V·d (embed, untied head)
    # 262,144,000 + final norm 4,096 = 6,738,415,616 (the published figure)
    assert params(HF / "llama-2-7b.json") == 6_738_415_616


def test_mistral_7b_v0_1():
    # GQA kv=8 of 32 heads, hd=128: attention 2·d² + 2·d·(8·128) = 33,554,432 + 8,388,608 = 41,943,040;
    # MLP 3·4096·14336 = 176,160,768; norms 8,192: 218,112,000 per layer; x32 = 6,979,584,000;
    # + 2·32000·4096 = 262,144,000 + 4,096 = 7,241,732,096
    assert params(HF / "mistral-7b-v0.1.json") == 7_241_732_096


def test_qwen2_0_5b_tied():
    # d=896, 14 heads (hd 64), kv 2 (128 wide), I=4864, N=24, V=151936, tied head, q/k/v bias, no o bias:
    # q 896·896+896 = 803,712; k, v 896·128+128 = 114,816 each; o 802,816: attention 1,836,160;
    # MLP 3·896·4864 = 13,074,432; norms 1,792: 14,912,384 per layer; x24 = 357,897,216;
    # + embed 151936·896 = 136,134,656 (once: tied) + 896 = 494,032,768
    assert params(HF / "qwen2-0.5b.json") == 494_032_768


def test_gpt2_as_published_with_gelu_new(tmp_path):
    # gelu_new is the tanh approximation: gelu_tanh, 13 FLOPs per element (the exact gelu 5)
    # per layer: ln 2·768·2 = 3,072; attention 4·768² + 4·768 = 2,362,368; MLP 768·3072+3072 + 3072·768+768
    # = 4,722,432: 7,087,872; x12 = 85,054,464; + wte 50257·768 = 38,597,376 + wpe 1024·768 = 786,432
    # + ln_f 1,536 = 124,439,808 (the published figure; the head is tied to wte)
    assert params(HF / "gpt2.json") == 124_439_808
    config = json.loads((HF / "gpt2.json").read_text()) | {"activation_function": "gelu"}
    (tmp_path / "gpt2.json").write_text(json.dumps(config))
    tanh, exact = import_model(HF / "gpt2.json").report, import_model(tmp_path / "gpt2.json").report
    # the MLP's activation runs on T·3072 values per layer, 12 layers, T = 1024 (min(4096, n_positions)):
    # (13 - 5)·1024·3072·12 more FLOPs with gelu_new
    assert tanh.value(tanh.total.flops) - exact.value(exact.total.flops) == 8 * 1024 * 3072 * 12
    with pytest.raises(ModelImportError, match=r"activation_function.*gelu_fast"):
        (tmp_path / "fast.json").write_text(json.dumps(config | {"activation_function": "gelu_fast"}))
        import_model(tmp_path / "fast.json")


def test_base_model_has_no_head(tmp_path):
    config = json.loads((HF / "llama-2-7b.json").read_text()) | {"architectures": ["LlamaModel"]}
    (tmp_path / "c.json").write_text(json.dumps(config))
    assert params(tmp_path / "c.json") == 6_738_415_616 - 32000 * 4096  # no lm_head


def test_old_and_new_rope_forms_agree(tmp_path):
    old = json.loads((HF / "mistral-7b-v0.1.json").read_text())
    new = {k: v for k, v in old.items() if k != "rope_theta"} | {
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}, "head_dim": 128}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    a, b = import_model(tmp_path / "old.json").report, import_model(tmp_path / "new.json").report
    assert a.value(a.total.macs) == b.value(b.total.macs)
    assert a.value(a.total.flops) == b.value(b.total.flops)


# The published sizes (the fields that change a count; the rest are transformers' defaults) of google/gemma-2b,
# google/gemma-7b (hidden_act "gelu", the legacy name of gelu_pytorch_tanh) and mistralai/Mixtral-8x7B-v0.1. The
# full published files are not copied here; tests/crosscheck/test_hf_configs.py builds these sizes with
# transformers on the meta device and finds the same counts.
GEMMA_2B = dict(model_type="gemma", architectures=["GemmaForCausalLM"], vocab_size=256000, hidden_size=2048,
                intermediate_size=16384, num_hidden_layers=18, num_attention_heads=8, num_key_value_heads=1,
                head_dim=256, hidden_act="gelu")
GEMMA_7B = dict(model_type="gemma", architectures=["GemmaForCausalLM"], vocab_size=256000, hidden_size=3072,
                intermediate_size=24576, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=16,
                head_dim=256, hidden_act="gelu")
MIXTRAL_8X7B = dict(model_type="mixtral", architectures=["MixtralForCausalLM"], vocab_size=32000, hidden_size=4096,
                    intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                    num_local_experts=8, num_experts_per_tok=2, max_position_embeddings=32768, rope_theta=1e6,
                    sliding_window=None, router_aux_loss_coef=0.02, tie_word_embeddings=False)


def imported(tmp_path, config, **values):
    (tmp_path / "c.json").write_text(json.dumps(config))
    return import_model(tmp_path / "c.json", values=values or None).report


def test_gemma_7b(tmp_path):
    # d=3072, 16 heads of head_dim 256 (16·256 = 4096 wide, not d): q, k, v 3072·4096 and o 4096·3072,
    # 12,582,912 each: 50,331,648; MLP 3·3072·24576 = 226,492,416; norms 6,144: 276,830,208 per layer;
    # x28 = 7,751,245,824; + embed 256000·3072 = 786,432,000 (the head tied to it) + 3,072 = 8,537,680,896
    report = imported(tmp_path, GEMMA_7B)
    assert report.value(report.total.params) == 8_537_680_896


def test_gemma_2b_multi_query(tmp_path):
    # d=2048, 8 heads of 256 (= d / h), one kv head: q, o 2048² = 4,194,304 each, k, v 2048·256 = 524,288 each:
    # 9,437,184; MLP 3·2048·16384 = 100,663,296; norms 4,096: 110,104,576 per layer; x18 = 1,981,882,368;
    # + embed 256000·2048 = 524,288,000 + 2,048 = 2,506,172,416
    report = imported(tmp_path, GEMMA_2B)
    assert report.value(report.total.params) == 2_506_172_416


def test_a_tiny_gemma_by_hand(tmp_path):
    config = dict(model_type="gemma", architectures=["GemmaForCausalLM"], vocab_size=11, hidden_size=8,
                  intermediate_size=6, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=6)
    # q 8·12 = 96, k, v 8·6 = 48 each, o 12·8 = 96: 288; MLP 3·8·6 = 144; norms 2·8 = 16: 448 per layer; x2 = 896;
    # + embed 11·8 = 88 (tied: once) + the final norm 8 = 992
    report = imported(tmp_path, config, T=5)
    assert report.value(report.total.params) == 992
    # the embedding scale sqrt(8): one multiply per element of (T, d) = 5·8 = 40, nothing else
    row = report.layers["embed_scale"]
    assert row.type == "Rescaling" and row.spec.scale == 8 ** 0.5 and report.value(row.counts.flops) == 40
    # Gemma's norms are x / rms · (1 + w): scale_plus_one, the same count
    assert report.layers["norm"].spec.scale_plus_one
    # GemmaMLP: gelu_pytorch_tanh, the tanh approximation (the default hidden_act)
    assert "gelu_tanh" in {getattr(r.spec, "activation", None) for r in report.layers.values()}
    # attention_bias: q 12, k 6, v 6, o 8 = 32 biases per layer, 64 more
    biased = imported(tmp_path, config | {"attention_bias": True})
    assert biased.value(biased.total.params) == 992 + 64


def test_mixtral_8x7b_total_and_active(tmp_path):
    # d=4096, kv 8 of 32 heads (hd 128): attention 2·4096² + 2·4096·1024 = 41,943,040; router 4096·8 = 32,768;
    # 8 experts of 3·4096·14336 = 176,160,768: 1,409,286,144; norms 8,192: 1,451,270,144 per layer;
    # x32 = 46,440,644,608; + embed and the untied head 2·32000·4096 = 262,144,000 + 4,096 = 46,702,792,704.
    # Active: 2 experts of 8, 352,321,536 per layer: 394,305,536; x32 = 12,617,777,152 + 262,148,096
    # = 12,879,925,248 (specs/llm/mixtral.yaml's figures)
    report = imported(tmp_path, MIXTRAL_8X7B)
    assert report.value(report.total.params) == 46_702_792_704
    assert report.value(report.active_params) == 12_879_925_248


def test_a_tiny_mixtral_by_hand(tmp_path):
    config = dict(model_type="mixtral", architectures=["MixtralForCausalLM"], vocab_size=13, hidden_size=8,
                  intermediate_size=4, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                  num_local_experts=3, num_experts_per_tok=2)
    # attention 4·8² = 256; router 8·3 = 24; 3 experts of 3·8·4 = 96: 288; norms 16: 584 per layer; x2 = 1,168;
    # + embed 13·8 and head 13·8 = 208 + the final norm 8 = 1,384. Active: 2 experts, 192: 488 per layer;
    # x2 = 976 + 216 = 1,192
    report = imported(tmp_path, config)
    assert report.value(report.total.params) == 1_384
    assert report.value(report.active_params) == 1_192
    # the MLP of each of the N layers: MixtralSparseMoeBlock, the router's top 2 of 3 renormalized
    moe = report.layers["layers.each.mlp"]
    assert moe.type == "MixtureOfExperts" and moe.spec.normalize_top_k and moe.spec.activation == "silu"
    assert {s.name: s.default for s in report.symbols if s.name in ("E", "k")} == {"E": 3, "k": 2}


@pytest.mark.parametrize(("config", "field"), [
    ({"model_type": "t5"}, "supported: llama, mistral"),
    ({"model_type": "gemma", "use_bidirectional_attention": True}, "use_bidirectional_attention"),
    ({"model_type": "gemma", "hidden_act": "gelu_fast"}, "hidden_act.*gelu_fast"),
    ({"model_type": "mixtral", "router_jitter_noise": 0.01}, "router_jitter_noise.*training"),
    ({"model_type": "mixtral", "output_router_logits": True}, "output_router_logits.*load-balancing"),
    ({"model_type": "mixtral", "num_experts_per_tok": 9}, "num_experts_per_tok.*exceeds num_local_experts 8"),
    ({"model_type": "mixtral", "num_local_experts": 0}, "num_local_experts.*positive integer"),
    ({"model_type": "llama", "num_key_value_heads": 5}, "num_key_value_heads.*does not divide"),
    ({"model_type": "llama", "hidden_size": -4}, "hidden_size.*positive integer"),
    ({"model_type": "llama", "num_local_experts": 8}, "num_local_experts"),
    ({"model_type": "llama", "architectures": ["LlamaForSequenceClassification"]}, "architectures"),
    ({"model_type": "qwen2", "use_sliding_window": True}, "layer_types"),  # max_window_layers 28 < 32: mixed
    ({"model_type": "gpt2", "activation_function": "gelu", "add_cross_attention": True}, "add_cross_attention"),
    ({"model_type": "phi", "hidden_act": "gelu", "qk_layernorm": True}, "qk_layernorm"),
])
def test_refusals_name_the_field(tmp_path, config, field):
    (tmp_path / "c.json").write_text(json.dumps(config))
    with pytest.raises(ModelImportError, match=field):
        import_model(tmp_path / "c.json")


def test_cli_exit_2_and_nothing_written(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"model_type": "mixtral", "router_jitter_noise": 0.1}))
    out = tmp_path / "m.yaml"
    run = subprocess.run([sys.executable, "-m", "analyzer", "convert", str(tmp_path / "c.json"), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "router_jitter_noise" in run.stderr and not out.exists()


def test_convert_writes_a_spec_that_reads_back(tmp_path):
    out = tmp_path / "m.yaml"
    run = subprocess.run([sys.executable, "-m", "analyzer", "convert", str(HF / "qwen2-0.5b.json"), "-o", str(out),
                          "--set", "T=128"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    from analyzer import analyze
    report = analyze(str(out))
    assert report.value(report.total.params) == 494_032_768
    assert "T: {default: 128" in out.read_text()
