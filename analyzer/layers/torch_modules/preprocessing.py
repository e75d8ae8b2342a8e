"""The torch module of keras.layers.Normalization (analyzer/layers/preprocessing.py). Only the torch export
imports it."""

import torch
from torch import nn

KERAS_EPSILON = 1e-7  # keras.backend.epsilon()


class Normalization(nn.Module):
    """(x - mean) / max(sqrt(variance), epsilon), or mean + x * max(sqrt(variance), epsilon) inverted, computed at
    every call as Keras does, mean and variance of the broadcast shape (1, *broadcast_shape).

    With mean and variance given they are constants of the layer (Keras adds no weight): buffers. Without them
    Keras adds the non-trainable weights mean (zeros), variance (ones) and count (an int scalar) that adapt() fills:
    here parameters that need no gradient (so they count as Keras' non-trainable params), loaded from the Keras
    layer by `load_keras_weights`. `kept_axes`: the kept axes (indices without the batch), which a mean of fewer
    axes than kept is aligned with from the right, as Keras' build() does."""

    def __init__(self, broadcast_shape, kept_axes=(), mean=None, variance=None, invert=False):
        super().__init__()
        shape = (1, *broadcast_shape)
        self.invert = invert
        if mean is None:
            self.mean = nn.Parameter(torch.zeros(shape), requires_grad=False)
            self.variance = nn.Parameter(torch.ones(shape), requires_grad=False)
            self.count = nn.Parameter(torch.zeros((), dtype=torch.int32), requires_grad=False)
            return
        self.register_buffer("mean", _broadcast(mean, shape, kept_axes))
        self.register_buffer("variance", _broadcast(variance, shape, kept_axes))

    def load_keras_weights(self, weights):
        """Keras' mean and variance have the kept axes' sizes; here they are kept in the broadcast shape."""
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(weights["mean"]).reshape(self.mean.shape))
            self.variance.copy_(torch.as_tensor(weights["variance"]).reshape(self.variance.shape))
            self.count.copy_(torch.as_tensor(weights["count"]))

    def forward(self, x):
        scale = torch.clamp_min(torch.sqrt(self.variance), KERAS_EPSILON)
        if self.invert:
            return self.mean + x * scale
        return (x - self.mean) / scale


def _broadcast(value, shape, kept_axes):
    """keras Normalization.build: a scalar broadcasts; a mean of n axes lies on the last n kept axes (its axis -i on
    kept axis -i), every other axis 1, then broadcasts to the broadcast shape."""
    tensor = torch.as_tensor(value, dtype=torch.float32)
    expanded = [1] * len(shape)
    for i in range(1, tensor.dim() + 1):
        expanded[kept_axes[-i] + 1] = tensor.shape[-i]
    return torch.broadcast_to(tensor.reshape(expanded), shape).clone()
