"""The torch module for Keras Conv1DTranspose / Conv2DTranspose (ConvTranspose: one nn.ConvTransposeNd, then a
crop of each side, crops.conv_transpose_crops). Only the torch export imports
it (to_torch; the torch file writer reads its source text instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn

from analyzer.layers.torch_modules.common import activate
from analyzer.layers.torch_modules.crops import conv_transpose_crops


class ConvTranspose(nn.Module):
    """Keras Conv1DTranspose / Conv2DTranspose (padding valid or same, output_padding) on channels-last tensors.

    As Keras' torch backend does: nn.ConvTransposeNd with padding 0 (torch's padding is symmetric, Keras'
    is not), its output_padding where Keras' output is longer than the full one, then a crop of each side.
    """

    def __init__(self, in_channels, filters, kernel_size, strides, padding, dilation_rate, output_padding=None,
                 use_bias=True, activation=None):
        super().__init__()
        self.padding, self.activation = padding, activation
        self.crops = conv_transpose_crops(kernel_size, strides, padding, output_padding, dilation_rate)
        if any(before < 0 for before, _ in self.crops):
            raise ValueError(f"no torch counterpart for the crops {self.crops}")
        extend = tuple(max(0, -after) for _, after in self.crops)
        conv = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[len(kernel_size)]
        self.conv = conv(in_channels, filters, tuple(kernel_size), stride=tuple(strides), padding=0,
                         output_padding=extend, dilation=tuple(dilation_rate), bias=use_bias)

    def extra_repr(self):
        return f"padding={self.padding!r}, crops={self.crops}, activation={self.activation!r}"

    def forward(self, x):
        x = self.conv(x.movedim(x.dim() - 1, 1).contiguous())
        for axis, (before, after) in enumerate(self.crops, start=2):
            x = x.narrow(axis, before, x.shape[axis] - before - max(after, 0))
        return activate(x, self.activation).movedim(1, x.dim() - 1)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        kernel = torch.as_tensor(weights["kernel"])  # (*spatial, filters, in): torch's (in, filters, *spatial)
        rank = kernel.dim() - 2
        self.conv.weight.copy_(kernel.permute(rank + 1, rank, *range(rank)))
        if self.conv.bias is not None:
            self.conv.bias.copy_(torch.as_tensor(weights["bias"]))
