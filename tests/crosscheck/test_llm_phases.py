"""Issue 17, phases against transformers itself: a tiny LlamaForCausalLM (eager attention, float32) built with the
sizes of specs/llm/llama.yaml, whose unique parameters equal nnspec's params; its prefill under FlopCounterMode
equals `--convention torch` at B in {1, 2} and T in {16, 128}; one decode step after a prefill of 16 tokens equals
`--phase decode --convention torch` at P = 16; and the key/value cache it returns holds nnspec's kv_cache elements
(written in the prefill; written + read after the decode step). GQA and multi-head configs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from crosscheck_harness import ROOT  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from analyzer import analyze  # noqa: E402
from analyzer.conventions import recount_with  # noqa: E402
from analyzer.phases import kv_cache  # noqa: E402

SPEC = ROOT / "specs/llm/llama.yaml"
CONFIGS = {"gqa": dict(N=2, d_model=32, I=40, h=4, kv=2, V=50), "mha": dict(N=3, d_model=48, I=24, h=2, kv=2, V=101)}


def llama(sizes: dict[str, int]):
    config = transformers.LlamaConfig(
        vocab_size=sizes["V"], hidden_size=sizes["d_model"], intermediate_size=sizes["I"],
        num_hidden_layers=sizes["N"], num_attention_heads=sizes["h"], num_key_value_heads=sizes["kv"],
        max_position_embeddings=512, rms_norm_eps=1e-5, tie_word_embeddings=False, attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def counted(model, **inputs):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(**inputs, use_cache=True)
    return counter.get_total_flops(), out


def cache_elements(cache) -> int:
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


@pytest.mark.parametrize("name", CONFIGS)
def test_params_are_the_models_unique_parameters(name):
    sizes = CONFIGS[name]
    report = analyze(SPEC, T=16, **sizes)
    model = llama(sizes)
    unique = {p.data_ptr(): p.numel() for p in model.parameters()}
    assert report.value(report.total.params) == sum(unique.values())


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("tokens", [16, 128])
def test_prefill_and_its_cache(name, batch, tokens):
    sizes = CONFIGS[name]
    report = analyze(SPEC, T=tokens, **sizes)
    model = llama(sizes)
    flops, out = counted(model, input_ids=torch.randint(0, sizes["V"], (batch, tokens)))
    assert flops == batch * report.value(recount_with(report, "torch").total)
    cache = kv_cache(report, batch)
    assert cache_elements(out.past_key_values) == report.value(cache.written) and report.value(cache.read) == 0


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("batch", [1, 2])
def test_a_decode_step_after_16_tokens(name, batch):
    sizes = CONFIGS[name]
    model = llama(sizes)
    _, prefill = counted(model, input_ids=torch.randint(0, sizes["V"], (batch, 16)))
    flops, out = counted(model, input_ids=torch.randint(0, sizes["V"], (batch, 1)), past_key_values=prefill.past_key_values)
    report = analyze(SPEC, phase="decode", P=16, **sizes)
    assert flops == batch * report.value(recount_with(report, "torch").total)
    assert cache_elements(out.past_key_values) == report.value(kv_cache(report, batch).held)
