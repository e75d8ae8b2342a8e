"""Issue 17, MixtureOfExperts against transformers' MixtralForCausalLM (eager attention, float32) built with the
sizes of specs/llm/mixtral.yaml: params = the model's unique parameters; active params = those less (E - k) experts
of the module tree (one expert's slice of the stacked gate_up_proj and down_proj); the prefill under
FlopCounterMode = `--convention torch` at B in {1, 2} (the experts' mm on the P·k routed rows, whatever the
routing), with the experts' eager implementation. transformers 5.25's default, `grouped_mm`, runs the experts as one
aten._grouped_mm, which FlopCounterMode has no formula for: it then counts no expert FLOPs at all (checked too)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from crosscheck_harness import ROOT  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from analyzer import analyze  # noqa: E402
from analyzer.conventions import recount_with  # noqa: E402

SPEC = ROOT / "specs/llm/mixtral.yaml"
CONFIGS = {"8x2": dict(N=2, d_model=32, I=40, h=4, kv=2, E=8, k=2, V=50),
           "3x1-mha": dict(N=1, d_model=48, I=24, h=2, kv=2, E=3, k=1, V=101),
           "4x4": dict(N=2, d_model=16, I=8, h=2, kv=1, E=4, k=4, V=37)}


def mixtral(sizes, experts="eager"):
    config = transformers.MixtralConfig(
        vocab_size=sizes["V"], hidden_size=sizes["d_model"], intermediate_size=sizes["I"],
        num_hidden_layers=sizes["N"], num_attention_heads=sizes["h"], num_key_value_heads=sizes["kv"],
        num_local_experts=sizes["E"], num_experts_per_tok=sizes["k"], max_position_embeddings=256,
        tie_word_embeddings=False, attn_implementation="eager", experts_implementation=experts)
    torch.manual_seed(0)
    return transformers.MixtralForCausalLM(config).eval()


@pytest.mark.parametrize("name", CONFIGS)
def test_total_and_active_params(name):
    sizes = CONFIGS[name]
    report, model = analyze(SPEC, T=8, **sizes), mixtral(sizes)
    unique = {p.data_ptr(): p.numel() for p in model.parameters()}
    assert report.value(report.total.params) == sum(unique.values())
    experts = [m.experts for m in model.modules() if type(m).__name__ == "MixtralSparseMoeBlock"]
    one_expert = sum(e.gate_up_proj[0].numel() + e.down_proj[0].numel() for e in experts[:1])
    inactive = len(experts) * (sizes["E"] - sizes["k"]) * one_expert
    assert report.value(report.active_params) == sum(unique.values()) - inactive


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("batch", [1, 2])
def test_prefill_flops(name, batch):
    sizes = CONFIGS[name]
    report, model = analyze(SPEC, T=16, **sizes), mixtral(sizes)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(input_ids=torch.randint(0, sizes["V"], (batch, 16)))
    assert counter.get_total_flops() == batch * report.value(recount_with(report, "torch").total)


def test_flop_counter_mode_counts_no_expert_under_transformers_default_grouped_mm():
    sizes = CONFIGS["8x2"]
    report, model = analyze(SPEC, T=16, **sizes), mixtral(sizes, experts=None)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(input_ids=torch.randint(0, sizes["V"], (1, 16)))
    recount = recount_with(report, "torch")
    experts = sum(report.value(count.expr) for name, count in recount.layers.items() if name.endswith("block_sparse_moe"))
    # the router's mm (2·16·32·8 = 8,192 per layer) is all FlopCounterMode sees of each block
    assert counter.get_total_flops() == report.value(recount.total) - experts + 2 * 2 * 16 * 32 * 8
