"""analyze config.json of `bert` configs (analyzer/importers/hf_bert.py) and the written specs/llm/bert.yaml: counts
worked by hand, the published bert-base-uncased config (tests/fixtures/hf/, copied from the model hub), refusals
(exit 2 naming the field), and ReversibleEmbedding's use_bias (BERT's MLM decoder bias). No torch, no transformers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.conventions import recount_with
from analyzer.errors import NNSpecError
from analyzer.importers import ModelImportError, import_model
from analyzer.training import training_step

ROOT = Path(__file__).parent.parent
HF = Path(__file__).parent / "fixtures" / "hf"
TINY = dict(model_type="bert", vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=64)


def imported(tmp_path, name="c.json", values=None, **fields):
    (tmp_path / name).write_text(json.dumps({**TINY, **fields}))
    return import_model(tmp_path / name, values=values).report


def total(report, what="params"):
    return report.value(getattr(report.total, what))


# Tiny sizes: d = 32, I = 48, N = 2, h = 4 (head_dim 8), V = 97, 64 positions, 2 token types.
# embeddings: word 97·32 = 3,104 + token types 2·32 = 64 + positions 64·32 = 2,048 + LayerNorm 2·32 = 64 = 5,280
# a layer: q, k, v, o 4·(32·32 + 32) = 4,224; two LayerNorms 2·64 = 128; intermediate 32·48 + 48 = 1,584;
#   output 48·32 + 32 = 1,568: 7,504; x2 = 15,008
EMBEDDINGS, LAYERS = 5_280, 15_008
POOLER = 32 * 32 + 32  # 1,056
MLM_HEAD = 32 * 32 + 32 + 2 * 32 + 97  # transform dense 1,056 + its LayerNorm 64 + the decoder's bias 97 = 1,217


def test_tiny_bert_model_and_masked_lm_by_hand(tmp_path):
    assert total(imported(tmp_path, architectures=["BertModel"])) == EMBEDDINGS + LAYERS + POOLER == 21_344
    assert total(imported(tmp_path)) == 21_344  # no architectures: AutoModel's BertModel, with the pooler
    # the decoder's weight is word_embeddings' (tied, counted there): only its bias is new
    assert total(imported(tmp_path, architectures=["BertForMaskedLM"])) == EMBEDDINGS + LAYERS + MLM_HEAD == 21_505


def test_tiny_macs_and_the_torch_convention_by_hand(tmp_path):
    # T = 16, a layer: q/k/v/o 4·T·d² = 65,536; scores and attention·V over every key (not causal, no mask):
    # 2·h·T²·(d/h) = 2·256·32 = 16,384; intermediate and output T·d·I = 24,576 each: 131,072; x2 = 262,144
    model = imported(tmp_path, architectures=["BertModel"], values={"T": 16})
    assert total(model, "macs") == 262_144 + 32 * 32  # + the pooler on the first token only: 263,168
    mlm = imported(tmp_path, "m.json", architectures=["BertForMaskedLM"], values={"T": 16})
    assert total(mlm, "macs") == 262_144 + 16 * 32 * 32 + 16 * 32 * 97  # transform + the decoder at every position
    for report in (model, mlm):  # every MAC is a matmul FlopCounterMode counts, 2 each; nothing else is counted
        assert report.value(recount_with(report, "torch").total) == 2 * total(report, "macs")
    # the full T x T scores in both conventions: the default's softmax is h·(3·T² - T) per layer
    attention = mlm.layers["layers.each.attention"]
    assert mlm.value(attention.counts.activation) == 2 * 4 * (3 * 16 * 16 - 16)
    # the decoder's bias adds T·V, its dot products T·V·(2d - 1)
    decoder = mlm.layers["decoder"].counts
    assert (mlm.value(decoder.bias), mlm.value(decoder.dot)) == (16 * 97, 16 * 97 * 63)


def test_bert_base_published_config():
    # bert-base-uncased: V 30522, d 768, I 3072, N 12, h 12, 512 positions, 2 token types; the file names
    # BertForMaskedLM. embeddings: 30522·768 = 23,440,896 + 2·768 = 1,536 + 512·768 = 393,216 + LayerNorm 1,536
    # = 23,837,184. A layer: 4·(768² + 768) = 2,362,368; LayerNorms 3,072; 768·3072 + 3072 = 2,362,368;
    # 3072·768 + 768 = 2,360,064: 7,087,872; x12 = 85,054,464.
    # BertModel: + the pooler 768² + 768 = 590,592: 109,482,240 (the published figure).
    # BertForMaskedLM: no pooler; + transform 590,592 + LayerNorm 1,536 + the decoder's bias 30,522: 109,514,298.
    report = import_model(HF / "bert-base-uncased.json").report
    assert total(report) == 23_837_184 + 85_054_464 + 590_592 + 1_536 + 30_522 == 109_514_298
    config = json.loads((HF / "bert-base-uncased.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]


def test_bert_base_model_and_the_written_spec(tmp_path):
    config = json.loads((HF / "bert-base-uncased.json").read_text()) | {"architectures": ["BertModel"]}
    (tmp_path / "bert.json").write_text(json.dumps(config))
    imported_report = import_model(tmp_path / "bert.json").report
    written = analyze(ROOT / "specs/llm/bert.yaml")
    assert total(imported_report) == total(written) == 23_837_184 + 85_054_464 + 590_592 == 109_482_240
    # the same model: the same formulas in the same symbols (T 512 both)
    for what in ("params", "macs", "flops"):
        assert getattr(imported_report.total, what) == getattr(written.total, what), what


def test_set_and_convert_read_back(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({**TINY, "architectures": ["BertForMaskedLM"]}))
    out = tmp_path / "m.yaml"
    run = subprocess.run([sys.executable, "-m", "analyzer", "convert", str(tmp_path / "c.json"), "-o", str(out),
                          "--set", "T=16"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = analyze(str(out))
    assert total(report) == 21_505 and "T: {default: 16" in out.read_text()


def test_fields_that_change_no_count(tmp_path):
    base = imported(tmp_path, architectures=["BertForMaskedLM"], values={"T": 16})
    # chunk_size_feed_forward: the feed-forward on 8 positions at a time, concatenated; pad_token_id: padding_idx
    # of the word embedding (its row still a parameter); dropout probabilities: no count in eval
    same = imported(tmp_path, "s.json", architectures=["BertForMaskedLM"], values={"T": 16},
                    chunk_size_feed_forward=8, pad_token_id=3, hidden_dropout_prob=0.3, use_cache=False,
                    position_embedding_type="absolute")
    for what in ("params", "macs", "flops"):
        assert total(same, what) == total(base, what), what
    three_types = imported(tmp_path, "t.json", type_vocab_size=3)
    assert total(three_types) == 21_344 + 32  # one more token-type row


@pytest.mark.parametrize(("fields", "message"), [
    ({"architectures": ["BertForSequenceClassification"]}, "architectures.*supported: BertModel.*BertForMaskedLM"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type.*relative_key.*absolute"),
    ({"is_decoder": True}, "is_decoder"),
    ({"add_cross_attention": True}, "add_cross_attention"),
    ({"architectures": ["BertForMaskedLM"], "tie_word_embeddings": False}, "tie_word_embeddings"),
    ({"hidden_act": "gelu_fast"}, "hidden_act.*gelu_fast"),
    ({"num_attention_heads": 5}, "num_attention_heads.*does not divide hidden_size"),
    ({"type_vocab_size": 0}, "type_vocab_size.*positive integer"),
    ({"chunk_size_feed_forward": -1}, "chunk_size_feed_forward"),
])
def test_refusals_name_the_field(tmp_path, fields, message):
    with pytest.raises(ModelImportError, match=message):
        imported(tmp_path, **fields)


@pytest.mark.parametrize(("fields", "field"), [({"architectures": ["BertForPreTraining"]}, "architectures"),
                                               ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
                                               ({"is_decoder": True}, "is_decoder")])
def test_cli_exit_2_naming_the_field_and_nothing_written(tmp_path, fields, field):
    (tmp_path / "c.json").write_text(json.dumps({**TINY, **fields}))
    out = tmp_path / "m.yaml"
    run = subprocess.run([sys.executable, "-m", "analyzer", "convert", str(tmp_path / "c.json"), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and field in run.stderr and not out.exists()


@pytest.mark.parametrize("spec", ["bert.yaml", "mlm.yaml"])
def test_decode_is_refused(tmp_path, spec):
    # BertModel's pooler reads the first position (Cropping1D, not per position); BertForMaskedLM's attention is not
    # causal: neither has a decode step
    path = ROOT / "specs/llm/bert.yaml"
    if spec == "mlm.yaml":
        (tmp_path / "c.json").write_text(json.dumps({**TINY, "architectures": ["BertForMaskedLM"]}))
        path = tmp_path / spec
        # T = 16: the decode step's P defaults to it, P + 1 within the 64 positions
        subprocess.run([sys.executable, "-m", "analyzer", "convert", str(tmp_path / "c.json"), "-o", str(path),
                        "--set", "T=16"], check=True, capture_output=True)
    run = subprocess.run([sys.executable, "-m", "analyzer", str(path), "--phase", "decode"], capture_output=True,
                         text=True)
    assert run.returncode == 2
    assert ("first_token" if spec == "bert.yaml" else "an encoder") in run.stderr


# -- ReversibleEmbedding's use_bias (the tied decoder with its own bias) --

HEAD = """
symbols: {T: 5, V: 11, d: 3}
inputs: [{name: ids, shape: [T]}]
layers:
  - {type: ReversibleEmbedding, name: table, input_dim: V, output_dim: d, inputs: ids}
  - {type: ReversibleEmbedding, name: head, reverse: true, tie_weights: TIED, tied_to: TO, use_bias: true,
     input_dim: V, output_dim: d}
"""


def head_report(tmp_path, tied):
    path = tmp_path / "head.yaml"
    path.write_text(HEAD.replace("TIED", str(tied).lower()).replace("TO", "table" if tied else "null"))
    return analyze(path)


@pytest.mark.parametrize("tied", [True, False])
def test_reversible_embedding_bias_by_hand(tmp_path, tied):
    report = head_report(tmp_path, tied)
    head = report.layers["head"].counts
    # T = 5 positions, V = 11 logits of d = 3 terms: 165 MACs; dot 55·(2·3 - 1) = 275; the bias 55 adds;
    # params: the bias 11, plus the table 33 when untied
    assert report.value(head.params) == 11 + (0 if tied else 33)
    assert (report.value(head.macs), report.value(head.dot), report.value(head.bias)) == (165, 275, 55)
    recount = recount_with(report, "torch").layers["head"].expr  # addmm: the product only, 2 per MAC
    assert report.value(recount) == 330
    ptflops = report.value(recount_with(report, "ptflops").layers["head"].expr)
    assert ptflops == (0 if tied else 165 + 55)  # tied: F.linear unpatched; untied nn.Linear's hook adds the bias
    thop = report.value(recount_with(report, "thop").layers["head"].expr)
    assert thop == (0 if tied else 165)  # count_linear: in_features · outputs, no bias
    # training, B = 2, R = 10 rows: dL/db 11 sums of 10 rows, 11·9 = 99 adds (grad weight); untied also
    # dL/dW 33 gradients of 10 terms, 33·19 = 627
    step = training_step(report, batch=2)
    assert step.report.value(step.layers["head"].grad_weight) == 99 + (0 if tied else 627)


def test_reversible_embedding_bias_only_in_reverse(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("symbols: {T: 5}\ninputs: [{name: ids, shape: [T]}]\nlayers:\n"
                    "  - {type: ReversibleEmbedding, input_dim: 11, output_dim: 3, use_bias: true}\n")
    with pytest.raises(NNSpecError, match="use_bias is for the reverse use"):
        analyze(path)
