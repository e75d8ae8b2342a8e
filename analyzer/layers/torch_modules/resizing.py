"""Torch modules for the Keras resizing layers: ZeroPadding (ZeroPadding1D/2D), Cropping (Cropping1D/2D) and
UpSampling (UpSampling1D/2D, nearest). Only the torch export imports it (to_torch; the torch file writer reads
its source text instead): `import analyzer` never imports torch.
"""

from torch import nn

from analyzer.layers.torch_modules.common import pad_spatial


class ZeroPadding(nn.Module):
    """Keras ZeroPadding1D/2D: (before, after) zeros per spatial axis."""

    def __init__(self, padding):
        super().__init__()
        self.padding = tuple(tuple(p) for p in padding)

    def extra_repr(self):
        return repr(self.padding)

    def forward(self, x):
        return pad_spatial(x.movedim(x.dim() - 1, 1), self.padding).movedim(1, x.dim() - 1)


class Cropping(nn.Module):
    """Keras Cropping1D/2D: (before, after) cells cut per spatial axis."""

    def __init__(self, cropping):
        super().__init__()
        self.cropping = tuple(tuple(c) for c in cropping)

    def extra_repr(self):
        return repr(self.cropping)

    def forward(self, x):
        for axis, (before, after) in enumerate(self.cropping, start=1):
            x = x.narrow(axis, before, x.shape[axis] - before - after)
        return x


class UpSampling(nn.Module):
    """Keras UpSampling1D/2D with nearest interpolation: each cell repeated size times per axis."""

    def __init__(self, size):
        super().__init__()
        self.size = tuple(size)

    def extra_repr(self):
        return repr(self.size)

    def forward(self, x):
        for axis, repeats in enumerate(self.size, start=1):
            x = x.repeat_interleave(repeats, dim=axis)
        return x
