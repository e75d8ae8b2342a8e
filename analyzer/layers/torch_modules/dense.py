"""The torch module for Keras Dense: nn.Linear on the last axis, then the activation. Only the torch export
imports it (to_torch; the torch file writer reads its source text instead): `import analyzer` never imports
torch.
"""

import torch
from torch import nn

from analyzer.layers.torch_modules.common import activate


class Dense(nn.Module):
    """Keras Dense: nn.Linear on the last axis of an input of any rank, then the activation."""

    def __init__(self, in_features, units, use_bias=True, activation=None):
        super().__init__()
        self.linear = nn.Linear(in_features, units, bias=use_bias)
        self.activation = activation

    def extra_repr(self):
        return f"activation={self.activation!r}"

    def forward(self, x):
        return activate(self.linear(x), self.activation)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.linear.weight.copy_(torch.as_tensor(weights["kernel"]).T)
        if self.linear.bias is not None:
            self.linear.bias.copy_(torch.as_tensor(weights["bias"]))
