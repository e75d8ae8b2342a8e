"""Torch modules for the Keras merge layers: Merge (Add, Subtract, Multiply, Maximum, Minimum, Average, with the
* + - operators) and Concatenate. Only the torch export imports it (to_torch; the torch file writer reads its
source text instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn


class Merge(nn.Module):
    """Keras Add / Subtract / Multiply / Maximum / Minimum / Average. As Keras' Merge does, an input of lower rank gets axes
    inserted right after the batch axis, (B, n) -> (B, 1, n); then the usual broadcasting."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def extra_repr(self):
        return self.op

    def forward(self, *xs):
        rank = max(x.dim() for x in xs)
        xs = list(xs)
        for i, x in enumerate(xs):
            while x.dim() < rank:
                x = x.unsqueeze(1)
            xs[i] = x
        out = xs[0]
        for x in xs[1:]:
            if self.op in ("add", "average"):
                out = out + x
            elif self.op == "subtract":
                out = out - x
            elif self.op == "multiply":
                out = out * x
            elif self.op == "maximum":
                out = torch.maximum(out, x)
            else:
                out = torch.minimum(out, x)
        return out / len(xs) if self.op == "average" else out


class Concatenate(nn.Module):
    """Keras Concatenate; `axis` counts the batch axis as 0, as in Keras."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def extra_repr(self):
        return f"axis={self.axis}"

    def forward(self, *xs):
        return torch.cat(xs, dim=self.axis)
