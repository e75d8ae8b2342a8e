"""Hugging Face `bert` configs -> an nnspec spec of BertModel or BertForMaskedLM (transformers 5.25,
models/bert/modeling_bert.py), read as JSON like the decoders of hf_config.py.

BertEmbeddings: word + token_type + absolute position embeddings, LayerNorm (dropout: no count). N BertLayers,
post-norm: self-attention (query / key / value / output nn.Linear with bias, every head its own key/value head,
not causal: no mask is given, so every query sees all T keys), LayerNorm(dense(x) + x); the feed-forward
LayerNorm(dense(act(dense(x))) + x). `architectures[0]` picks the head: BertModel (or no architectures, as
AutoModel builds it) the pooler, tanh(dense(first token)), written as Cropping1D to the first position and a Dense;
BertForMaskedLM no pooler (add_pooling_layer=False) and BertOnlyMLMHead: LayerNorm(act(dense(x))), then the decoder,
whose weight is word_embeddings' (tied) and whose bias (cls.predictions.bias, V) is its own: a tied reverse
ReversibleEmbedding with use_bias, the logits at every position. Any other class is refused, naming these.

This module imports nothing of hf_config.py (which imports build_bert from here: the other way would be a circle);
`config` is an hf_config.Config, used through its methods.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from analyzer.importers.document import SymbolDoc, flow

HEADS = ("BertModel", "BertForMaskedLM")


@dataclass
class BertSizes:
    """The symbols of a BERT spec: T, N, d_model, I, h, V (defaults: the config's sizes)."""

    layers: int
    width: int
    inner: int
    heads: int
    vocab: int
    positions: int

    def symbols(self) -> list[SymbolDoc]:
        return [SymbolDoc("T", self.positions, "sequence length (tokens; at most max_position_embeddings)"),
                SymbolDoc("N", self.layers, "encoder layers (num_hidden_layers)"),
                SymbolDoc("d_model", self.width, "model width (hidden_size)"),
                SymbolDoc("I", self.inner, "feed-forward width (intermediate_size)"),
                SymbolDoc("h", self.heads, "attention heads (num_attention_heads; d_model must be divisible by h)"),
                SymbolDoc("V", self.vocab, "vocabulary (vocab_size)")]


def bert_head(config: Any) -> str:
    """The class architectures[0] names: BertModel or BertForMaskedLM; none given: BertModel (AutoModel)."""
    names = config.values.get("architectures")
    if not names:
        config.notes.append("no 'architectures': BertModel (AutoModel), with the pooler")
        return "BertModel"
    if not isinstance(names, list) or not isinstance(names[0], str):
        raise config.error("architectures", "must be a list of class names")
    if len(names) > 1:
        config.notes.append(f"architectures: {names[0]} read, {', '.join(names[1:])} ignored")
    if names[0] not in HEADS:
        raise config.error("architectures", f"{names[0]} is not modelled (supported: BertModel with the pooler, "
                           "BertForMaskedLM with the MLM head)")
    return names[0]


def check_bert(config: Any) -> None:
    """Refuse every field value that builds another architecture than the one written."""
    kind = config.values["position_embedding_type"]
    if kind != "absolute":
        # transformers 5.25's BertSelfAttention has no relative position code: such a config was written for an
        # older release, whose relative_key attention adds a distance embedding and score terms nnspec does not count
        raise config.error("position_embedding_type", f"{json.dumps(kind)} is not modelled (supported: \"absolute\", "
                           "learned absolute positions)")
    for key, what in (("is_decoder", "is_decoder makes the self-attention causal with a key/value cache (a decoder)"),
                      ("add_cross_attention", "cross-attention over encoder_hidden_states is not modelled")):
        if config.flag(key):
            raise config.error(key, f"true is not modelled: {what} (supported: false, the encoder)")
    chunk = config.values["chunk_size_feed_forward"]
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        raise config.error("chunk_size_feed_forward", f"must be a non-negative integer, got {json.dumps(chunk)}")
    if chunk:
        config.notes.append(f"chunk_size_feed_forward {chunk}: the feed-forward runs on {chunk} positions at a time "
                            "(T must be a multiple of it), the same params and FLOPs")


def build_bert(config: Any) -> tuple[str, BertSizes]:
    """The spec text of a BERT config and its sizes."""
    check_bert(config)
    head = bert_head(config)
    width, heads = config.size("hidden_size"), config.size("num_attention_heads")
    if width % heads:
        raise config.error("num_attention_heads", f"{heads} does not divide hidden_size {width}")
    positions = config.size("max_position_embeddings")
    sizes = BertSizes(config.size("num_hidden_layers"), width, config.size("intermediate_size"), heads,
                      config.size("vocab_size"), positions)
    if head == "BertForMaskedLM" and not config.flag("tie_word_embeddings"):
        raise config.error("tie_word_embeddings", "false is not modelled: untied, BertForMaskedLM's decoder keeps its "
                           "own weight and bias and cls.predictions.bias stays a parameter that no output reads "
                           "(supported: true)")
    act = config.activation("hidden_act")
    eps = config.epsilon("layer_norm_eps")
    types = config.size("type_vocab_size")
    lines = [f"# Imported by nnspec from {config.source} (model_type bert, {head}); the symbols' defaults are the "
             "config's sizes, missing fields transformers' defaults.",
             "# query / key / value / output are nn.Linear with bias, one key/value head per query head; "
             "token_type_embeddings has type_vocab_size rows.",
             f"name: {flow(head)}", "symbols:"]
    for s in sizes.symbols():
        lines.append(f"  {s.name}: {flow({'default': s.default, 'description': s.description})}")
    block = [flow(dict(type="GroupedQueryAttention", name="attention", inputs=["x", "x"], head_dim="d_model / h",
                       num_query_heads="h", num_key_value_heads="h", use_bias=True, causal=False)),
             flow(dict(type="Add", name="attention_residual", inputs=["x", "attention"])),
             flow(dict(type="LayerNormalization", name="attention_norm", epsilon=eps)),
             flow(dict(type="Dense", name="intermediate", units="I", activation=act)),
             flow(dict(type="Dense", name="output", units="d_model")),
             flow(dict(type="Add", name="output_residual", inputs=["attention_norm", "output"])),
             flow(dict(type="LayerNormalization", name="output_norm", epsilon=eps))]
    lines += ["blocks:", "  encoder_layer:", "    layers:", *(f"      - {line}" for line in block),
              "inputs:", "  - {name: input_ids, shape: [T]}", "  - {name: token_type_ids, shape: [T]}", "layers:"]
    layers = [dict(type="ReversibleEmbedding", name="word_embeddings", input_dim="V", output_dim="d_model",
                   inputs="input_ids"),
              dict(type="Embedding", name="token_type_embeddings", input_dim=types, output_dim="d_model",
                   inputs="token_type_ids"),
              dict(type="PositionEmbedding", name="position_embeddings", sequence_length=positions,
                   inputs="word_embeddings"),
              dict(type="Add", name="embeddings", inputs=["word_embeddings", "token_type_embeddings",
                                                          "position_embeddings"]),
              dict(type="LayerNormalization", name="embeddings_norm", epsilon=eps)]
    tail: list[dict[str, Any] | str] = ["{block: encoder_layer, name: layers, repeat: N}"]
    if head == "BertModel":
        tail += [dict(type="Cropping1D", name="first_token", cropping=[0, "T - 1"]),
                 dict(type="Dense", name="pooler", units="d_model", activation="tanh")]
        outputs = "outputs: [layers, pooler]"
    else:
        tail += [dict(type="Dense", name="transform", units="d_model", activation=act),
                 dict(type="LayerNormalization", name="transform_norm", epsilon=eps),
                 dict(type="ReversibleEmbedding", name="decoder", reverse=True, tie_weights=True,
                      tied_to="word_embeddings", use_bias=True, input_dim="V", output_dim="d_model")]
        outputs = "outputs: [decoder]"
    lines += [f"  - {line if isinstance(line, str) else flow(line)}" for line in [*layers, *tail]]
    lines.append(outputs)
    return "\n".join(lines) + "\n", sizes
