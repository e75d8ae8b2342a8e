"""The torch module for a Keras Lambda layer of one named elementwise function (Lambda, with the functions in
LAMBDA_FUNCTIONS). Only the torch export imports it (to_torch; the torch file writer reads its source text
instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn

LAMBDA_FUNCTIONS = {
    "cos": torch.cos, "sin": torch.sin, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "abs": torch.abs, "square": torch.square, "negative": torch.neg,
}


class Lambda(nn.Module):
    """A Keras Lambda layer of one named elementwise function (cos, sin, exp, ...)."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def extra_repr(self):
        return self.function

    def forward(self, x):
        return LAMBDA_FUNCTIONS[self.function](x)
