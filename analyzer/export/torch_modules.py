"""PyTorch modules with Keras semantics, used by nnspec's torch export.

Every module takes and returns channels-last tensors with the batch axis first, exactly
like the Keras layer it stands for; convolutions and batch normalization move the
channels to axis 1 for torch and back. Each module with weights can load a Keras
layer's weights (`load_keras_weights`, a dict of the Keras variable names to arrays).

The style is deliberate, because it decides what FLOP counters see (docs/export.md):
activations are plain torch.relu / torch.sigmoid / torch.tanh / torch.softmax calls,
merges use the * + - operators, kernels are nn.ConvNd, nn.Linear or nn.GRU.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

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
    "silu": lambda x: F.silu(x),
    "swish": lambda x: F.silu(x),
    "hard_sigmoid": lambda x: F.relu6(x + 3) / 6,
    "softplus": lambda x: F.softplus(x),
    "softsign": lambda x: F.softsign(x),
    "exponential": lambda x: torch.exp(x),
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


def _conv_class(rank):
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]


def _to_torch_kernel(kernel):
    """A Keras kernel (*spatial, in, out) as a torch weight (out, in, *spatial)."""
    rank = kernel.dim() - 2
    return kernel.permute(rank + 1, rank, *range(rank))


class Conv(nn.Module):
    """Keras Conv1D / Conv2D (padding valid, same, causal) on channels-last tensors.

    Stride-1 'same' uses torch's own padding='same' (the same zeros as Keras); strided 'same'
    and 'causal' pad explicitly (keras_padding) and convolve with padding=0.
    """

    def __init__(self, in_channels, filters, kernel_size, strides, padding, dilation_rate, groups=1,
                 use_bias=True, activation=None):
        super().__init__()
        self.kernel_size, self.strides, self.dilation_rate = tuple(kernel_size), tuple(strides), tuple(dilation_rate)
        self.padding = padding
        self.explicit_padding = padding == "causal" or (padding == "same" and any(s > 1 for s in strides))
        torch_padding = "same" if padding == "same" and not self.explicit_padding else 0
        self.conv = _conv_class(len(kernel_size))(in_channels, filters, kernel_size, stride=strides, padding=torch_padding,
                                                  dilation=dilation_rate, groups=groups, bias=use_bias)
        self.activation = activation

    def extra_repr(self):
        return f"padding={self.padding!r}, activation={self.activation!r}"

    def forward(self, x):
        x = x.movedim(x.dim() - 1, 1).contiguous()  # channels-last -> channels-first (dims >= 0: torch.onnx
        # writes movedim(-1, 1) as a Transpose with the invalid perm [0, -1, 1])
        if self.explicit_padding:
            x = keras_padding(x, self.padding, self.kernel_size, self.strides, self.dilation_rate)
        x = activate(self.conv(x), self.activation)
        return x.movedim(1, x.dim() - 1)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.conv.weight.copy_(_to_torch_kernel(torch.as_tensor(weights["kernel"])))
        if self.conv.bias is not None:
            self.conv.bias.copy_(torch.as_tensor(weights["bias"]))


class SeparableConv(nn.Module):
    """Keras SeparableConv1D: a depthwise convolution (depth_multiplier per channel, no bias), then a 1x1 one."""

    def __init__(self, in_channels, filters, kernel_size, strides, padding, dilation_rate, depth_multiplier=1,
                 use_bias=True, activation=None):
        super().__init__()
        self.kernel_size, self.strides, self.dilation_rate = tuple(kernel_size), tuple(strides), tuple(dilation_rate)
        self.padding = padding
        self.explicit_padding = padding == "causal" or (padding == "same" and any(s > 1 for s in strides))
        torch_padding = "same" if padding == "same" and not self.explicit_padding else 0
        conv = _conv_class(len(kernel_size))
        self.depthwise = conv(in_channels, in_channels * depth_multiplier, kernel_size, stride=strides,
                              padding=torch_padding, dilation=dilation_rate, groups=in_channels, bias=False)
        self.pointwise = conv(in_channels * depth_multiplier, filters, 1, bias=use_bias)
        self.activation = activation

    def extra_repr(self):
        return f"padding={self.padding!r}, activation={self.activation!r}"

    def forward(self, x):
        x = x.movedim(x.dim() - 1, 1).contiguous()
        if self.explicit_padding:
            x = keras_padding(x, self.padding, self.kernel_size, self.strides, self.dilation_rate)
        x = activate(self.pointwise(self.depthwise(x)), self.activation)
        return x.movedim(1, x.dim() - 1)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        depthwise = torch.as_tensor(weights["depthwise_kernel"])  # (*spatial, in, multiplier)
        rank = depthwise.dim() - 2
        # torch's grouped output channel c*multiplier + j is Keras' (channel c, multiplier j)
        self.depthwise.weight.copy_(depthwise.permute(rank, rank + 1, *range(rank)).reshape(self.depthwise.weight.shape))
        self.pointwise.weight.copy_(_to_torch_kernel(torch.as_tensor(weights["pointwise_kernel"])))
        if self.pointwise.bias is not None:
            self.pointwise.bias.copy_(torch.as_tensor(weights["bias"]))


class DepthwiseConv(nn.Module):
    """Keras DepthwiseConv1D / DepthwiseConv2D: each channel convolved with its own depth_multiplier kernels."""

    def __init__(self, in_channels, kernel_size, strides, padding, dilation_rate, depth_multiplier=1,
                 use_bias=True, activation=None):
        super().__init__()
        self.kernel_size, self.strides, self.dilation_rate = tuple(kernel_size), tuple(strides), tuple(dilation_rate)
        self.padding = padding
        self.explicit_padding = padding == "same" and any(s > 1 for s in strides)
        torch_padding = "same" if padding == "same" and not self.explicit_padding else 0
        self.conv = _conv_class(len(kernel_size))(in_channels, in_channels * depth_multiplier, kernel_size, stride=strides,
                                                  padding=torch_padding, dilation=dilation_rate, groups=in_channels,
                                                  bias=use_bias)
        self.activation = activation

    def extra_repr(self):
        return f"padding={self.padding!r}, activation={self.activation!r}"

    def forward(self, x):
        x = x.movedim(x.dim() - 1, 1).contiguous()
        if self.explicit_padding:
            x = keras_padding(x, self.padding, self.kernel_size, self.strides, self.dilation_rate)
        x = activate(self.conv(x), self.activation)
        return x.movedim(1, x.dim() - 1)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        kernel = torch.as_tensor(weights.get("depthwise_kernel", weights.get("kernel")))  # (*spatial, in, multiplier)
        rank = kernel.dim() - 2
        self.conv.weight.copy_(kernel.permute(rank, rank + 1, *range(rank)).reshape(self.conv.weight.shape))
        if self.conv.bias is not None:
            self.conv.bias.copy_(torch.as_tensor(weights["bias"]))


class Dense(nn.Module):
    """Keras Dense: nn.Linear on the last axis of an input of any rank, then the activation."""

    def __init__(self, in_features, units, use_bias=True, activation=None):
        super().__init__()
        self.linear = nn.Linear(in_features, units, bias=use_bias)
        self.activation = activation

    def extra_repr(self):
        return f"activation={self.activation!r}"

    def forward(self, x):
        return activate(self.linear(x), self.activation)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.linear.weight.copy_(torch.as_tensor(weights["kernel"]).T)
        if self.linear.bias is not None:
            self.linear.bias.copy_(torch.as_tensor(weights["bias"]))


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


def _zrh_to_rzn(w):
    """Keras orders the GRU gates z, r, h on the last axis; torch orders them r, z, n."""
    z, r, h = w.chunk(3, -1)
    return torch.cat([r, z, h], -1)


class GRU(nn.Module):
    """Keras GRU with reset_after=True, tanh and sigmoid: that is torch.nn.GRU (batch_first)."""

    def __init__(self, input_size, units, use_bias=True, return_sequences=False, go_backwards=False, return_state=False):
        super().__init__()
        self.gru = nn.GRU(input_size, units, bias=use_bias, batch_first=True)
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.return_state = return_state

    def extra_repr(self):
        return f"return_sequences={self.return_sequences}, go_backwards={self.go_backwards}, return_state={self.return_state}"

    def forward(self, x, h0=None):
        if self.go_backwards:
            x = x.flip(1)
        out, h = self.gru(x, None if h0 is None else h0.unsqueeze(0).contiguous())
        out = out if self.return_sequences else out[:, -1]
        return (out, h[0]) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.gru.weight_ih_l0.copy_(_zrh_to_rzn(torch.as_tensor(weights["kernel"])).T)
        self.gru.weight_hh_l0.copy_(_zrh_to_rzn(torch.as_tensor(weights["recurrent_kernel"])).T)
        if self.gru.bias:
            bias = torch.as_tensor(weights["bias"])
            if bias.dim() != 2:
                raise ValueError("a Keras GRU with reset_after=False has one bias vector; torch.nn.GRU computes "
                                 "another function (reset_after=True) and takes two")
            self.gru.bias_ih_l0.copy_(_zrh_to_rzn(bias[0]))
            self.gru.bias_hh_l0.copy_(_zrh_to_rzn(bias[1]))


class KerasGRU(nn.Module):
    """Keras GRU as a loop over time, for what nn.GRU cannot compute (reset_after=False, other activations).

    Gates in Keras' order z, r, h. The input kernel runs once over the whole sequence; per step:
      reset_after=False: z, r = act_r(x_z + h U_z), act_r(x_r + h U_r); hh = act(x_h + (r*h) U_h)
      reset_after=True:  z, r = act_r(x_z + (h U)_z), act_r(x_r + (h U)_r); hh = act(x_h + r*(h U)_h)
      h = z*h + (1 - z)*hh
    (h U includes the recurrent bias with reset_after=True.)
    """

    def __init__(self, input_size, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 reset_after=False, return_sequences=False, go_backwards=False, return_state=False):
        super().__init__()
        self.units = units
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.reset_after = reset_after
        self.return_sequences, self.go_backwards, self.return_state = return_sequences, go_backwards, return_state
        self.kernel = nn.Linear(input_size, 3 * units, bias=use_bias)
        if reset_after:
            self.recurrent_kernel = nn.Linear(units, 3 * units, bias=use_bias)
        else:
            self.recurrent_zr = nn.Linear(units, 2 * units, bias=False)
            self.recurrent_h = nn.Linear(units, units, bias=False)

    def extra_repr(self):
        return (f"activation={self.activation!r}, recurrent_activation={self.recurrent_activation!r}, "
                f"reset_after={self.reset_after}, return_sequences={self.return_sequences}, go_backwards={self.go_backwards}")

    def forward(self, x, h0=None):
        if self.go_backwards:
            x = x.flip(1)
        xs = self.kernel(x)  # (batch, steps, 3 * units)
        h = x.new_zeros(x.shape[0], self.units) if h0 is None else h0
        outputs = []
        for t in range(x.shape[1]):
            x_z, x_r, x_h = xs[:, t].chunk(3, -1)
            if self.reset_after:
                h_z, h_r, h_h = self.recurrent_kernel(h).chunk(3, -1)
                z = activate(x_z + h_z, self.recurrent_activation)
                r = activate(x_r + h_r, self.recurrent_activation)
                hh = activate(x_h + r * h_h, self.activation)
            else:
                h_z, h_r = self.recurrent_zr(h).chunk(2, -1)
                z = activate(x_z + h_z, self.recurrent_activation)
                r = activate(x_r + h_r, self.recurrent_activation)
                hh = activate(x_h + self.recurrent_h(r * h), self.activation)
            h = z * h + (1 - z) * hh
            outputs.append(h)
        out = torch.stack(outputs, 1) if self.return_sequences else h
        return (out, h) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        kernel = torch.as_tensor(weights["kernel"])  # (input_size, 3 * units)
        recurrent = torch.as_tensor(weights["recurrent_kernel"])  # (units, 3 * units)
        self.kernel.weight.copy_(kernel.T)
        bias = torch.as_tensor(weights["bias"]) if "bias" in weights else None
        if self.reset_after:
            self.recurrent_kernel.weight.copy_(recurrent.T)
            if bias is not None:
                self.kernel.bias.copy_(bias[0])
                self.recurrent_kernel.bias.copy_(bias[1])
        else:
            self.recurrent_zr.weight.copy_(recurrent[:, : 2 * self.units].T)
            self.recurrent_h.weight.copy_(recurrent[:, 2 * self.units :].T)
            if bias is not None:
                self.kernel.bias.copy_(bias)


class Activation(nn.Module):
    """Keras Activation."""

    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def extra_repr(self):
        return repr(self.activation)

    def forward(self, x):
        return activate(x, self.activation)


LAMBDA_FUNCTIONS = {
    "cos": torch.cos, "sin": torch.sin, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "abs": torch.abs, "square": torch.square, "negative": torch.neg,
}


class Lambda(nn.Module):
    """A Keras Lambda layer of one named elementwise function (cos, sin, exp, ...)."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def extra_repr(self):
        return self.function

    def forward(self, x):
        return LAMBDA_FUNCTIONS[self.function](x)


class Reshape(nn.Module):
    """Keras Reshape: the same elements in the same (channels-last) order, a new shape after the batch axis."""

    def __init__(self, target_shape):
        super().__init__()
        self.target_shape = tuple(target_shape)

    def extra_repr(self):
        return repr(self.target_shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.target_shape)


class Merge(nn.Module):
    """Keras Add / Subtract / Multiply / Maximum / Minimum / Average. As Keras' Merge does, an input of lower rank gets axes
    inserted right after the batch axis, (B, n) -> (B, 1, n); then the usual broadcasting."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def extra_repr(self):
        return self.op

    def forward(self, *xs):
        rank = max(x.dim() for x in xs)
        xs = list(xs)
        for i, x in enumerate(xs):
            while x.dim() < rank:
                x = x.unsqueeze(1)
            xs[i] = x
        out = xs[0]
        for x in xs[1:]:
            if self.op in ("add", "average"):
                out = out + x
            elif self.op == "subtract":
                out = out - x
            elif self.op == "multiply":
                out = out * x
            elif self.op == "maximum":
                out = torch.maximum(out, x)
            else:
                out = torch.minimum(out, x)
        return out / len(xs) if self.op == "average" else out


class Concatenate(nn.Module):
    """Keras Concatenate; `axis` counts the batch axis as 0, as in Keras."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def extra_repr(self):
        return f"axis={self.axis}"

    def forward(self, *xs):
        return torch.cat(xs, dim=self.axis)


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


class Softmax(nn.Module):
    """Keras Softmax over one axis (counted with the batch axis, as Keras does)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def extra_repr(self):
        return f"axis={self.axis}"

    def forward(self, x):
        return torch.softmax(x, self.axis)


class Permute(nn.Module):
    """Keras Permute: dims is a permutation of 1..rank (the batch axis 0 stays)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def extra_repr(self):
        return repr(self.dims)

    def forward(self, x):
        return x.permute(0, *self.dims)


class RepeatVector(nn.Module):
    """Keras RepeatVector: (batch, features) -> (batch, n, features)."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def extra_repr(self):
        return f"n={self.n}"

    def forward(self, x):
        return x.unsqueeze(1).expand(-1, self.n, -1)


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


@torch.no_grad()
def load_loop_weights(module, weights):
    """Keras weights into a recurrent loop of two nn.Linear (kernel, recurrent_kernel): Keras has one
    bias vector, so a second (CuDNN-style) recurrent bias is zero."""
    module.kernel.weight.copy_(torch.as_tensor(weights["kernel"]).T)
    module.recurrent_kernel.weight.copy_(torch.as_tensor(weights["recurrent_kernel"]).T)
    if "bias" in weights:
        module.kernel.bias.copy_(torch.as_tensor(weights["bias"]))
        if module.recurrent_kernel.bias is not None:
            module.recurrent_kernel.bias.zero_()


class KerasRNN(nn.Module):
    """Keras SimpleRNN as a loop over time: h = act(x W + b + h U)."""

    def __init__(self, input_size, units, activation="tanh", use_bias=True, return_sequences=False, go_backwards=False,
                 return_state=False):
        super().__init__()
        self.units, self.activation = units, activation
        self.return_sequences, self.go_backwards, self.return_state = return_sequences, go_backwards, return_state
        self.kernel = nn.Linear(input_size, units, bias=use_bias)
        self.recurrent_kernel = nn.Linear(units, units, bias=False)

    def extra_repr(self):
        return f"activation={self.activation!r}, return_sequences={self.return_sequences}, go_backwards={self.go_backwards}"

    def forward(self, x, h0=None):
        if self.go_backwards:
            x = x.flip(1)
        xs = self.kernel(x)
        h = x.new_zeros(x.shape[0], self.units) if h0 is None else h0
        outputs = []
        for t in range(x.shape[1]):
            h = activate(xs[:, t] + self.recurrent_kernel(h), self.activation)
            outputs.append(h)
        out = torch.stack(outputs, 1) if self.return_sequences else h
        return (out, h) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        load_loop_weights(self, weights)


class KerasLSTM(nn.Module):
    """Keras LSTM as a loop over time (gates in Keras' order i, f, c, o, which is also torch's):
    i, f, o = act_r(.), g = act(.), c = f*c + i*g, h = o*act(c).

    One bias vector, like Keras; recurrent_bias=True adds the second one of Keras 2's CuDNNLSTM and
    torch.nn.LSTM (the two only add up). A loop rather than nn.LSTM, whose fused CPU kernel
    FlopCounterMode does not see.
    """

    def __init__(self, input_size, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 return_sequences=False, go_backwards=False, recurrent_bias=False, return_state=False):
        super().__init__()
        self.units = units
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.return_sequences, self.go_backwards, self.return_state = return_sequences, go_backwards, return_state
        self.kernel = nn.Linear(input_size, 4 * units, bias=use_bias)
        self.recurrent_kernel = nn.Linear(units, 4 * units, bias=use_bias and recurrent_bias)

    def extra_repr(self):
        return (f"activation={self.activation!r}, recurrent_activation={self.recurrent_activation!r}, "
                f"return_sequences={self.return_sequences}, go_backwards={self.go_backwards}")

    def forward(self, x, h0=None, c0=None):
        if self.go_backwards:
            x = x.flip(1)
        xs = self.kernel(x)
        h = x.new_zeros(x.shape[0], self.units) if h0 is None else h0
        c = x.new_zeros(x.shape[0], self.units) if c0 is None else c0
        outputs = []
        for t in range(x.shape[1]):
            i, f, g, o = (xs[:, t] + self.recurrent_kernel(h)).chunk(4, -1)
            i = activate(i, self.recurrent_activation)
            f = activate(f, self.recurrent_activation)
            o = activate(o, self.recurrent_activation)
            c = f * c + i * activate(g, self.activation)
            h = o * activate(c, self.activation)
            outputs.append(h)
        out = torch.stack(outputs, 1) if self.return_sequences else h
        return (out, h, c) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        load_loop_weights(self, weights)


class Embedding(nn.Module):
    """Keras Embedding: a lookup of integer ids (given as any dtype, as Keras casts them)."""

    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, output_dim)

    def forward(self, x):
        return self.embedding(x.long())

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.embedding.weight.copy_(torch.as_tensor(weights["embeddings"]))


class MultiHeadAttention(nn.Module):
    """Keras MultiHeadAttention, called as (query, value[, key]); attention over all axes but the last.

    Per head: scores = (q / sqrt(key_dim)) k^T, softmax over the value positions, times v; the heads
    (times a sigmoid gate with use_gate) go through the output projection.
    """

    def __init__(self, query_dim, key_dim_in, value_dim_in, num_heads, key_dim, value_dim, output_shape,
                 use_bias=True, use_gate=False, attention_axes=None):
        super().__init__()
        self.num_heads, self.key_dim, self.value_dim = num_heads, key_dim, value_dim
        self.output_shape = tuple(output_shape)
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)  # Keras' axes, 0 is the batch
        self.query = nn.Linear(query_dim, num_heads * key_dim, bias=use_bias)
        self.key = nn.Linear(key_dim_in, num_heads * key_dim, bias=use_bias)
        self.value = nn.Linear(value_dim_in, num_heads * value_dim, bias=use_bias)
        self.gate = nn.Linear(query_dim, num_heads * value_dim, bias=use_bias) if use_gate else None
        out = 1
        for d in self.output_shape:
            out *= d
        self.attention_output = nn.Linear(num_heads * value_dim, out, bias=use_bias)

    def extra_repr(self):
        return f"num_heads={self.num_heads}, key_dim={self.key_dim}, value_dim={self.value_dim}"

    def forward(self, query, value, key=None):
        key = value if key is None else key
        batch, positions = query.shape[0], query.shape[1:-1]
        if self.attention_axes is not None:
            return self.attention_over_axes(query, value, key)

        def heads(x, dim):  # (batch, ..., heads * dim) -> (batch, heads, positions, dim)
            return x.reshape(batch, -1, self.num_heads, dim).transpose(1, 2)

        q = heads(self.query(query), self.key_dim) / self.key_dim ** 0.5
        k = heads(self.key(key), self.key_dim)
        v = heads(self.value(value), self.value_dim)
        scores = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), -1)
        attended = torch.matmul(scores, v).transpose(1, 2).reshape(batch, -1, self.num_heads * self.value_dim)
        if self.gate is not None:
            attended = attended * torch.sigmoid(self.gate(query)).reshape(attended.shape)
        return self.attention_output(attended).reshape(batch, *positions, *self.output_shape)

    def attention_over_axes(self, query, value, key):
        """Keras' einsums (multi_head_attention._build_attention_equation) on (batch, *positions, heads, dim):
        the position axes not in attention_axes are batch axes of the scores; softmax over the key axes attended."""
        rank = query.dim() + 1  # with the heads axis
        axes = tuple(sorted(a if a >= 0 else a + query.dim() for a in self.attention_axes))
        letters = "abcdefghijklmnopqrstuvwxyz"
        target = letters[:rank]
        batch_axes = [i for i in range(rank - 1) if i not in axes]  # the heads axis (rank - 2) included
        source = "".join(target[i] if i in batch_axes or i == rank - 1 else letters[rank + axes.index(i)]
                         for i in range(rank))
        scores_axes = "".join([target[i] for i in batch_axes] + [target[i] for i in axes] + [source[i] for i in axes])

        def heads(x, dim):  # (batch, *positions, heads * dim) -> (batch, *positions, heads, dim)
            return x.reshape(*x.shape[:-1], self.num_heads, dim)

        q = heads(self.query(query), self.key_dim) / self.key_dim ** 0.5
        k = heads(self.key(key), self.key_dim)
        v = heads(self.value(value), self.value_dim)
        scores = torch.einsum(f"{source},{target}->{scores_axes}", k, q)
        attended_keys = scores.shape[-len(axes):]
        scores = torch.softmax(scores.flatten(-len(axes)), -1).reshape(scores.shape[:-len(axes)] + attended_keys)
        attended = torch.einsum(f"{scores_axes},{source}->{target}", scores, v).flatten(-2)
        if self.gate is not None:
            attended = attended * torch.sigmoid(self.gate(query))
        return self.attention_output(attended).reshape(*query.shape[:-1], *self.output_shape)

    @torch.no_grad()
    def load_keras_weights(self, weights):
        for name in ("query", "key", "value", "gate", "attention_output"):
            linear = getattr(self, name)
            if linear is None:
                continue
            kernel = torch.as_tensor(weights[f"{name}/kernel"])  # (in, heads, dim) or (heads, dim, out...)
            if name == "attention_output":
                linear.weight.copy_(kernel.reshape(linear.in_features, -1).T)
            else:
                linear.weight.copy_(kernel.reshape(kernel.shape[0], -1).T)
            if linear.bias is not None:
                linear.bias.copy_(torch.as_tensor(weights[f"{name}/bias"]).reshape(-1))


def conv_transpose_crops(kernel_size, strides, padding, output_padding, dilation_rate):
    """Keras' (before, after) crop per spatial axis of torch's full transposed-convolution output (padding 0)
    of length (n - 1)·s + K, K = d·(k - 1) + 1 (keras backend_utils.compute_conv_transpose_output_crops_for_torch);
    a negative `after` extends the output instead (torch's output_padding)."""
    crops = []
    for i, (k, s, d) in enumerate(zip(kernel_size, strides, dilation_rate, strict=True)):
        p = None if output_padding is None else output_padding[i]
        span = (k - 1) * d + 1
        if padding == "valid":
            p = max(span, s) - span if p is None else p
            left, right = span - 1, span - 1 + p
        else:
            total = s + span - 2 if p is None else span + span % 2 - 2 + p
            left = min(total // 2 + total % 2, span - 1)
            right = total - left
        crops.append((span - 1 - left, span - 1 - right))
    return crops


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


def _sublayer_weights(weights, prefix):
    """The Keras weights of one sublayer ('forward_lstm/lstm_cell/kernel' for prefix 'forward_'), keyed by name."""
    out = {}
    for key, value in weights.items():
        if key.startswith(prefix) and "/" in key:
            out[key.rsplit("/", 1)[1]] = value
    return out


class Bidirectional(nn.Module):
    """Keras Bidirectional: a forward copy of the wrapped recurrent layer and a backward one (go_backwards flipped,
    its sequence output flipped back to forward order), merged by merge_mode (concat, sum, mul, ave; None: both).
    An initial state is the forward copy's states then the backward one's; with return_state the outputs are
    followed by the forward copy's final states, then the backward one's, as in Keras."""

    def __init__(self, forward_layer, backward_layer, merge_mode="concat", return_sequences=False, trainable=True,
                 return_state=False):
        super().__init__()
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.merge_mode, self.return_sequences, self.return_state = merge_mode, return_sequences, return_state
        self.requires_grad_(trainable)  # the wrapped layer's trainable: false

    def extra_repr(self):
        return f"merge_mode={self.merge_mode!r}, return_state={self.return_state}"

    def forward(self, x, *initial_state):
        half = len(initial_state) // 2
        y = self.forward_layer(x, *initial_state[:half])
        y_rev = self.backward_layer(x, *initial_state[half:])
        states = ()
        if self.return_state:
            (y, *forward_states), (y_rev, *backward_states) = y, y_rev
            states = (*forward_states, *backward_states)
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode is None:
            return (y, y_rev, *states)
        if self.merge_mode == "concat":
            out = torch.cat([y, y_rev], -1)
        elif self.merge_mode == "sum":
            out = y + y_rev
        elif self.merge_mode == "mul":
            out = y * y_rev
        else:
            out = (y + y_rev) / 2
        return (out, *states) if states else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.forward_layer.load_keras_weights(_sublayer_weights(weights, "forward_"))
        self.backward_layer.load_keras_weights(_sublayer_weights(weights, "backward_"))


class TimeDistributed(nn.Module):
    """Keras TimeDistributed: the wrapped layer on each slice x[:, t] of (batch, T, ...), run as one call on
    (batch·T, ...)."""

    def __init__(self, layer, trainable=True):
        super().__init__()
        self.layer = layer
        self.requires_grad_(trainable)  # the wrapped layer's trainable: false

    def forward(self, x):
        batch, steps = x.shape[:2]
        y = self.layer(x.reshape(batch * steps, *x.shape[2:]))
        return y.reshape(batch, steps, *y.shape[1:])

    @torch.no_grad()
    def load_keras_weights(self, weights):
        if hasattr(self.layer, "load_keras_weights"):
            self.layer.load_keras_weights(weights)
