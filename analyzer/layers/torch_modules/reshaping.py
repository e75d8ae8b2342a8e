"""Torch modules for the Keras reshaping layers: Reshape, Permute and RepeatVector (Flatten is a plain
nn.Flatten). Only the torch export imports it (to_torch; the torch file writer reads its source text instead):
`import analyzer` never imports torch.
"""

from torch import nn


class Reshape(nn.Module):
    """Keras Reshape: the same elements in the same (channels-last) order, a new shape after the batch axis."""

    def __init__(self, target_shape):
        super().__init__()
        self.target_shape = tuple(target_shape)

    def extra_repr(self):
        return repr(self.target_shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.target_shape)


class Permute(nn.Module):
    """Keras Permute: dims is a permutation of 1..rank (the batch axis 0 stays)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def extra_repr(self):
        return repr(self.dims)

    def forward(self, x):
        return x.permute(0, *self.dims)


class RepeatVector(nn.Module):
    """Keras RepeatVector: (batch, features) -> (batch, n, features)."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def extra_repr(self):
        return f"n={self.n}"

    def forward(self, x):
        return x.unsqueeze(1).expand(-1, self.n, -1)
