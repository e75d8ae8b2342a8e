"""Torch modules for the Keras activation layers: Activation (any activation `activate` knows) and Softmax over
one axis. Only the torch export imports it (to_torch; the torch file writer reads its source text instead):
`import analyzer` never imports torch.
"""

import torch
from torch import nn

from analyzer.layers.torch_modules.common import activate


class Activation(nn.Module):
    """Keras Activation."""

    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def extra_repr(self):
        return repr(self.activation)

    def forward(self, x):
        return activate(x, self.activation)


class Softmax(nn.Module):
    """Keras Softmax over one axis (counted with the batch axis, as Keras does)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def extra_repr(self):
        return f"axis={self.axis}"

    def forward(self, x):
        return torch.softmax(x, self.axis)
