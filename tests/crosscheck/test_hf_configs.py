"""Tiny configs of every supported model_type, built by transformers (eager attention, float32; mixtures of experts
with experts_implementation="eager": transformers' default grouped_mm has no FlopCounterMode formula, see
test_moe_transformers.py): nnspec's params of `analyze config.json` = the model's unique parameters (tied once),
active params = those less the (E - k) experts per layer not run for a token, and the torch convention's FLOPs =
FlopCounterMode of a forward at B in {1, 2}, T in {16, 128}."""

import functools
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from analyzer.conventions import recount_with  # noqa: E402
from analyzer.importers import import_model  # noqa: E402

BASE = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=160)
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
    # Gemma: head_dim is given (its default is 256); "gelu" is the legacy name of gelu_pytorch_tanh
    "gemma-mqa-tied-headdim": ("gemma", "GemmaForCausalLM", dict(num_key_value_heads=1, head_dim=16)),
    "gemma-mha-untied-bias": ("gemma", "GemmaForCausalLM", dict(num_key_value_heads=4, head_dim=8, attention_bias=True,
                                                                tie_word_embeddings=False, hidden_act="gelu")),
    "gemma-gqa-base": ("gemma", "GemmaModel", dict(num_key_value_heads=2, head_dim=8)),
    "mixtral-gqa-4x2": ("mixtral", "MixtralForCausalLM", dict(num_key_value_heads=2, num_local_experts=4,
                                                              num_experts_per_tok=2)),
    "mixtral-mha-3x1-window-tied": ("mixtral", "MixtralForCausalLM", dict(num_key_value_heads=4, num_local_experts=3,
                                                                          num_experts_per_tok=1, sliding_window=8,
                                                                          tie_word_embeddings=True)),
    "mixtral-4x4-base": ("mixtral", "MixtralModel", dict(num_key_value_heads=1, num_local_experts=4,
                                                         num_experts_per_tok=4, head_dim=16)),
}
GPT2_BASE = dict(vocab_size=97, n_embd=32, n_layer=2, n_head=4, n_positions=160)


@functools.cache
def model_of(name):
    model_type, architecture, extra = CASES[name]
    fields = {**(GPT2_BASE if model_type == "gpt2" else BASE), **extra}
    kernels = {"experts_implementation": "eager"} if model_type == "mixtral" else {}
    config = transformers.AutoConfig.for_model(model_type, **fields, **kernels)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return getattr(transformers, architecture)(config).eval()


def report_of(name, tmp_path, tokens):
    model_type, architecture, extra = CASES[name]
    fields = {**(GPT2_BASE if model_type == "gpt2" else BASE), **extra}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": model_type, "architectures": [architecture], **fields}))
    return import_model(path, values={"T": tokens}).report


@pytest.mark.parametrize("name", sorted(CASES))
def test_params(name, tmp_path):
    model, report = model_of(name), report_of(name, tmp_path, 16)
    unique = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    assert report.value(report.total.params) == unique
    blocks = [m for m in model.modules() if type(m).__name__ == "MixtralSparseMoeBlock"]
    if blocks:  # one expert's slice of the stacked gate_up_proj and down_proj, E - k of them per layer unused
        experts, per_token = CASES[name][2]["num_local_experts"], CASES[name][2]["num_experts_per_tok"]
        one = sum(b.experts.gate_up_proj[0].numel() + b.experts.down_proj[0].numel() for b in blocks)
        assert report.value(report.active_params) == unique - (experts - per_token) * one


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("tokens", [16, 128])
def test_prefill_flops(name, batch, tokens, tmp_path):
    model, report = model_of(name), report_of(name, tmp_path, tokens)
    counter = FlopCounterMode(display=False)
    torch.manual_seed(1)
    with counter, torch.no_grad():
        model(torch.randint(0, 97, (batch, tokens)))
    torch_total = report.value(recount_with(report, "torch").total)
    # eager attention computes every TxT score (sliding window and causal masks applied after): the torch
    # convention's full scores; the rotary cos / sin tables, norms, softmax, Gemma's embedding scale have no
    # FlopCounterMode formula; the eager experts run their mm on the B·T·k routed rows, whatever the routing
    assert counter.get_total_flops() == batch * torch_total


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("batch", [1, 2])
def test_a_decode_step_after_16_tokens(name, batch, tmp_path):
    """Gemma's embedding scale and Mixtral's experts act per position; a sliding window's cache (W = 8 in the window
    cases) keeps the last W - 1 tokens, so the step reads min(P, W - 1) + 1 keys: 8 at P = 16, not 17."""
    from analyzer.api import analyze_phase
    from analyzer.importers import import_model
    from analyzer.phases import kv_cache

    model = model_of(name)
    report_of(name, tmp_path, 16)  # writes config.json
    torch.manual_seed(2)
    with torch.no_grad():
        prefill = model(torch.randint(0, 97, (batch, 16)), use_cache=True)
        # what the step reads (the step then updates this cache in place): 16 tokens' keys and values per layer, 7
        # (W - 1) in a window
        cached = sum(layer.keys.numel() + layer.values.numel() for layer in prefill.past_key_values.layers)
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.randint(0, 97, (batch, 1)), past_key_values=prefill.past_key_values, use_cache=True)
    # T = 16 as the converted spec's default: the decode step's P defaults to it (T = 1 new token)
    report = analyze_phase(import_model(tmp_path / "config.json", values={"T": 16}).spec, "spec", "decode")
    assert counter.get_total_flops() == batch * report.value(recount_with(report, "torch").total)
    assert cached == report.value(kv_cache(report, batch).read)


@pytest.mark.parametrize(("name", "published", "active"), [("gemma-2b", 2_506_172_416, None),
                                                           ("gemma-7b", 8_537_680_896, None),
                                                           ("mixtral-8x7b", 46_702_792_704, 12_879_925_248)])
def test_published_sizes_on_the_meta_device(name, published, active, tmp_path):
    """The published sizes of tests/test_importers_hf.py, built by transformers' config class and model on the meta
    device: its unique parameters (and, for Mixtral, those less 6 of the 8 experts per layer) are the public figures
    and nnspec's counts."""
    from tests.test_importers_hf import GEMMA_2B, GEMMA_7B, MIXTRAL_8X7B

    fields = {"gemma-2b": GEMMA_2B, "gemma-7b": GEMMA_7B, "mixtral-8x7b": MIXTRAL_8X7B}[name]
    config = transformers.AutoConfig.for_model(fields["model_type"], **{
        k: v for k, v in fields.items() if k not in ("model_type", "architectures", "rope_theta")})
    with torch.device("meta"):
        model = getattr(transformers, fields["architectures"][0])(config)
    unique = {id(p): p.numel() for p in model.parameters()}
    assert sum(unique.values()) == published
    (tmp_path / "c.json").write_text(json.dumps(fields))
    report = import_model(tmp_path / "c.json").report
    assert report.value(report.total.params) == published
    if active is not None:
        experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
        per_token = experts * config.num_experts_per_tok // config.num_local_experts
        assert sum(unique.values()) - experts + per_token == active == report.value(report.active_params)
