"""The torch modules of analyzer/layers/scalar_ops.py: a tensor and a number (ScalarOp), ConvNeXt's LayerScale and
InceptionResNetV2's CustomScaleLayer, as the * + - / operators. Only the torch export imports them."""

import torch
from torch import nn


class ScalarOp(nn.Module):
    """x OP value, or value OP x with reverse=True (Keras 3's ops.add / subtract / multiply / divide on a number)."""

    def __init__(self, op, value, reverse=False):
        super().__init__()
        self.op, self.value, self.reverse = op, value, reverse

    def extra_repr(self):
        return f"op={self.op}, value={self.value}, reverse={self.reverse}"

    def forward(self, x):
        a, b = (self.value, x) if self.reverse else (x, self.value)
        if self.op == "add":
            return a + b
        if self.op == "subtract":
            return a - b
        if self.op == "multiply":
            return a * b
        return a / b


class LayerScale(nn.Module):
    """x * gamma over the last axis (keras.src.applications.convnext.LayerScale)."""

    def __init__(self, init_values, projection_dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((projection_dim,), float(init_values)))

    def load_keras_weights(self, weights):
        (value,) = weights.values()
        with torch.no_grad():
            self.gamma.copy_(torch.as_tensor(value))

    def forward(self, x):
        return x * self.gamma


class CustomScaleLayer(nn.Module):
    """a + b * scale (keras.src.applications.inception_resnet_v2.CustomScaleLayer), its two inputs as arguments."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def extra_repr(self):
        return f"scale={self.scale}"

    def forward(self, a, b):
        return a + b * self.scale
