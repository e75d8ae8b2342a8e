"""The torch module of keras.layers.Normalization (analyzer/layers/preprocessing.py). Only the torch export
imports it."""

import torch
from torch import nn

KERAS_EPSILON = 1e-7  # keras.backend.epsilon()


class Normalization(nn.Module):
    """(x - mean) / max(sqrt(variance), epsilon), or mean + x * max(sqrt(variance), epsilon) inverted, computed at
    every call as Keras does; mean and variance buffers of the broadcast shape (zeros and ones when not given, as
    Keras initializes them before adapt())."""

    def __init__(self, broadcast_shape, mean=None, variance=None, invert=False):
        super().__init__()
        shape = (1, *broadcast_shape)
        mean_value = torch.zeros(shape) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        variance_value = torch.ones(shape) if variance is None else torch.as_tensor(variance, dtype=torch.float32)
        self.register_buffer("mean", torch.broadcast_to(mean_value.reshape(_aligned(mean_value, shape)), shape).clone())
        self.register_buffer("variance", torch.broadcast_to(variance_value.reshape(_aligned(variance_value, shape)),
                                                            shape).clone())
        self.invert = invert

    def forward(self, x):
        scale = torch.clamp_min(torch.sqrt(self.variance), KERAS_EPSILON)
        if self.invert:
            return self.mean + x * scale
        return (x - self.mean) / scale


def _aligned(value, shape):
    """Keras aligns a mean of fewer axes with the kept axes from the right: here, with the trailing axes."""
    return (1,) * (len(shape) - value.dim()) + tuple(value.shape)
