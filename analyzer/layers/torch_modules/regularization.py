"""The torch modules for Keras' GaussianNoise and GaussianDropout: the identity at inference (eval mode), their
training form in train mode, as Keras computes them, so that a training step of the export keeps what Keras' keeps.
Dropout is torch's nn.Dropout. Only the torch export imports this module."""

import math

import torch
from torch import nn


class GaussianNoise(nn.Module):
    """Keras GaussianNoise: x + stddev·ε in training (ε ~ N(0, 1)); the identity otherwise."""

    def __init__(self, stddev):
        super().__init__()
        self.stddev = stddev

    def extra_repr(self):
        return f"stddev={self.stddev}"

    def forward(self, x):
        if not self.training or self.stddev == 0:
            return x
        return x + torch.randn_like(x) * self.stddev


class GaussianDropout(nn.Module):
    """Keras GaussianDropout: x · ε, ε ~ N(1, rate/(1 - rate)) in training; the identity otherwise or at rate 0."""

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def extra_repr(self):
        return f"rate={self.rate}"

    def forward(self, x):
        if not self.training or self.rate == 0:
            return x
        return x * (torch.randn_like(x) * math.sqrt(self.rate / (1 - self.rate)) + 1)
