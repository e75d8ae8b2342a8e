"""Torch modules for the decoder vocabulary (analyzer/layers/transformer.py): grouped-query attention with rotary
embedding, q/k norm, causal and sliding-window masks; the gated MLP; the tied LM head; and Gemma's RMS
normalization with (1 + w). Only the torch export imports it (to_torch; the torch file writer reads its source
text instead): `import analyzer` never imports torch.

The style decides what the FLOP counters see (docs/conventions.md, the rules in transformer.py): projections are
nn.Linear, the two attention products torch.matmul, the softmax torch.softmax, the rotation and the scaling the
* + - / operators (no patched function of ptflops), the mask masked_fill (fvcore ignores it). The masks and the
rotary cos / sin tables are buffers made at construction for the export's concrete lengths: constants of T,
not of the input, as nnspec counts them.
"""

import torch
import torch.nn.functional as F
from torch import nn

from analyzer.layers.torch_modules.common import activate


class RMSNormPlusOne(nn.Module):
    """Gemma's RMS normalization, x / sqrt(mean(x²) + eps) · (1 + w), over the last `shape` axes; w starts at 0."""

    def __init__(self, shape, epsilon=1e-6):
        super().__init__()
        self.shape, self.epsilon = tuple(shape), epsilon
        self.weight = nn.Parameter(torch.zeros(self.shape))

    def forward(self, x):
        return F.rms_norm(x, self.shape, 1 + self.weight, self.epsilon)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.weight.copy_(torch.as_tensor(weights["scale"]))


def attention_mask(queries, keys, causal, sliding_window):
    """True where a query may not see a key: after it (causal), or sliding_window or more positions away."""
    i = torch.arange(queries)[:, None]
    j = torch.arange(keys)[None, :]
    hidden = torch.zeros(queries, keys, dtype=torch.bool)
    if causal:
        hidden |= j > i
    if sliding_window is not None:
        hidden |= (i - j).abs() >= sliding_window
    return hidden


class GroupedQueryAttention(nn.Module):
    """Keras 3 GroupedQueryAttention called as (query, value[, key]) on (batch, T, features), with the decoder
    options: per-projection biases, RMS q/k norm over head_dim, rotary embedding on the first `rotary_dim`
    features of each head (rotate-half, as transformers' apply_rotary_pos_emb), causal and sliding-window masks.
    Each key/value head serves num_query_heads / num_key_value_heads query heads (expand, no copy counted)."""

    def __init__(self, query_dim, key_dim_in, value_dim_in, head_dim, num_query_heads, num_key_value_heads,
                 output_dim, queries, keys, query_bias=True, key_bias=True, value_bias=True, output_bias=True,
                 qk_norm=False, qk_norm_epsilon=1e-6, qk_norm_plus_one=False, causal=False, sliding_window=None,
                 rope_theta=None, rotary_dim=0):
        super().__init__()
        self.head_dim, self.heads, self.kv_heads = head_dim, num_query_heads, num_key_value_heads
        self.query = nn.Linear(query_dim, num_query_heads * head_dim, bias=query_bias)
        self.key = nn.Linear(key_dim_in, num_key_value_heads * head_dim, bias=key_bias)
        self.value = nn.Linear(value_dim_in, num_key_value_heads * head_dim, bias=value_bias)
        self.attention_output = nn.Linear(num_query_heads * head_dim, output_dim, bias=output_bias)
        norm = (lambda: RMSNormPlusOne((head_dim,), qk_norm_epsilon)) if qk_norm_plus_one else \
            (lambda: nn.RMSNorm(head_dim, eps=qk_norm_epsilon))
        self.query_norm = norm() if qk_norm else None
        self.key_norm = norm() if qk_norm else None
        self.masked = causal or sliding_window is not None
        self.register_buffer("mask", attention_mask(queries, keys, causal, sliding_window), persistent=False)
        self.rotary_dim = rotary_dim if rope_theta is not None else 0
        if self.rotary_dim:
            for name, length in (("query", queries), ("key", keys)):
                cos, sin = rotary_tables(length, self.rotary_dim, rope_theta)
                self.register_buffer(f"{name}_cos", cos, persistent=False)
                self.register_buffer(f"{name}_sin", sin, persistent=False)

    def extra_repr(self):
        return f"head_dim={self.head_dim}, num_query_heads={self.heads}, num_key_value_heads={self.kv_heads}"

    def forward(self, query, value, key=None):
        key = value if key is None else key
        batch, tq, tv = query.shape[0], query.shape[1], value.shape[1]
        q = self.query(query).reshape(batch, tq, self.heads, self.head_dim).transpose(1, 2)
        k = self.key(key).reshape(batch, tv, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.value(value).reshape(batch, tv, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.query_norm is not None:
            q, k = self.query_norm(q), self.key_norm(k)
        if self.rotary_dim:
            q = rotate(q, self.query_cos, self.query_sin, self.rotary_dim)
            k = rotate(k, self.key_cos, self.key_sin, self.rotary_dim)
        q = q / self.head_dim ** 0.5
        groups = self.heads // self.kv_heads
        k = k[:, :, None].expand(batch, self.kv_heads, groups, tv, self.head_dim).reshape(batch, self.heads, tv, -1)
        v = v[:, :, None].expand(batch, self.kv_heads, groups, tv, self.head_dim).reshape(batch, self.heads, tv, -1)
        scores = torch.matmul(q, k.transpose(-1, -2))
        if self.masked:
            scores = scores.masked_fill(self.mask, float("-inf"))
        attended = torch.matmul(torch.softmax(scores, -1), v)
        return self.attention_output(attended.transpose(1, 2).reshape(batch, tq, self.heads * self.head_dim))

    @torch.no_grad()
    def load_keras_weights(self, weights):
        """keras.layers.GroupQueryAttention's EinsumDense kernels: (in, heads, dim), the output's (heads, dim, out)."""
        for name in ("query", "key", "value", "attention_output"):
            linear = getattr(self, name)
            kernel = torch.as_tensor(weights[f"{name}/kernel"])
            rows = linear.in_features if name == "attention_output" else kernel.shape[0]
            linear.weight.copy_(kernel.reshape(rows, -1).T)
            if linear.bias is not None:
                linear.bias.copy_(torch.as_tensor(weights[f"{name}/bias"]).reshape(-1))


def rotary_tables(length, rotary_dim, theta):
    """cos and sin of position · theta^(-2i / rotary_dim), i < rotary_dim / 2, each half repeated (rotate-half)."""
    inverse = 1.0 / theta ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inverse[None, :]
    angles = torch.cat((angles, angles), -1)
    return angles.cos().float(), angles.sin().float()


def rotate(x, cos, sin, rotary_dim):
    """x·cos + rotate_half(x)·sin on the first rotary_dim features of each head; the rest pass (Phi's partial)."""
    rotated, passed = x[..., :rotary_dim], x[..., rotary_dim:]
    half = rotary_dim // 2
    turned = torch.cat((-rotated[..., half:], rotated[..., :half]), -1)
    rotated = rotated * cos + turned * sin
    return torch.cat((rotated, passed), -1) if passed.shape[-1] else rotated


class GatedMLP(nn.Module):
    """down(activation(gate(x)) · up(x)): SwiGLU with silu, GeGLU with gelu (Llama's, Gemma's MLP)."""

    def __init__(self, in_features, intermediate_dim, output_dim, activation="silu", use_bias=False):
        super().__init__()
        self.activation = activation
        self.gate = nn.Linear(in_features, intermediate_dim, bias=use_bias)
        self.up = nn.Linear(in_features, intermediate_dim, bias=use_bias)
        self.down = nn.Linear(intermediate_dim, output_dim, bias=use_bias)

    def forward(self, x):
        return self.down(activate(self.gate(x), self.activation) * self.up(x))


class TiedLMHead(nn.Module):
    """Logits against an embedding table held elsewhere: x · Wᵀ (F.linear). The table is a buffer, not a
    parameter, so the module's parameters are what the spec counts for it (none: the embedding layer counts the
    table once); to_torch gives it its own copy, of the embedding's shape."""

    def __init__(self, input_dim, output_dim, use_bias=False):
        super().__init__()
        self.register_buffer("table", torch.randn(input_dim, output_dim) * 0.02, persistent=False)
        self.bias = nn.Parameter(torch.zeros(input_dim)) if use_bias else None

    def forward(self, x):
        return F.linear(x, self.table, self.bias)


class PositionEmbedding(nn.Module):
    """keras_hub PositionEmbedding: the first T rows of a learned (sequence_length, d) table, for every sample
    (an nn.Embedding of the positions 0 .. T - 1, as transformers' GPT-2 wpe)."""

    def __init__(self, sequence_length, output_dim):
        super().__init__()
        self.position_embeddings = nn.Embedding(sequence_length, output_dim)

    def forward(self, x):
        return self.position_embeddings(torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1))
