"""Helpers the torch modules of several layer families share: `activate` (a Keras activation by name, with
OTHER_ACTIVATIONS), Keras' 'same' padding (`same_padding`, `pad_spatial`, `keras_padding`), and the filter for
torch's warning on an even kernel with padding='same'. It imports none of the family modules. Only the torch
export imports it (to_torch; the torch file writer reads its source text instead): `import analyzer` never
imports torch.
"""

import warnings

import torch
import torch.nn.functional as F

# torch notes that padding='same' with an even kernel pads with a copy; that is what Keras does too.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths", category=UserWarning)


def activate(x, activation):
    """A Keras activation by name; None and 'linear' are the identity, softmax is over the last axis."""
    if activation is None or activation == "linear":
        return x
    if activation == "relu":
        return torch.relu(x)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    if activation == "tanh":
        return torch.tanh(x)
    if activation == "softmax":
        return torch.softmax(x, -1)
    if activation in OTHER_ACTIVATIONS:
        return OTHER_ACTIVATIONS[activation](x)
    raise ValueError(f"unknown activation {activation!r}")


# Keras' definitions: leaky_relu's slope 0.2, elu's alpha 1, gelu exact (erf), hard_sigmoid = relu6(x + 3) / 6.
OTHER_ACTIVATIONS = {
    "relu6": lambda x: F.relu6(x),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "elu": lambda x: F.elu(x),
    "selu": lambda x: F.selu(x),
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": lambda x: F.silu(x),
    "swish": lambda x: F.silu(x),
    "hard_sigmoid": lambda x: F.relu6(x + 3) / 6,
    "softplus": lambda x: F.softplus(x),
    "softsign": lambda x: F.softsign(x),
    "exponential": lambda x: torch.exp(x),
    # keras.activations' others: torch's function where it has one with Keras' defaults, else Keras' torch-backend
    # formula (keras/src/backend/torch/nn.py)
    "hard_silu": lambda x: F.hardswish(x),
    "hard_swish": lambda x: F.hardswish(x),
    "celu": lambda x: F.celu(x, alpha=1.0),
    "hard_tanh": lambda x: F.hardtanh(x, min_val=-1.0, max_val=1.0),
    "hard_shrink": lambda x: F.hardshrink(x, lambd=0.5),
    "soft_shrink": lambda x: F.softshrink(x, lambd=0.5),
    "tanh_shrink": lambda x: F.tanhshrink(x),
    "log_sigmoid": lambda x: F.logsigmoid(x),
    "mish": lambda x: F.mish(x),
    "sparse_plus": lambda x: torch.where(x <= -1, torch.zeros_like(x), torch.where(x < 1, (1 / 4) * (x + 1) ** 2, x)),
    "sparse_sigmoid": lambda x: torch.clamp(0.5 * (x + 1), 0.0, 1.0),
    "squareplus": lambda x: (x + torch.sqrt(x**2 + 4)) / 2,
}


def same_padding(spatial, kernel_size, strides, dilation_rate):
    """Keras' (TensorFlow's) 'same' padding per spatial axis, as (before, after) pairs:
    total = max((out-1)*s + d*(k-1) + 1 - n, 0) with out = ceil(n/s), the smaller half before.

    Written as span - ((n - 1) % s + 1), the same number, because torch.onnx records this arithmetic
    on the traced sizes: ONNX's integer Div rounds toward zero where Python's // rounds down, so
    ceil as -(-n // s) came out wrong at sizes the stride does not divide. The max with 0 matters only
    for a window shorter than the stride; a Python max would be fixed at the size traced, so it is
    total * ((total + s) // s): total lies in [span - s, span - 1], so the factor is 0 when
    total < 0 and 1 otherwise, with only non-negative floor divisions."""
    pads = []
    for n, k, s, d in zip(spatial, kernel_size, strides, dilation_rate, strict=True):
        span = d * (k - 1) + 1
        total = span - ((n - 1) % s + 1)
        if span == 1:  # total = -((n - 1) % s) <= 0
            total = 0
        elif span < s:
            total = total * ((total + s) // s)
        pads.append((total // 2, total - total // 2))
    return pads


def pad_spatial(x, pads, value=0.0):
    """Pad the spatial axes (2, 3, ...) of a channels-first tensor by (before, after) pairs."""
    return F.pad(x, [p for pair in reversed(pads) for p in pair], value=value)  # F.pad lists the last axis first


def keras_padding(x, padding, kernel_size, strides, dilation_rate):
    """Pad a channels-first tensor as a Keras convolution does: causal puts d*(k-1) zeros on the
    left; same pads by same_padding (for an even kernel the extra zero goes after)."""
    if padding == "causal":
        return F.pad(x, (dilation_rate[0] * (kernel_size[0] - 1), 0))
    return pad_spatial(x, same_padding(x.shape[2:], kernel_size, strides, dilation_rate))
