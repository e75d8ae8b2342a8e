"""Tiny configs of every supported model_type, built by transformers (eager attention, float32): nnspec's params
of `analyze config.json` = the model's unique parameters (tied once), and the torch convention's FLOPs =
FlopCounterMode of a forward at B=1, T=16."""

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from analyzer.conventions import recount_with  # noqa: E402
from analyzer.importers import import_model  # noqa: E402

T = 16
BASE = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=64)
CASES = {
    "llama-mha-untied": ("llama", "LlamaForCausalLM", dict(num_key_value_heads=4)),
    "llama-gqa-tied-bias": ("llama", "LlamaForCausalLM", dict(num_key_value_heads=2, tie_word_embeddings=True,
                                                             attention_bias=True, mlp_bias=True)),
    "llama-base-headdim": ("llama", "LlamaModel", dict(num_key_value_heads=1, head_dim=16)),
    "mistral-gqa-window": ("mistral", "MistralForCausalLM", dict(num_key_value_heads=2, sliding_window=8)),
    "mistral-mha-tied": ("mistral", "MistralForCausalLM", dict(num_key_value_heads=4, sliding_window=None,
                                                              tie_word_embeddings=True)),
    "qwen2-gqa-tied": ("qwen2", "Qwen2ForCausalLM", dict(num_key_value_heads=2, tie_word_embeddings=True)),
    "qwen2-mha-untied": ("qwen2", "Qwen2ForCausalLM", dict(num_key_value_heads=4)),
    "phi3-gqa-partial": ("phi3", "Phi3ForCausalLM", dict(num_key_value_heads=2, pad_token_id=0,
                                                         rope_parameters={"rope_type": "default",
                                                                          "rope_theta": 10000.0,
                                                                          "partial_rotary_factor": 0.5})),
    "phi3-mha-tied": ("phi3", "Phi3ForCausalLM", dict(num_key_value_heads=4, tie_word_embeddings=True, pad_token_id=0)),
    "phi-mha-partial": ("phi", "PhiForCausalLM", dict(hidden_act="gelu", partial_rotary_factor=0.5)),
    "phi-gqa-base": ("phi", "PhiModel", dict(hidden_act="gelu", num_key_value_heads=2)),
    "gpt2-tied": ("gpt2", "GPT2LMHeadModel", dict(activation_function="gelu")),
    "gpt2-untied-inner": ("gpt2", "GPT2LMHeadModel", dict(activation_function="gelu", n_inner=40,
                                                        tie_word_embeddings=False)),
}
GPT2_BASE = dict(vocab_size=97, n_embd=32, n_layer=2, n_head=4, n_positions=64)


def build(name, tmp_path):
    model_type, architecture, extra = CASES[name]
    fields = {**(GPT2_BASE if model_type == "gpt2" else BASE), **extra}
    config = transformers.AutoConfig.for_model(model_type, **fields)
    config._attn_implementation = "eager"
    model = getattr(transformers, architecture)(config).eval()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": model_type, "architectures": [architecture], **fields}))
    return model, import_model(path, values={"T": T}).report


@pytest.mark.parametrize("name", sorted(CASES))
def test_params_and_flops(name, tmp_path):
    model, report = build(name, tmp_path)
    unique = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    assert report.value(report.total.params) == unique
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, T, dtype=torch.long))
    torch_total = report.value(recount_with(report, "torch").total)
    # eager attention computes every TxT score (sliding window and causal masks applied after): the torch
    # convention's full scores; the rotary cos / sin tables, norms, softmax have no FlopCounterMode formula
    assert counter.get_total_flops() == torch_total
