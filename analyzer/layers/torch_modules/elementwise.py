"""The torch modules for a Keras Lambda layer of one named elementwise function (Lambda, with the functions in
LAMBDA_FUNCTIONS) and for keras.layers.Rescaling (Rescaling). Only the torch export imports them (to_torch; the
torch file writer reads their source text instead): `import analyzer` never imports torch.
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


class Rescaling(nn.Module):
    """keras.layers.Rescaling: x * scale + offset, as the * and + operators; a scale of exactly 1 or an offset of
    exactly 0 is not applied (it changes no element), so no counter sees an op nnspec does not count."""

    def __init__(self, scale, offset=0.0):
        super().__init__()
        self.scale = scale
        self.offset = offset

    def extra_repr(self):
        return f"scale={self.scale}, offset={self.offset}"

    def forward(self, x):
        if self.scale != 1:
            x = x * self.scale
        if self.offset != 0:
            x = x + self.offset
        return x
