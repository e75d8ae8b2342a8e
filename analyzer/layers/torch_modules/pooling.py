"""Torch modules for the Keras poolings: Pool (MaxPooling / AveragePooling, 'same' padded as Keras pads) and
GlobalPool (the global max / average poolings). Only the torch export imports it (to_torch; the torch file
writer reads its source text instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn

from analyzer.layers.torch_modules.common import pad_spatial, same_padding


class Pool(nn.Module):
    """Keras MaxPooling1D/2D and AveragePooling1D/2D (padding valid or same).

    'same' pads as Keras (TensorFlow) does: max pooling never picks a pad, average pooling
    divides each window by the cells that are really there.
    """

    def __init__(self, kind, pool_size, strides, padding):
        super().__init__()
        self.kind, self.padding = kind, padding
        self.pool_size, self.strides = tuple(pool_size), tuple(strides)
        rank = len(pool_size)
        if kind == "max":
            self.pool = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[rank](self.pool_size, self.strides)
        else:
            self.pool = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[rank](self.pool_size, self.strides)

    def extra_repr(self):
        return f"padding={self.padding!r}"

    def forward(self, x):
        x = x.movedim(x.dim() - 1, 1)
        if self.padding == "same":
            pads = same_padding(x.shape[2:], self.pool_size, self.strides, (1,) * len(self.pool_size))
            if self.kind == "max":
                x = self.pool(pad_spatial(x, pads, float("-inf")))
            else:  # the mean of the real cells: pooled sum of the zero-padded input over pooled count of real cells
                ones = pad_spatial(torch.ones_like(x[:1, :1]), pads)
                x = self.pool(pad_spatial(x, pads)) / self.pool(ones)
        else:
            x = self.pool(x)
        return x.movedim(1, x.dim() - 1)


class GlobalPool(nn.Module):
    """Keras GlobalMaxPooling1D/2D and GlobalAveragePooling1D/2D: reduce every spatial axis."""

    def __init__(self, kind, rank, keepdims=False):
        super().__init__()
        self.kind, self.keepdims = kind, keepdims
        self.axes = tuple(range(1, rank + 1))

    def extra_repr(self):
        return f"{self.kind}, keepdims={self.keepdims}"

    def forward(self, x):
        if self.kind == "max":
            return torch.amax(x, dim=self.axes, keepdim=self.keepdims)
        return torch.mean(x, dim=self.axes, keepdim=self.keepdims)
