"""What nnspec's PyTorch export (analyzer/export/torch_modules.py) runs for each
layer, written in the spec's symbols: which torch modules, called how often on what
shapes, and which plain calls. The tool profiles count these the way each tool
does; the cross-check suite runs the tools on the real export to hold both in step.

Shapes exclude the batch axis (batch 1). No framework is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy

from analyzer.layers.attention import attention_extent, keras_axis
from analyzer.report import LayerRow
from analyzer.symbolic import ONE, floor_div, product

# Activations as the export calls them (torch_modules.activate).
TORCH_CALL = {
    "relu": "torch.relu", "sigmoid": "torch.sigmoid", "tanh": "torch.tanh", "softmax": "torch.softmax",
    "relu6": "F.relu6", "leaky_relu": "F.leaky_relu", "elu": "F.elu", "selu": "F.selu", "gelu": "F.gelu",
    "silu": "F.silu", "swish": "F.silu", "hard_sigmoid": "F.relu6(x + 3) / 6", "softplus": "F.softplus",
    "softsign": "F.softsign", "exponential": "torch.exp",
}
# The aten ops each activation traces to (relu's aten::relu is one fvcore ignores; linear is no op).
ACTIVATION_OPS = {
    "linear": (), "relu": ("aten::relu",), "sigmoid": ("aten::sigmoid",), "tanh": ("aten::tanh",),
    "softmax": ("aten::softmax",), "relu6": ("aten::relu6",), "leaky_relu": ("aten::leaky_relu",),
    "elu": ("aten::elu",), "selu": ("aten::selu",), "gelu": ("aten::gelu",), "silu": ("aten::silu",),
    "swish": ("aten::silu",), "hard_sigmoid": ("aten::add", "aten::relu6", "aten::div"),
    "softplus": ("aten::softplus",), "softsign": ("aten::abs", "aten::add", "aten::div"), "exponential": ("aten::exp",),
}
LAMBDA_OPS = {"cos": "aten::cos", "sin": "aten::sin", "exp": "aten::exp", "log": "aten::log", "sqrt": "aten::sqrt",
              "abs": "aten::abs", "square": "aten::square", "negative": "aten::neg"}
MERGE_OPS = {"Add": ("aten::add",), "Subtract": ("aten::sub",), "Multiply": ("aten::mul",),
             "Maximum": ("aten::maximum",), "Minimum": ("aten::minimum",), "Average": ("aten::add", "aten::div")}


@dataclass(frozen=True)
class Conv:
    """One nn.ConvNd call: `positions` output positions of `out_channels`, each a dot product over
    `in_per_group` channels times `kernel` taps. `string_padding`: torch's padding='same' (a string)."""

    positions: sympy.Expr
    out_channels: sympy.Expr
    in_per_group: sympy.Expr
    kernel: sympy.Expr
    groups: sympy.Expr
    bias: bool
    string_padding: bool

    @property
    def macs(self) -> sympy.Expr:
        return self.positions * self.out_channels * self.in_per_group * self.kernel

    @property
    def outputs(self) -> sympy.Expr:
        return self.positions * self.out_channels


@dataclass(frozen=True)
class Linear:
    """`calls` calls of one nn.Linear(in, out) on an input with `positions` rows."""

    calls: sympy.Expr
    positions: sympy.Expr
    in_features: sympy.Expr
    out_features: sympy.Expr
    bias: bool

    @property
    def macs(self) -> sympy.Expr:
        return self.calls * self.positions * self.in_features * self.out_features


@dataclass(frozen=True)
class Rnn:
    """One call of torch.nn.GRU (batch_first) over `steps` steps."""

    kind: str  # "GRU"
    steps: sympy.Expr
    input_size: sympy.Expr
    units: sympy.Expr
    bias: bool


@dataclass(frozen=True)
class Activation:
    """`calls` calls of activation `name` on `elements` elements each."""

    name: str
    elements: sympy.Expr
    calls: sympy.Expr = ONE


def fused_activation(row: LayerRow) -> list[Activation]:
    name = getattr(row.spec, "activation", None) or "linear"
    return [] if name == "linear" else [Activation(name, product(row.output_shape))]


def has_bias(row: LayerRow) -> bool:
    """Whether the exported layer has a bias, as counted (so --bias on|off is honoured)."""
    return row.counts.bias != 0


def string_padding(row: LayerRow) -> bool:
    """The export writes Keras padding='same' at stride 1 as torch's padding='same'; strided 'same' and
    'causal' pad explicitly (F.pad) and convolve with padding=0."""
    return row.spec.padding == "same" and all(s == 1 for s in row.spec.strides)


def convs(row: LayerRow) -> list[Conv]:
    """The nn.ConvNd calls of a Conv, DepthwiseConv or SeparableConv layer."""
    spec, channels = row.spec, row.input_shapes[0][-1]
    positions = product(row.output_shape[:-1])
    kernel = product(spec.kernel_size)
    padded = string_padding(row)
    if row.type.startswith("Depthwise"):
        return [Conv(positions, channels * spec.depth_multiplier, ONE, kernel, channels, has_bias(row), padded)]
    if row.type.startswith("Separable"):
        depthwise = channels * spec.depth_multiplier
        return [Conv(positions, depthwise, ONE, kernel, channels, False, padded),
                Conv(positions, spec.filters, depthwise, ONE, ONE, has_bias(row), False)]
    return [Conv(positions, spec.filters, channels / spec.groups, kernel, spec.groups, has_bias(row), padded)]


def dense(row: LayerRow) -> Linear:
    return Linear(ONE, product(row.output_shape[:-1]), row.input_shapes[0][-1], row.spec.units, has_bias(row))


def recurrent_dims(row: LayerRow) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    steps, features = row.input_shapes[0]
    return steps, features, row.spec.units


def gru_resets_after(row: LayerRow) -> bool:
    """reset_after=True, or cudnn_compatible (Keras 2's CuDNNGRU computes reset_after=True)."""
    return bool(row.spec.reset_after or getattr(row.spec, "cudnn_compatible", False))


def native_rnn(row: LayerRow, native_gru: bool) -> Rnn | None:
    """The torch.nn.GRU the export uses, or None when it writes a loop (KerasGRU, KerasLSTM, KerasRNN): a GRU
    with tanh and sigmoid that resets after (or any such GRU with native_gru). LSTMs are always loops."""
    steps, features, units = recurrent_dims(row)
    spec = row.spec
    standard = getattr(spec, "activation", None) == "tanh" and getattr(spec, "recurrent_activation", None) == "sigmoid"
    if row.type == "GRU" and standard and (gru_resets_after(row) or native_gru):
        return Rnn("GRU", steps, features, units, has_bias(row))
    return None


def loop_linears(row: LayerRow) -> list[Linear]:
    """The nn.Linear calls of a recurrent loop: the input kernel once over the sequence, the recurrent
    kernel(s) once per step. KerasGRU: recurrent_zr and recurrent_h (no bias), or, resetting after,
    recurrent_kernel with a bias; KerasLSTM: recurrent_kernel, with a bias only if cudnn_compatible;
    KerasRNN: recurrent_kernel without bias."""
    steps, features, units = recurrent_dims(row)
    bias = has_bias(row)
    gates = {"GRU": 3, "LSTM": 4, "SimpleRNN": 1}[row.type]
    kernel = Linear(ONE, steps, features, gates * units, bias)
    if row.type == "GRU" and not gru_resets_after(row):
        return [kernel, Linear(steps, ONE, units, 2 * units, False), Linear(steps, ONE, units, units, False)]
    recurrent_bias = bias and (row.type == "GRU" or (row.type == "LSTM" and bool(row.spec.cudnn_compatible)))
    return [kernel, Linear(steps, ONE, units, gates * units, recurrent_bias)]


def loop_activations(row: LayerRow) -> list[Activation]:
    """Activation calls of a recurrent loop per the export: GRU z, r (recurrent) and hh; LSTM i, f, o
    (recurrent), g and c; SimpleRNN one, each on `units` elements once per step."""
    steps, _, units = recurrent_dims(row)
    spec = row.spec
    if row.type == "SimpleRNN":
        calls = [(spec.activation, 1)]
    elif row.type == "GRU":
        calls = [(spec.recurrent_activation, 2), (spec.activation, 1)]
    else:
        calls = [(spec.recurrent_activation, 3), (spec.activation, 2)]
    return [Activation(name, units, steps * n) for name, n in calls if name != "linear"]


LOOP_OPS = {  # the elementwise ops of one step of each loop (the * + - operators)
    "GRU": ("aten::add", "aten::mul", "aten::rsub"),
    "LSTM": ("aten::add", "aten::mul"),
    "SimpleRNN": ("aten::add",),
}


@dataclass(frozen=True)
class Pool:
    """One nn.MaxPoolNd / nn.AvgPoolNd module as the export calls it (torch_modules.Pool)."""

    kind: str  # "max" or "average"
    input_elements: sympy.Expr  # what the pool module sees (padded for 'same')
    output_elements: sympy.Expr
    padded_spatial: sympy.Expr  # cells of one padded channel
    output_spatial: sympy.Expr
    same: bool


def pool(row: LayerRow) -> Pool:
    """'same' pads each spatial axis of n to (out - 1)·s + k (at least n) before pooling; average 'same' pools
    the padded input and a one-channel map of ones, then divides."""
    spec = row.spec
    (shape,) = row.input_shapes
    strides = spec.strides or spec.pool_size
    spatial = shape[:-1]
    channels = shape[-1]
    same = spec.padding == "same"
    if same:
        padded = [sympy.Max(floor_div(n - 1, s) * s + k, n) for n, k, s in zip(spatial, spec.pool_size, strides, strict=True)]
    else:
        padded = list(spatial)
    padded_spatial = product(padded)
    output_spatial = product(row.output_shape[:-1])
    return Pool("max" if row.type.startswith("Max") else "average", padded_spatial * channels,
                output_spatial * channels, padded_spatial, output_spatial, same)


def normalized_elements(row: LayerRow) -> sympy.Expr:
    return product(row.input_shapes[0])


def batch_norm_affine(row: LayerRow) -> bool:
    """torch's BatchNorm affine is all or nothing: the export sets it only with both center and scale;
    with one of them, it multiplies by gamma or adds beta itself (the * or + operator)."""
    return bool(row.spec.center and row.spec.scale)


def batch_norm_extra_op(row: LayerRow) -> str | None:
    if row.spec.scale and not row.spec.center:
        return "aten::mul"
    if row.spec.center and not row.spec.scale:
        return "aten::add"
    return None



@dataclass(frozen=True)
class Attention:
    """torch_modules.MultiHeadAttention: nn.Linear projections (query, key, value, gate with use_gate, output),
    q / sqrt(key_dim), two torch.matmul per head (q k^T over the key positions, then times v), torch.softmax,
    and with use_gate torch.sigmoid and a * . With attention_axes the two products are torch.einsum calls
    (Keras' equations), over the attended axes only."""

    linears: list[Linear]
    score_macs: sympy.Expr  # heads · B · Qa · Va · key_dim (B = 1, Qa = Pq, Va = Pk without attention_axes)
    value_macs: sympy.Expr  # heads · B · Qa · Va · value_dim
    gate: bool
    einsum: bool  # attention over some position axes only: torch.einsum instead of torch.matmul


def attention(row: LayerRow) -> Attention:
    spec = row.spec
    query, value = row.input_shapes[0], row.input_shapes[1]
    key = row.input_shapes[2] if len(row.input_shapes) > 2 else value
    heads, key_dim = spec.num_heads, spec.key_dim
    value_dim = spec.value_dim if spec.value_dim is not None else key_dim
    out = product(spec.output_shape) if spec.output_shape else query[-1]
    pq, pk, pv = product(query[:-1]), product(key[:-1]), product(value[:-1])
    attended = (list(range(len(query) - 1)) if spec.attention_axes is None
                else sorted(keras_axis(axis, len(query)) - 1 for axis in spec.attention_axes))
    batch, qa, va = attention_extent(attended, query, value)
    bias = has_bias(row)
    linears = [Linear(ONE, pq, query[-1], heads * key_dim, bias), Linear(ONE, pk, key[-1], heads * key_dim, bias),
               Linear(ONE, pv, value[-1], heads * value_dim, bias)]
    if spec.use_gate:
        linears.append(Linear(ONE, pq, query[-1], heads * value_dim, bias))
    linears.append(Linear(ONE, pq, heads * value_dim, out, bias))
    pairs = heads * batch * qa * va
    # to_torch takes the matmul path when the axes listed are every position axis (torch_builders._attention_axes)
    einsum = attended != list(range(len(query) - 1))
    return Attention(linears, pairs * key_dim, pairs * value_dim, bool(spec.use_gate), einsum)


def attention_ops(att: Attention) -> list[str]:
    """The unsupported-by-fvcore ops of an attention call: the scaling divide, softmax, the gate's sigmoid and *."""
    return ["aten::div", "aten::softmax", *(("aten::sigmoid", "aten::mul") if att.gate else ())]


def conv_transpose_crops(kernel_size, strides, padding, output_padding, dilation_rate) -> list[tuple[int, int]]:
    """Keras' (before, after) crop per axis of torch's full transposed-convolution output (torch_modules has the same
    function; keras backend_utils.compute_conv_transpose_output_crops_for_torch); a negative `after` is an extension."""
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


@dataclass(frozen=True)
class ConvTranspose:
    """torch_modules.ConvTranspose: one nn.ConvTransposeNd call (padding 0, output_padding where Keras' output is
    longer), then a crop. `input_positions` scatter into `kernel` taps of `filters` outputs each, a dot product over
    `in_channels`; `full_positions`: positions of the nn.ConvTransposeNd output, before the crop."""

    input_positions: sympy.Expr
    full_positions: sympy.Expr
    in_channels: sympy.Expr
    filters: sympy.Expr
    kernel: sympy.Expr
    bias: bool

    @property
    def macs(self) -> sympy.Expr:
        return self.input_positions * self.kernel * self.in_channels * self.filters


def conv_transpose(row: LayerRow) -> ConvTranspose:
    """Conv1DTranspose / Conv2DTranspose as exported; kernel_size, strides, dilation_rate and output_padding must be
    numbers (the crops are), the input length may be symbolic: full length (n - 1)·s + d·(k - 1) + 1 + extension."""
    spec = row.spec
    (shape,) = row.input_shapes
    ints = [[int(v) for v in values] for values in (spec.kernel_size, spec.strides, spec.dilation_rate)]
    output_padding = [int(v) for v in spec.output_padding] if spec.output_padding is not None else None
    crops = conv_transpose_crops(*ints[:2], spec.padding, output_padding, ints[2])
    full = [(n - 1) * s + (k - 1) * d + 1 + max(0, -after)
            for n, k, s, d, (_, after) in zip(shape[:-1], *ints, crops, strict=True)]
    return ConvTranspose(product(shape[:-1]), product(full), shape[-1], spec.filters, product(spec.kernel_size),
                         has_bias(row))


# -- wrappers: the wrapped layer's module(s), counted by the wrapped layer's own rule --

MERGE_MODE_OPS = {None: (), "concat": (), "sum": ("aten::add",), "mul": ("aten::mul",), "ave": ("aten::add", "aten::div")}


def wrapped_row(row: LayerRow, input_shape: tuple, output_shape: tuple, share: sympy.Expr, **changes: object) -> LayerRow:
    """The wrapped layer as a row of its own: its spec and type, the shapes of one call, `share` of the counts."""
    inner = row.spec.layer
    if changes:
        inner = inner.model_copy(update=changes)
    return replace(row, type=inner.type, spec=inner, input_shapes=(input_shape,), output_shape=output_shape,
                   counts=row.counts.scaled(share))


def bidirectional_rows(row: LayerRow) -> tuple[LayerRow, LayerRow]:
    """torch_modules.Bidirectional: the forward module and the backward one (go_backwards flipped), each on the whole
    input; concat halves the last output axis. The merge is the * + / operators or torch.cat, outside both modules."""
    out = row.output_shape
    if row.spec.merge_mode == "concat":
        out = (*out[:-1], out[-1] / 2)
    half = sympy.Rational(1, 2)
    inner = row.spec.layer
    return (wrapped_row(row, row.input_shapes[0], out, half),
            wrapped_row(row, row.input_shapes[0], out, half, go_backwards=not inner.go_backwards))


def time_distributed_row(row: LayerRow) -> tuple[sympy.Expr, LayerRow]:
    """torch_modules.TimeDistributed: the wrapped module called once on (batch·T, ...): (T, the call at batch 1)."""
    steps = row.input_shapes[0][0]
    return steps, wrapped_row(row, row.input_shapes[0][1:], row.output_shape[1:], sympy.Integer(1) / steps)
