"""The torch module for Keras Embedding: an nn.Embedding lookup of integer ids. Only the torch export imports it
(to_torch; the torch file writer reads its source text instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn


class Embedding(nn.Module):
    """Keras Embedding: a lookup of integer ids (given as any dtype, as Keras casts them)."""

    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, output_dim)

    def forward(self, x):
        return self.embedding(x.long())

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.embedding.weight.copy_(torch.as_tensor(weights["embeddings"]))
