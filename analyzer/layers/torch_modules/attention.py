"""The torch module for Keras MultiHeadAttention: nn.Linear projections, softmax attention over all axes but the
last, or over Keras' attention_axes as its einsums compute it. Only the torch export imports it (to_torch; the
torch file writer reads its source text instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    """Keras MultiHeadAttention, called as (query, value[, key]); attention over all axes but the last.

    Per head: scores = (q / sqrt(key_dim)) k^T, softmax over the value positions, times v; the heads
    (times a sigmoid gate with use_gate) go through the output projection.
    """

    def __init__(self, query_dim, key_dim_in, value_dim_in, num_heads, key_dim, value_dim, output_shape,
                 use_bias=True, use_gate=False, attention_axes=None):
        super().__init__()
        self.num_heads, self.key_dim, self.value_dim = num_heads, key_dim, value_dim
        self.output_shape = tuple(output_shape)
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)  # Keras' axes, 0 is the batch
        self.query = nn.Linear(query_dim, num_heads * key_dim, bias=use_bias)
        self.key = nn.Linear(key_dim_in, num_heads * key_dim, bias=use_bias)
        self.value = nn.Linear(value_dim_in, num_heads * value_dim, bias=use_bias)
        self.gate = nn.Linear(query_dim, num_heads * value_dim, bias=use_bias) if use_gate else None
        out = 1
        for d in self.output_shape:
            out *= d
        self.attention_output = nn.Linear(num_heads * value_dim, out, bias=use_bias)

    def extra_repr(self):
        return f"num_heads={self.num_heads}, key_dim={self.key_dim}, value_dim={self.value_dim}"

    def forward(self, query, value, key=None):
        key = value if key is None else key
        batch, positions = query.shape[0], query.shape[1:-1]
        if self.attention_axes is not None:
            return self.attention_over_axes(query, value, key)

        def heads(x, dim):  # (batch, ..., heads * dim) -> (batch, heads, positions, dim)
            return x.reshape(batch, -1, self.num_heads, dim).transpose(1, 2)

        q = heads(self.query(query), self.key_dim) / self.key_dim ** 0.5
        k = heads(self.key(key), self.key_dim)
        v = heads(self.value(value), self.value_dim)
        scores = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), -1)
        attended = torch.matmul(scores, v).transpose(1, 2).reshape(batch, -1, self.num_heads * self.value_dim)
        if self.gate is not None:
            attended = attended * torch.sigmoid(self.gate(query)).reshape(attended.shape)
        return self.attention_output(attended).reshape(batch, *positions, *self.output_shape)

    def attention_over_axes(self, query, value, key):
        """Keras' einsums (multi_head_attention._build_attention_equation) on (batch, *positions, heads, dim):
        the position axes not in attention_axes are batch axes of the scores; softmax over the key axes attended."""
        rank = query.dim() + 1  # with the heads axis
        axes = tuple(sorted(a if a >= 0 else a + query.dim() for a in self.attention_axes))
        letters = "abcdefghijklmnopqrstuvwxyz"
        target = letters[:rank]
        batch_axes = [i for i in range(rank - 1) if i not in axes]  # the heads axis (rank - 2) included
        source = "".join(target[i] if i in batch_axes or i == rank - 1 else letters[rank + axes.index(i)]
                         for i in range(rank))
        scores_axes = "".join([target[i] for i in batch_axes] + [target[i] for i in axes] + [source[i] for i in axes])

        def heads(x, dim):  # (batch, *positions, heads * dim) -> (batch, *positions, heads, dim)
            return x.reshape(*x.shape[:-1], self.num_heads, dim)

        q = heads(self.query(query), self.key_dim) / self.key_dim ** 0.5
        k = heads(self.key(key), self.key_dim)
        v = heads(self.value(value), self.value_dim)
        scores = torch.einsum(f"{source},{target}->{scores_axes}", k, q)
        attended_keys = scores.shape[-len(axes):]
        scores = torch.softmax(scores.flatten(-len(axes)), -1).reshape(scores.shape[:-len(axes)] + attended_keys)
        attended = torch.einsum(f"{scores_axes},{source}->{target}", scores, v).flatten(-2)
        if self.gate is not None:
            attended = attended * torch.sigmoid(self.gate(query))
        return self.attention_output(attended).reshape(*query.shape[:-1], *self.output_shape)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        for name in ("query", "key", "value", "gate", "attention_output"):
            linear = getattr(self, name)
            if linear is None:
                continue
            kernel = torch.as_tensor(weights[f"{name}/kernel"])  # (in, heads, dim) or (heads, dim, out...)
            if name == "attention_output":
                linear.weight.copy_(kernel.reshape(linear.in_features, -1).T)
            else:
                linear.weight.copy_(kernel.reshape(kernel.shape[0], -1).T)
            if linear.bias is not None:
                linear.bias.copy_(torch.as_tensor(weights[f"{name}/bias"]).reshape(-1))
