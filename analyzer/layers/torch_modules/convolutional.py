"""Torch modules for the Keras convolutions: Conv (Conv1D/2D/3D, groups), SeparableConv and DepthwiseConv, each
an nn.ConvNd on channels-first tensors between two moves of the channels axis, padded as Keras pads. Only the
torch export imports it (to_torch; the torch file writer reads its source text instead): `import analyzer`
never imports torch.
"""

import torch
from torch import nn

from analyzer.layers.torch_modules.common import activate, keras_padding


def _conv_class(rank):
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]


def _to_torch_kernel(kernel):
    """A Keras kernel (*spatial, in, out) as a torch weight (out, in, *spatial)."""
    rank = kernel.dim() - 2
    return kernel.permute(rank + 1, rank, *range(rank))


class KerasConvolution(nn.Module):
    """What Conv, SeparableConv and DepthwiseConv share: channels-last tensors in and out, padded as Keras pads.

    Stride-1 'same' uses torch's own padding='same' (the same zeros as Keras); strided 'same'
    and 'causal' pad explicitly (keras_padding) and convolve with padding=0 (`torch_padding`).
    """

    def __init__(self, kernel_size, strides, padding, dilation_rate, activation):
        super().__init__()
        self.kernel_size, self.strides, self.dilation_rate = tuple(kernel_size), tuple(strides), tuple(dilation_rate)
        self.padding = padding
        self.explicit_padding = padding == "causal" or (padding == "same" and any(s > 1 for s in strides))
        self.torch_padding = "same" if padding == "same" and not self.explicit_padding else 0
        self.activation = activation

    def extra_repr(self):
        return f"padding={self.padding!r}, activation={self.activation!r}"

    def convolve(self, x):
        raise NotImplementedError

    def forward(self, x):
        x = x.movedim(x.dim() - 1, 1).contiguous()  # channels-last -> channels-first (dims >= 0: torch.onnx
        # writes movedim(-1, 1) as a Transpose with the invalid perm [0, -1, 1])
        if self.explicit_padding:
            x = keras_padding(x, self.padding, self.kernel_size, self.strides, self.dilation_rate)
        x = activate(self.convolve(x), self.activation)
        return x.movedim(1, x.dim() - 1)


class Conv(KerasConvolution):
    """Keras Conv1D / Conv2D / Conv3D (padding valid, same, causal; groups)."""

    def __init__(self, in_channels, filters, kernel_size, strides, padding, dilation_rate, groups=1,
                 use_bias=True, activation=None):
        super().__init__(kernel_size, strides, padding, dilation_rate, activation)
        self.conv = _conv_class(len(kernel_size))(in_channels, filters, kernel_size, stride=strides,
                                                  padding=self.torch_padding, dilation=dilation_rate, groups=groups,
                                                  bias=use_bias)

    def convolve(self, x):
        return self.conv(x)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.conv.weight.copy_(_to_torch_kernel(torch.as_tensor(weights["kernel"])))
        if self.conv.bias is not None:
            self.conv.bias.copy_(torch.as_tensor(weights["bias"]))


class SeparableConv(KerasConvolution):
    """Keras SeparableConv1D: a depthwise convolution (depth_multiplier per channel, no bias), then a 1x1 one."""

    def __init__(self, in_channels, filters, kernel_size, strides, padding, dilation_rate, depth_multiplier=1,
                 use_bias=True, activation=None):
        super().__init__(kernel_size, strides, padding, dilation_rate, activation)
        conv = _conv_class(len(kernel_size))
        self.depthwise = conv(in_channels, in_channels * depth_multiplier, kernel_size, stride=strides,
                              padding=self.torch_padding, dilation=dilation_rate, groups=in_channels, bias=False)
        self.pointwise = conv(in_channels * depth_multiplier, filters, 1, bias=use_bias)

    def convolve(self, x):
        return self.pointwise(self.depthwise(x))

    @torch.no_grad()
    def load_keras_weights(self, weights):
        depthwise = torch.as_tensor(weights["depthwise_kernel"])  # (*spatial, in, multiplier)
        rank = depthwise.dim() - 2
        # torch's grouped output channel c*multiplier + j is Keras' (channel c, multiplier j)
        self.depthwise.weight.copy_(depthwise.permute(rank, rank + 1, *range(rank)).reshape(self.depthwise.weight.shape))
        self.pointwise.weight.copy_(_to_torch_kernel(torch.as_tensor(weights["pointwise_kernel"])))
        if self.pointwise.bias is not None:
            self.pointwise.bias.copy_(torch.as_tensor(weights["bias"]))


class DepthwiseConv(KerasConvolution):
    """Keras DepthwiseConv1D / DepthwiseConv2D: each channel convolved with its own depth_multiplier kernels."""

    def __init__(self, in_channels, kernel_size, strides, padding, dilation_rate, depth_multiplier=1,
                 use_bias=True, activation=None):
        super().__init__(kernel_size, strides, padding, dilation_rate, activation)
        self.conv = _conv_class(len(kernel_size))(in_channels, in_channels * depth_multiplier, kernel_size,
                                                  stride=strides, padding=self.torch_padding, dilation=dilation_rate,
                                                  groups=in_channels, bias=use_bias)

    def convolve(self, x):
        return self.conv(x)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        kernel = torch.as_tensor(weights.get("depthwise_kernel", weights.get("kernel")))  # (*spatial, in, multiplier)
        rank = kernel.dim() - 2
        self.conv.weight.copy_(kernel.permute(rank, rank + 1, *range(rank)).reshape(self.conv.weight.shape))
        if self.conv.bias is not None:
            self.conv.bias.copy_(torch.as_tensor(weights["bias"]))
