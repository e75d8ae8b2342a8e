"""Tiny BERT configs built by transformers (BertModel, BertForMaskedLM; eager attention, float32): nnspec's params of
`analyze config.json` = the model's unique parameters (the MLM decoder's weight tied to word_embeddings, counted
once), and the torch convention's FLOPs = FlopCounterMode of a forward at B in {1, 2}, T in {16, 128}, with
token_type_ids given and without (BertEmbeddings then reads its all-zero buffer: the same lookup). Also the
hand-written specs/llm/bert.yaml: its torch export's params and FlopCounterMode per layer and in total."""

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from crosscheck_harness import (  # noqa: E402
    ROOT,
    assert_torch_flops_per_row,
    cases_of,
    load_sizes,
    torch_export_with_its_params_checked,
)
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from analyzer.conventions import recount_with  # noqa: E402
from analyzer.export.plan import plan_export  # noqa: E402
from analyzer.importers import import_model  # noqa: E402

BASE = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=128)
CASES = {
    "model-pooler": ("BertModel", {}),
    "model-3-types-wide": ("BertModel", dict(type_vocab_size=3, intermediate_size=72, num_attention_heads=2,
                                             hidden_act="relu")),
    "mlm-tied": ("BertForMaskedLM", {}),
    "mlm-1-type-3-layers": ("BertForMaskedLM", dict(type_vocab_size=1, num_hidden_layers=3, intermediate_size=40,
                                                    layer_norm_eps=1e-5)),
    "mlm-chunked-ffn": ("BertForMaskedLM", dict(chunk_size_feed_forward=8)),
}


def build(name, tmp_path, tokens):
    architecture, extra = CASES[name]
    fields = {**BASE, **extra}
    config = transformers.BertConfig(**fields)
    config._attn_implementation = "eager"
    model = getattr(transformers, architecture)(config).eval()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "bert", "architectures": [architecture], **fields}))
    return model, fields, import_model(path, values={"T": tokens}).report


@pytest.mark.parametrize("name", sorted(CASES))
def test_params(name, tmp_path):
    model, _, report = build(name, tmp_path, 16)
    assert report.value(report.total.params) == sum(p.numel() for p in model.parameters())  # tied once


@pytest.mark.parametrize("tokens", [16, 128])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_convention_is_flop_counter_mode(name, batch, tokens, tmp_path):
    model, fields, report = build(name, tmp_path, tokens)
    expected = batch * report.value(recount_with(report, "torch").total)
    ids = torch.randint(0, fields["vocab_size"], (batch, tokens))
    types = torch.randint(0, fields.get("type_vocab_size", 2), (batch, tokens))
    for kwargs in ({"token_type_ids": types}, {}):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(input_ids=ids, **kwargs)
        # eager attention computes all T x T scores (no mask given: bidirectional); embeddings, LayerNorm, gelu,
        # tanh, softmax and the bias adds have no FlopCounterMode formula
        assert counter.get_total_flops() == expected, kwargs


SPEC = "specs/llm/bert.yaml"


@pytest.mark.parametrize("values", cases_of(load_sizes()[SPEC]), ids=str)
def test_written_spec_on_its_torch_export(values):
    plan, report, model = torch_export_with_its_params_checked(ROOT / SPEC, values)
    counter = FlopCounterMode(display=False)
    ids = torch.randint(0, values["V"], (1, values["T"])).float()
    types = torch.randint(0, 2, (1, values["T"])).float()
    with torch.no_grad(), counter:
        model(ids, types)
    assert_torch_flops_per_row(model, plan, report, counter)


# BertForMaskedLM's spec as `analyze convert` writes it, at tiny sizes: its decoder is the one ReversibleEmbedding
# with a bias tied to word_embeddings (specs/llm/bert.yaml, the BertModel, has none), so its training step is
# checked here: --training --convention torch = FlopCounterMode of the export's forward and backward, and the saved
# activations = the storages autograd keeps, with nothing frozen and with the decoder (its bias) frozen.
MLM = {"model_type": "bert", "architectures": ["BertForMaskedLM"], **BASE, "num_hidden_layers": 1}


def mlm_spec(tmp_path):
    from analyzer.importers.hf_config import hf_spec_text

    text, _, _ = hf_spec_text(MLM, "mlm.json", {"T": 7})
    path = tmp_path / "mlm.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("frozen", [None, "decoder", "word_embeddings"])
def test_mlm_training_step_on_its_torch_export(frozen, tmp_path, monkeypatch):
    from crosscheck_harness import torch_model_to_train

    from analyzer import analyze
    from analyzer.conventions.measure import example_inputs
    from analyzer.training import training_step
    from analyzer.training_memory import saved_activations

    path = mlm_spec(tmp_path)
    report = analyze(path)
    plan = plan_export(path, {})
    frozen_rows = (frozen,) if frozen else ()
    flops_step = training_step(report, convention="torch", frozen=frozen_rows)
    saved_step = training_step(report, frozen=frozen_rows)
    saved_total = sum(saved_activations(saved_step).values())
    for batch in (1, 2):
        model = torch_model_to_train(plan, frozen, train=False)
        inputs = example_inputs(model, {x.attr: x.shape for x in plan.inputs}, batch=batch)
        counter = FlopCounterMode(display=False)
        with counter:
            model(*inputs).sum().backward()
        assert flops_step.report.at(B=batch).value(flops_step.total("flops")) == counter.get_total_flops()
        model = torch_model_to_train(plan, frozen, train=True)
        weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
        storages: dict[int, int] = {}

        def pack(tensor, weights=weights, storages=storages):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in weights:
                storages.setdefault(storage.data_ptr(), storage.nbytes())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = model(*example_inputs(model, {x.attr: x.shape for x in plan.inputs}, batch=batch)).sum()
        del loss
        assert saved_step.report.at(B=batch).value(saved_total) == sum(storages.values())
