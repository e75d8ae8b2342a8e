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


@pytest.mark.parametrize(("config", "field"), [
    ({"model_type": "mixtral"}, "mixture of experts"),
    ({"model_type": "bert"}, "BERT is not read yet"),
    ({"model_type": "t5"}, "supported: llama, mistral"),
    ({"model_type": "gemma", "hidden_act": "silu"}, "sqrt\\(hidden_size\\)"),
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
    (tmp_path / "c.json").write_text(json.dumps({"model_type": "mixtral"}))
    out = tmp_path / "m.yaml"
    run = subprocess.run([sys.executable, "-m", "analyzer", "convert", str(tmp_path / "c.json"), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "mixtral" in run.stderr and not out.exists()


def test_convert_writes_a_spec_that_reads_back(tmp_path):
    out = tmp_path / "m.yaml"
    run = subprocess.run([sys.executable, "-m", "analyzer", "convert", str(HF / "qwen2-0.5b.json"), "-o", str(out),
                          "--set", "T=128"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    from analyzer import analyze
    report = analyze(str(out))
    assert report.value(report.total.params) == 494_032_768
    assert "T: {default: 128" in out.read_text()
