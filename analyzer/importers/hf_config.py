"""Hugging Face `config.json` -> an nnspec spec, read as JSON: no torch or transformers needed.

A .json whose top level has `model_type` (and no Keras `class_name`) is a Hugging Face config. Missing fields
take the defaults of transformers' config class for that model_type (transformers 5.25:
`transformers/models/<type>/configuration_<type>.py`, the dataclass fields and `__post_init__`); the structure
is that of `modeling_<type>.py`. Both published forms are read: the current one (`rope_parameters`, `head_dim`)
and the older one (`rope_theta` / `partial_rotary_factor` / `rope_scaling` at the top level, no `head_dim`).

The spec has the structure of specs/llm/llama.yaml: symbols T (sequence), N (layers), d_model, I, h, kv, V
(defaults: the config's values), one decoder block repeated N times. `architectures[0]` picks the head:
`...ForCausalLM` / `...LMHeadModel` the LM head, `...Model` none. Every field that changes the architecture
in a way nnspec does not model is refused (ModelImportError, exit 2), naming the field and what is supported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.importers.document import LayerDoc, ModelImportError, SpecDocument, SymbolDoc, flow
from analyzer.importers.hf_bert import build_bert

MAX_CONFIG_BYTES = 16 * 1024 * 1024
DEFAULT_THETA = 10_000.0  # RotaryEmbeddingConfigMixin.default_theta (modeling_rope_utils.py)
# hidden_act values nnspec counts exactly (transformers' ACT2FN name -> nnspec activation): gelu is the exact erf
# form, gelu_new and gelu_pytorch_tanh the tanh approximation (gelu_tanh). gelu_fast, quick_gelu, ... : refused.
ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu_tanh",
               "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}

# The config class's defaults (the dataclass fields of configuration_<type>.py) that change a count.
LLAMA = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
             num_attention_heads=32, num_key_value_heads=None, head_dim=None, hidden_act="silu",
             max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=False, attention_bias=False,
             mlp_bias=False)
MISTRAL = dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, head_dim=None, hidden_act="silu",
               max_position_embeddings=4096 * 32, rms_norm_eps=1e-6, tie_word_embeddings=False, sliding_window=4096)
QWEN2 = dict(vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32,
             num_attention_heads=32, num_key_value_heads=32, hidden_act="silu", max_position_embeddings=32768,
             rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False, sliding_window=4096,
             max_window_layers=28, layer_types=None)
GEMMA = dict(vocab_size=256000, hidden_size=3072, intermediate_size=24576, num_hidden_layers=28,
             num_attention_heads=16, num_key_value_heads=16, head_dim=256, hidden_act="gelu_pytorch_tanh",
             max_position_embeddings=8192, rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False,
             use_bidirectional_attention=None)
MIXTRAL = dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, head_dim=None, hidden_act="silu",
               max_position_embeddings=4096 * 32, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=None,
               num_experts_per_tok=2, num_local_experts=8, output_router_logits=False, router_aux_loss_coef=0.001,
               router_jitter_noise=0.0)
PHI3 = dict(vocab_size=32064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
            num_attention_heads=32, num_key_value_heads=None, hidden_act="silu", max_position_embeddings=4096,
            rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=None)
PHI = dict(vocab_size=51200, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
           num_attention_heads=32, num_key_value_heads=None, hidden_act="gelu_new", max_position_embeddings=2048,
           layer_norm_eps=1e-5, tie_word_embeddings=False, qk_layernorm=False)
GPT2 = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=None,
            activation_function="gelu_new", layer_norm_epsilon=1e-5, scale_attn_weights=True,
            scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False, add_cross_attention=False,
            tie_word_embeddings=True)
# BertConfig's fields, chunk_size_feed_forward PreTrainedConfig's; position_embedding_type is no field of 5.25's
# BertConfig (its attention has absolute positions only): read to refuse an older config's relative_key
BERT = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
            is_decoder=False, add_cross_attention=False, tie_word_embeddings=True, chunk_size_feed_forward=0,
            position_embedding_type="absolute")
# Fields of other model families that change the architecture; refused wherever they appear with a value.
FOREIGN = ("num_local_experts", "num_experts", "num_experts_per_tok", "moe_intermediate_size", "attn_logit_softcapping",
           "final_logit_softcapping", "use_qk_norm", "qk_layernorm", "cross_attention_layers")


class HFConfigError(ModelImportError):
    """ModelImportError of a config.json (the same exit 2)."""


@dataclass
class Config:
    """One config.json with its type's defaults filled in."""

    source: str
    model_type: str
    values: dict[str, Any]
    given: set[str]
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def error(self, key: str, message: str, hint: str | None = None) -> HFConfigError:
        return HFConfigError(f"{self.source}: model_type '{self.model_type}', field '{key}': {message}", hint=hint)

    def size(self, key: str, value: Any = None) -> int:
        value = self.values[key] if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(key, f"must be a positive integer, got {json.dumps(value)}")
        return value

    def flag(self, key: str) -> bool:
        value = self.values[key]
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {json.dumps(value)}")
        return value

    def epsilon(self, key: str) -> float:
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.error(key, f"must be a positive number, got {json.dumps(value)}")
        return float(value)

    def activation(self, key: str) -> str:
        name = self.values[key]
        if name not in ACTIVATIONS:
            raise self.error(key, f"activation {json.dumps(name)} has no exact nnspec count (supported: "
                             f"{', '.join(ACTIVATIONS)}); it is not approximated by another")
        return ACTIVATIONS[name]

    def refuse_unless(self, key: str, supported: Any, what: str) -> None:
        if self.values.get(key, supported) != supported:
            raise self.error(key, f"{json.dumps(self.values[key])} is not modelled: {what}")


# -- reading --

def hf_config_of(path: str | Path) -> dict[str, Any] | None:
    """The JSON object of `path` if it is a Hugging Face config (a .json with a top-level `model_type` and no
    Keras `class_name`), else None (the Keras importer reads it)."""
    file = Path(path)
    if file.suffix.lower() != ".json":
        return None
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            return None
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # the Keras reader says what is wrong with it
    if isinstance(data, dict) and "model_type" in data and "class_name" not in data:
        return data
    return None


def read_config(data: dict[str, Any], source: str) -> Config:
    model_type = data.get("model_type")
    if model_type not in MODEL_TYPES:
        if model_type in REFUSED_TYPES:
            raise HFConfigError(f"{source}: model_type '{model_type}': {REFUSED_TYPES[model_type]}")
        raise HFConfigError(f"{source}: model_type {json.dumps(model_type)} is not supported (supported: "
                            f"{', '.join(MODEL_TYPES)})")
    defaults, _ = MODEL_TYPES[model_type]
    values = {**defaults, **{k: v for k, v in data.items() if k in defaults or k in _READ_ALSO}}
    config = Config(source, model_type, values, set(data))
    for key in FOREIGN:
        if key in data and key not in defaults and data[key] not in (None, False, 0, []):
            raise config.error(key, f"{json.dumps(data[key])}: not modelled for {model_type} (mixture of experts "
                               "outside mixtral, logit soft-capping and q/k norms of other families are not read "
                               "from a config yet)")
    return config


_READ_ALSO = ("architectures", "head_dim", "rope_parameters", "rope_scaling", "rope_theta", "partial_rotary_factor")


def rope(config: Config, default_theta: float = DEFAULT_THETA) -> tuple[float, float]:
    """(rope_theta, partial_rotary_factor) as convert_rope_params_to_dict reads them: rope_parameters (or the
    older rope_scaling) first, then the top-level fields, then the default. Any rope_type is accepted: scaling
    (linear, dynamic, yarn, longrope, llama3) changes the cos / sin tables only, which depend on T and are not
    counted, so no count changes."""
    params = config.values.get("rope_scaling") or config.values.get("rope_parameters") or {}
    if not isinstance(params, dict):
        raise config.error("rope_parameters", "must be an object")
    if any(isinstance(v, dict) for v in params.values()):
        raise config.error("rope_parameters", "per-layer-type rope parameters (nested) are not read")
    theta = params.get("rope_theta", config.values.get("rope_theta", default_theta))
    factor = params.get("partial_rotary_factor", config.values.get("partial_rotary_factor", 1.0))
    for key, value in (("rope_theta", theta), ("partial_rotary_factor", factor)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise config.error(key, f"must be a positive number, got {json.dumps(value)}")
    if factor > 1:
        raise config.error("partial_rotary_factor", f"must be at most 1, got {factor}")
    kind = params.get("rope_type", params.get("type", "default"))
    if kind != "default":
        config.notes.append(f"rope_type {kind}: rotary scaling changes the cos / sin tables only, no count")
    return float(theta), float(factor)


def head(config: Config, causal_lm: tuple[str, ...] = ("ForCausalLM",)) -> bool:
    """True for an LM head (architectures[0] ends with ForCausalLM), False for the base model (ends with Model);
    no architectures: the base model, as AutoModel.from_config builds it."""
    names = config.values.get("architectures")
    if not names:
        config.notes.append("no 'architectures': the base model (AutoModel), no LM head")
        return False
    if not isinstance(names, list) or not isinstance(names[0], str):
        raise config.error("architectures", "must be a list of class names")
    if len(names) > 1:
        config.notes.append(f"architectures: {names[0]} read, {', '.join(names[1:])} ignored")
    name = names[0]
    if name.endswith(causal_lm):
        return True
    if name.endswith("Model"):
        return False
    raise config.error("architectures", f"{name} is not modelled (supported: ...{', ...'.join(causal_lm)} with the "
                       "LM head, ...Model without a head)")


# -- building --

@dataclass
class Sizes:
    """The symbols of the spec and the head's form."""

    layers: int
    width: int
    inner: int
    heads: int
    kv_heads: int
    vocab: int
    positions: int
    head_dim: int | None  # None: d_model / h
    lm_head: bool
    tied: bool
    experts: tuple[int, int] | None = None  # a mixture of experts: (num_local_experts, num_experts_per_tok)

    def symbols(self) -> list[SymbolDoc]:
        inner = "each expert's MLP width (intermediate_size)" if self.experts else "MLP width (intermediate_size)"
        rows = [SymbolDoc("T", min(4096, self.positions), "sequence length (tokens)"),
                SymbolDoc("N", self.layers, "decoder layers (num_hidden_layers)"),
                SymbolDoc("d_model", self.width, "model width (hidden_size)"),
                SymbolDoc("I", self.inner, inner),
                SymbolDoc("h", self.heads, "query heads (num_attention_heads)"),
                SymbolDoc("kv", self.kv_heads, "key/value heads (num_key_value_heads; must divide h)"),
                SymbolDoc("V", self.vocab, "vocabulary (vocab_size)")]
        if self.head_dim is not None:
            rows.append(SymbolDoc("hd", self.head_dim, "head_dim (not hidden_size / num_attention_heads)"))
        if self.experts is not None:
            rows += [SymbolDoc("E", self.experts[0], "experts (num_local_experts)"),
                     SymbolDoc("k", self.experts[1], "experts per token (num_experts_per_tok; at most E)")]
        return rows

    @property
    def hd(self) -> str:
        return "hd" if self.head_dim is not None else "d_model / h"


def attention_sizes(config: Config, width_key: str = "hidden_size", heads_key: str = "num_attention_heads",
                    kv_key: str = "num_key_value_heads") -> tuple[int, int, int | None]:
    """(heads, kv_heads, head_dim or None when it is hidden_size / heads), as __post_init__ fills them."""
    heads = config.size(heads_key)
    kv = heads if config.values.get(kv_key) is None else config.size(kv_key)
    if heads % kv:
        raise config.error(kv_key, f"{kv} does not divide num_attention_heads {heads}")
    width = config.size(width_key)
    explicit = config.values.get("head_dim")
    hd = width // heads if explicit is None else config.size("head_dim")
    if hd == width // heads and width % heads == 0:
        return heads, kv, None
    return heads, kv, hd


def layer_line(**fields: Any) -> str:
    return flow(fields)


def decoder_spec(config: Config, sizes: Sizes, block: list[str], norm: str, embedding: list[str] | None = None,
                 lm_head: str | None = None, comments: tuple[str, ...] = ()) -> str:
    """The spec text: symbols, the decoder block, embed_tokens, N blocks, the final norm, the head."""
    lines = [f"# Imported by nnspec from {config.source} (model_type {config.model_type}); the symbols' defaults "
             "are the config's sizes, missing fields transformers' defaults.", *(f"# {c}" for c in comments),
             f"name: {flow(config.model_type)}", "symbols:"]
    for s in sizes.symbols():
        lines.append(f"  {s.name}: {flow({'default': s.default, 'description': s.description})}")
    lines += ["blocks:", "  decoder_layer:", "    layers:", *(f"      - {line}" for line in block),
              "inputs:", "  - {name: input_ids, shape: [T]}", "layers:"]
    first = embedding or [layer_line(type="ReversibleEmbedding", name="embed_tokens", input_dim="V",
                                     output_dim="d_model", inputs="input_ids")]
    lines += [f"  - {line}" for line in first]
    lines += ["  - {block: decoder_layer, name: layers, repeat: N}", f"  - {norm}"]
    if sizes.lm_head:
        if lm_head is None:
            tied = {"tie_weights": True, "tied_to": "embed_tokens"} if sizes.tied else {"tie_weights": False}
            lm_head = layer_line(type="ReversibleEmbedding", name="lm_head", reverse=True, **tied, input_dim="V",
                                 output_dim="d_model")
        lines.append(f"  - {lm_head}")
    return "\n".join(lines) + "\n"


def llama_family(config: Config, *, qkv_bias: bool, o_bias: bool, mlp_bias: bool, window: int | None,
                 plus_one: bool = False, default_theta: float = DEFAULT_THETA, comments: tuple[str, ...] = (),
                 embedding_scale: float | None = None,
                 experts: tuple[int, int] | None = None) -> tuple[str, Sizes]:
    """Llama, Mistral, Qwen2, Gemma, Phi3, Mixtral: pre-norm RMSNorm, GQA with rotary, gated MLP (Mixtral: a
    mixture of `experts` = (E, k) gated MLPs), untied or tied head; `embedding_scale`: the token embeddings
    multiplied by it (Gemma's sqrt(hidden_size))."""
    heads, kv, hd = attention_sizes(config)
    sizes = Sizes(config.size("num_hidden_layers"), config.size("hidden_size"), config.size("intermediate_size"),
                  heads, kv, config.size("vocab_size"), config.size("max_position_embeddings"), hd, head(config),
                  config.flag("tie_word_embeddings"), experts)
    theta, factor = rope(config, default_theta)
    eps = config.epsilon("rms_norm_eps")
    norm = dict(type="RMSNormalization", epsilon=eps, **({"scale_plus_one": True} if plus_one else {}))
    attention: dict[str, Any] = dict(type="GroupedQueryAttention", name="self_attn",
                                     inputs=["input_layernorm", "input_layernorm"], head_dim=sizes.hd,
                                     num_query_heads="h", num_key_value_heads="kv")
    if qkv_bias == o_bias:
        attention["use_bias"] = qkv_bias
    else:
        attention.update(query_bias=qkv_bias, key_bias=qkv_bias, value_bias=qkv_bias, output_bias=o_bias)
    attention["causal"] = True
    if window is not None:
        attention["sliding_window"] = window
    attention["rope_theta"] = theta
    if factor != 1:
        attention["partial_rotary_factor"] = factor
    if hd is not None and heads * hd != sizes.width:
        attention["output_dim"] = "d_model"
    block = [layer_line(name="input_layernorm", **norm), layer_line(**attention),
             layer_line(type="Add", name="attention_residual", inputs=["x", "self_attn"]),
             layer_line(name="post_attention_layernorm", **norm),
             layer_line(type="GatedMLP", name="mlp", intermediate_dim="I",
                        activation=config.activation("hidden_act"), use_bias=mlp_bias) if experts is None else
             layer_line(type="MixtureOfExperts", name="mlp", num_experts="E", experts_per_token="k",
                        intermediate_dim="I", activation=config.activation("hidden_act"), use_bias=mlp_bias),
             layer_line(type="Add", name="mlp_residual", inputs=["attention_residual", "mlp"])]
    embedding = None
    if embedding_scale is not None:
        embedding = [layer_line(type="ReversibleEmbedding", name="embed_tokens", input_dim="V", output_dim="d_model",
                                inputs="input_ids"),
                     layer_line(type="Rescaling", name="embed_scale", scale=embedding_scale)]
    return decoder_spec(config, sizes, block, layer_line(name="norm", **norm), embedding, comments=comments), sizes


def build_llama(config: Config) -> tuple[str, Sizes]:
    # pretraining_tp splits the projections' matmuls into slices in training only: the same count, not read
    bias = config.flag("attention_bias")
    return llama_family(config, qkv_bias=bias, o_bias=bias, mlp_bias=config.flag("mlp_bias"), window=None)


def build_mistral(config: Config) -> tuple[str, Sizes]:
    window = config.values["sliding_window"]  # every layer (create_sliding_window_causal_mask)
    return llama_family(config, qkv_bias=False, o_bias=False, mlp_bias=False,
                        window=None if window is None else config.size("sliding_window"))


def build_qwen2(config: Config) -> tuple[str, Sizes]:
    # __post_init__: sliding_window only with use_sliding_window; layer i slides if i >= max_window_layers
    window = config.size("sliding_window") if config.flag("use_sliding_window") and \
        config.values["sliding_window"] is not None else None
    layers = config.size("num_hidden_layers")
    types = config.values["layer_types"]
    if types is None:
        types = ["sliding_attention" if window is not None and i >= config["max_window_layers"] else "full_attention"
                 for i in range(layers)]
    if not isinstance(types, list) or len(set(types)) > 1 or not set(types) <= {"full_attention", "sliding_attention"}:
        raise config.error("layer_types", "layers of different attention kinds (full and sliding) are not modelled "
                           "yet: one block is repeated N times (supported: all full_attention, or all sliding)")
    if types[0] == "full_attention":
        window = None
    elif window is None:
        raise config.error("layer_types", "sliding_attention layers without use_sliding_window / sliding_window")
    return llama_family(config, qkv_bias=True, o_bias=False, mlp_bias=False, window=window)


def build_gemma(config: Config) -> tuple[str, Sizes]:
    """GemmaModel: the token embeddings times sqrt(hidden_size) (GemmaTextScaledWordEmbedding's embed_scale, a
    Rescaling), GemmaRMSNorm's x / rms · (1 + w) (scale_plus_one), q/k/v/o with attention_bias, head_dim (256 by
    default, not hidden_size / heads), the gated MLP without bias (gelu_pytorch_tanh: GeGLU), the head tied."""
    # __post_init__ turns the legacy hidden_act "gelu" into gelu_pytorch_tanh (the tanh approximation)
    if config.values["hidden_act"] == "gelu":
        config.values["hidden_act"] = "gelu_pytorch_tanh"
    if config.values["use_bidirectional_attention"]:  # GemmaAttention.is_causal = not it
        raise config.error("use_bidirectional_attention", f"{json.dumps(config['use_bidirectional_attention'])} is "
                           "not modelled: the decoder nnspec reads is causal (supported: null or false)")
    bias = config.flag("attention_bias")
    # embed_scale = hidden_size ** 0.5, a float; the count depends only on its not being 1 (docs/conventions.md,
    # Rescaling), so it holds for any d_model set later
    return llama_family(config, qkv_bias=bias, o_bias=bias, mlp_bias=False, window=None, plus_one=True,
                        embedding_scale=config.size("hidden_size") ** 0.5,
                        comments=("GemmaModel multiplies the token embeddings by sqrt(hidden_size) (embed_scale), "
                                  "the Rescaling after embed_tokens.",))


def build_mixtral(config: Config) -> tuple[str, Sizes]:
    """MixtralModel: Mistral's decoder with each MLP a MixtralSparseMoeBlock (a router over num_local_experts
    experts, the top num_experts_per_tok per token renormalized to sum 1, each expert a gated MLP, no bias)."""
    experts, per_token = config.size("num_local_experts"), config.size("num_experts_per_tok")
    if per_token > experts:
        raise config.error("num_experts_per_tok", f"{per_token} exceeds num_local_experts {experts}")
    jitter = config.values["router_jitter_noise"]
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or jitter != 0:
        raise config.error("router_jitter_noise", f"{json.dumps(jitter)} is not modelled: in training mode the MoE "
                           "input is multiplied by uniform noise, which nnspec's training step does not count "
                           "(supported: 0; inference ignores it, so a copy of the config with 0 gives its inference "
                           "counts)")
    config.refuse_unless("output_router_logits", False, "with it every forward also computes the load-balancing "
                         "loss over the router logits, which nnspec does not count (supported: false; "
                         "router_aux_loss_coef only scales that loss)")
    window = config.values["sliding_window"]  # every layer (create_sliding_window_causal_mask)
    return llama_family(config, qkv_bias=False, o_bias=False, mlp_bias=False,
                        window=None if window is None else config.size("sliding_window"),
                        experts=(experts, per_token))


def build_phi3(config: Config) -> tuple[str, Sizes]:
    window = config.values["sliding_window"]
    return llama_family(config, qkv_bias=False, o_bias=False, mlp_bias=False,
                        window=None if window is None else config.size("sliding_window"),
                        comments=("Phi3's fused qkv_proj and gate_up_proj are written as separate projections: the "
                                  "same params and MACs (one matmul of the concatenated weights).",))


def build_phi(config: Config) -> tuple[str, Sizes]:
    """PhiModel: LayerNorm, then attention and MLP in parallel on it, both added to the residual; dense layers with
    bias; partial rotary; the LM head a Linear with bias (untied)."""
    config.refuse_unless("qk_layernorm", False, "Phi's q/k LayerNorm (with bias) is not GroupedQueryAttention's "
                         "q/k RMS norm (supported: false)")
    heads, kv, hd = attention_sizes(config)
    sizes = Sizes(config.size("num_hidden_layers"), config.size("hidden_size"), config.size("intermediate_size"),
                  heads, kv, config.size("vocab_size"), config.size("max_position_embeddings"), hd, head(config),
                  config.flag("tie_word_embeddings"))
    if sizes.tied and sizes.lm_head:
        raise config.error("tie_word_embeddings", "a tied Phi LM head keeps its own bias, which a tied "
                           "ReversibleEmbedding has not (supported: false)")
    theta, factor = rope(config)
    norm = dict(type="LayerNormalization", epsilon=config.epsilon("layer_norm_eps"))
    attention: dict[str, Any] = dict(type="GroupedQueryAttention", name="self_attn",
                                     inputs=["input_layernorm", "input_layernorm"], head_dim=sizes.hd,
                                     num_query_heads="h", num_key_value_heads="kv", use_bias=True, causal=True,
                                     rope_theta=theta)
    if factor != 1:
        attention["partial_rotary_factor"] = factor
    if hd is not None and heads * hd != sizes.width:
        attention["output_dim"] = "d_model"
    block = [layer_line(name="input_layernorm", **norm), layer_line(**attention),
             layer_line(type="Dense", name="fc1", units="I", activation=config.activation("hidden_act"),
                        inputs=["input_layernorm"]),
             layer_line(type="Dense", name="fc2", units="d_model"),
             layer_line(type="Add", name="residual", inputs=["x", "self_attn", "fc2"])]
    return decoder_spec(config, sizes, block, layer_line(name="final_layernorm", **norm),
                        lm_head=layer_line(type="Dense", name="lm_head", units="V")), sizes


def build_gpt2(config: Config) -> tuple[str, Sizes]:
    """GPT2Model: wte + wpe, pre-LN blocks (Conv1D layers with bias), ln_f; GPT2LMHeadModel's head tied to wte."""
    for key, value in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                       ("reorder_and_upcast_attn", False), ("add_cross_attention", False)):
        config.refuse_unless(key, value, f"the attention nnspec counts is GPT-2's default (supported: {json.dumps(value)})")
    width, heads = config.size("n_embd"), config.size("n_head")
    if width % heads:
        raise config.error("n_head", f"{heads} does not divide n_embd {width}")
    inner = 4 * width if config.values["n_inner"] is None else config.size("n_inner")
    sizes = Sizes(config.size("n_layer"), width, inner, heads, heads, config.size("vocab_size"),
                  config.size("n_positions"), None, head(config, ("LMHeadModel", "ForCausalLM")),
                  config.flag("tie_word_embeddings"))
    norm = dict(type="LayerNormalization", epsilon=config.epsilon("layer_norm_epsilon"))
    block = [layer_line(name="ln_1", **norm),
             layer_line(type="GroupedQueryAttention", name="attn", inputs=["ln_1", "ln_1"], head_dim="d_model / h",
                        num_query_heads="h", num_key_value_heads="kv", use_bias=True, causal=True),
             layer_line(type="Add", name="attention_residual", inputs=["x", "attn"]),
             layer_line(name="ln_2", **norm),
             layer_line(type="Dense", name="c_fc", units="I", activation=config.activation("activation_function")),
             layer_line(type="Dense", name="c_proj", units="d_model"),
             layer_line(type="Add", name="mlp_residual", inputs=["attention_residual", "c_proj"])]
    embedding = [layer_line(type="ReversibleEmbedding", name="embed_tokens", input_dim="V", output_dim="d_model",
                            inputs="input_ids"),
                 layer_line(type="PositionEmbedding", name="wpe", sequence_length=config.size("n_positions")),
                 layer_line(type="Add", name="embeddings", inputs=["embed_tokens", "wpe"])]
    comments = ("GPT-2's fused c_attn (one Conv1D to 3 * n_embd) is written as separate q/k/v projections: the same "
                "params and MACs. kv = h: GPT-2 has one key/value head per query head.",
                "embed_tokens is GPT-2's wte.")
    return decoder_spec(config, sizes, block, layer_line(name="ln_f", **norm), embedding, comments=comments), sizes


Builder = Callable[[Config], tuple[str, Sizes]]
MODEL_TYPES: dict[str, tuple[dict[str, Any], Builder]] = {
    "llama": (LLAMA, build_llama),
    "mistral": (MISTRAL, build_mistral),
    "qwen2": (QWEN2, build_qwen2),
    "gemma": (GEMMA, build_gemma),
    "mixtral": (MIXTRAL, build_mixtral),
    "phi3": (PHI3, build_phi3),
    "phi": (PHI, build_phi),
    "gpt2": (GPT2, build_gpt2),
    "bert": (BERT, build_bert),
}
REFUSED_TYPES: dict[str, str] = {}  # model types recognised but refused, with the reason


@dataclass
class HFDocument(SpecDocument):
    """A converted config.json: the spec's text is written here (blocks, which SpecDocument does not write)."""

    text: str = ""

    def to_yaml(self) -> str:
        return self.text


def hf_spec_text(data: dict[str, Any], source: str,
                 values: dict[str, int] | None = None) -> tuple[str, list[SymbolDoc], list[str]]:
    """The spec text of a config, its symbols (defaults, with --set values) and notes for the user."""
    config = read_config(data, source)
    _, build = MODEL_TYPES[config.model_type]
    text, sizes = build(config)
    symbols = sizes.symbols()
    for name, value in (values or {}).items():
        symbol = next((s for s in symbols if s.name == name), None)
        if symbol is None:
            raise HFConfigError(f"--set {name}: the converted config has no symbol '{name}' (symbols: "
                                f"{', '.join(s.name for s in symbols)})")
        old = f"  {name}: {flow({'default': symbol.default, 'description': symbol.description})}"
        symbol.default = value
        text = text.replace(old, f"  {name}: {flow({'default': value, 'description': symbol.description})}", 1)
    return text, symbols, config.notes


def import_hf_config(data: dict[str, Any], source: str, values: dict[str, int] | None = None) -> tuple[Any, ...]:
    """The parts of an ImportedModel (analyzer.importers wraps them) of a Hugging Face config.json: the document,
    the spec, no report (`analyze config.json` analyzes the spec in its phase once; ImportedModel.report makes one
    when asked) and the notes."""
    from analyzer.spec.loader import parse_spec

    text, symbols, notes = hf_spec_text(data, source, values)
    spec = parse_spec(text, f"{source} [converted]")
    layers = [LayerDoc(entry.type, entry.name) for entry in spec.layers]  # for the "wrote" line
    document = HFDocument(name=str(data.get("model_type")), inputs=[], layers=layers, outputs=[], symbols=symbols,
                          source=source, text=text)
    return document, spec, None, notes

