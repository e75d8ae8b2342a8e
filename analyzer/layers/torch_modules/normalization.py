"""Torch modules for the Keras normalizations: BatchNorm (BatchNormalization, its moving statistics as buffers),
LayerNorm (LayerNormalization) and GroupNorm (GroupNormalization). Only the torch export imports it (to_torch;
the torch file writer reads its source text instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn


class BatchNorm(nn.Module):
    """Keras BatchNormalization over `axis` (counted with the batch axis, as Keras does).

    The moving mean and variance are buffers (non-trainable, like Keras'). torch's affine is
    all or nothing, so with only one of center / scale the other stays off and the one kept is
    a parameter of this module.
    """

    def __init__(self, channels, axis, rank, epsilon=1e-3, momentum=0.01, center=True, scale=True):
        super().__init__()
        self.axis = axis
        affine = center and scale
        norm = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[rank]
        self.bn = norm(channels, eps=epsilon, momentum=momentum, affine=affine)
        self.gamma = nn.Parameter(torch.ones(channels)) if scale and not affine else None
        self.beta = nn.Parameter(torch.zeros(channels)) if center and not affine else None

    def forward(self, x):
        x = self.bn(x.movedim(self.axis % x.dim(), 1))
        if self.gamma is not None or self.beta is not None:
            shape = (-1,) + (1,) * (x.dim() - 2)
            if self.gamma is not None:
                x = x * self.gamma.reshape(shape)
            if self.beta is not None:
                x = x + self.beta.reshape(shape)
        return x.movedim(1, self.axis % x.dim())

    @torch.no_grad()
    def load_keras_weights(self, weights):
        gamma = self.bn.weight if self.gamma is None else self.gamma
        beta = self.bn.bias if self.beta is None else self.beta
        if "gamma" in weights:
            gamma.copy_(torch.as_tensor(weights["gamma"]))
        if "beta" in weights:
            beta.copy_(torch.as_tensor(weights["beta"]))
        self.bn.running_mean.copy_(torch.as_tensor(weights["moving_mean"]))
        self.bn.running_var.copy_(torch.as_tensor(weights["moving_variance"]))


class LayerNorm(nn.Module):
    """Keras LayerNormalization over the last `axes` axes (statistics per sample)."""

    def __init__(self, shape, epsilon=1e-3, center=True, scale=True):
        super().__init__()
        self.norm = nn.LayerNorm(tuple(shape), eps=epsilon, elementwise_affine=scale, bias=center)

    def forward(self, x):
        return self.norm(x)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        if "gamma" in weights:
            self.norm.weight.copy_(torch.as_tensor(weights["gamma"]))
        if "beta" in weights:
            self.norm.bias.copy_(torch.as_tensor(weights["beta"]))


class RMSNorm(nn.Module):
    """Keras RMSNormalization over the last `shape` axes (statistics per sample), its scale as nn.RMSNorm's weight."""

    def __init__(self, shape, epsilon=1e-6, scale=True):
        super().__init__()
        self.norm = nn.RMSNorm(tuple(shape), eps=epsilon, elementwise_affine=scale)

    def forward(self, x):
        return self.norm(x)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.norm.weight.copy_(torch.as_tensor(weights["scale"]))


class GroupNorm(nn.Module):
    """Keras GroupNormalization over the channels (last axis)."""

    def __init__(self, groups, channels, epsilon=1e-3, affine=True):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=epsilon, affine=affine)

    def forward(self, x):
        return self.norm(x.movedim(x.dim() - 1, 1)).movedim(1, x.dim() - 1)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        if "gamma" in weights:
            self.norm.weight.copy_(torch.as_tensor(weights["gamma"]))
            self.norm.bias.copy_(torch.as_tensor(weights["beta"]))
