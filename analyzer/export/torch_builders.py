"""PyTorch builders: one small function per layer type, giving the module (a class of
analyzer/export/torch_modules.py, or `nn.X` for a plain torch module) and its arguments at
concrete sizes. Every module takes and returns channels-last tensors, as Keras does.

A new layer type needs one entry here and one in keras_builders.py (and, if no module
fits, a class in torch_modules.py with a `load_keras_weights` method).
"""

from __future__ import annotations

from typing import Any

from analyzer.export.plan import BuilderTable, Construct, LayerPlan, Ref
from analyzer.layers.attention import keras_axis

TORCH_BUILDERS = BuilderTable("torch", "analyzer/export/torch_builders.py")


@TORCH_BUILDERS.register("Conv1D", "Conv2D", "Conv3D")
def convolution(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(
        "Conv",
        in_channels=plan.input_shape[-1],
        filters=plan.int(layer.filters),
        kernel_size=plan.ints(layer.kernel_size),
        strides=plan.ints(layer.strides),
        padding=layer.padding,
        dilation_rate=plan.ints(layer.dilation_rate),
        groups=plan.int(layer.groups),
        use_bias=plan.use_bias(layer.use_bias),
        activation=layer.activation,
    )


@TORCH_BUILDERS.register("SeparableConv1D", "SeparableConv2D")
def separable_convolution(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(
        "SeparableConv",
        in_channels=plan.input_shape[-1],
        filters=plan.int(layer.filters),
        kernel_size=plan.ints(layer.kernel_size),
        strides=plan.ints(layer.strides),
        padding=layer.padding,
        dilation_rate=plan.ints(layer.dilation_rate),
        depth_multiplier=plan.int(layer.depth_multiplier),
        use_bias=plan.use_bias(layer.use_bias),
        activation=layer.activation,
    )


@TORCH_BUILDERS.register("Dense")
def dense(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Dense", in_features=plan.input_shape[-1], units=plan.int(layer.units),
                        use_bias=plan.use_bias(layer.use_bias), activation=layer.activation)


@TORCH_BUILDERS.register("GRU")
def gru(layer: Any, plan: LayerPlan) -> Construct:
    """nn.GRU computes Keras' reset_after=True GRU with sigmoid/tanh; anything else gets KerasGRU,
    a loop over time with nn.Linear kernels. `native_gru=True` exports every GRU with sigmoid/tanh as
    nn.GRU, as a straightforward port does (for reset_after=False that is another function: same
    MACs, 3*units more bias parameters); other activations stay loops."""
    _steps, features = plan.input_shapes[0]  # then the initial state, if any
    units = plan.int(layer.units)
    common = dict(return_sequences=layer.return_sequences, go_backwards=layer.go_backwards,
                  return_state=layer.return_state or None)
    standard = layer.activation == "tanh" and layer.recurrent_activation == "sigmoid"
    reset_after = layer.reset_after or layer.cudnn_compatible  # Keras 2's CuDNNGRU computes reset_after=True
    if standard and (reset_after or plan.options.get("native_gru")):
        return Construct.of("GRU", input_size=features, units=units, use_bias=plan.use_bias(layer.use_bias), **common)
    return Construct.of(
        "KerasGRU",
        input_size=features,
        units=units,
        activation=layer.activation,
        recurrent_activation=layer.recurrent_activation,
        use_bias=plan.use_bias(layer.use_bias),
        reset_after=reset_after,
        **common,
    )


@TORCH_BUILDERS.register("BatchNormalization")
def batch_normalization(layer: Any, plan: LayerPlan) -> Construct:
    rank = len(plan.input_shape) + 1  # with the batch axis, as Keras counts `axis`
    axis = layer.axis + rank if layer.axis < 0 else layer.axis
    if rank > 5:
        raise plan.error(f"BatchNormalization of a rank-{rank} input (with the batch axis) has no torch "
                         "counterpart (nn.BatchNorm1d/2d/3d take rank 2 to 5)")
    return Construct.of(
        "BatchNorm",
        channels=plan.input_shape[axis - 1],
        axis=axis,
        rank=rank,
        epsilon=layer.epsilon,
        momentum=round(1 - layer.momentum, 12),  # torch's momentum weighs the new batch, Keras' the running value
        center=layer.center,
        scale=layer.scale,
    )


@TORCH_BUILDERS.register("Activation")
def activation(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Activation", activation=layer.activation)


@TORCH_BUILDERS.register("Lambda")
def elementwise_function(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Lambda", function=layer.function)


@TORCH_BUILDERS.register("Dropout")
def dropout(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("nn.Dropout", p=layer.rate)


@TORCH_BUILDERS.register("Flatten")
def flatten(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("nn.Flatten")  # the data is channels-last already, so this is Keras' order


@TORCH_BUILDERS.register("Reshape")
def reshape(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Reshape", target_shape=plan.output_shape)


@TORCH_BUILDERS.register("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average")
def elementwise_merge(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Merge", op=layer.type.lower())


@TORCH_BUILDERS.register("Concatenate")
def concatenate(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Concatenate", axis=layer.axis)


@TORCH_BUILDERS.register("DepthwiseConv1D", "DepthwiseConv2D")
def depthwise_convolution(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(
        "DepthwiseConv",
        in_channels=plan.input_shape[-1],
        kernel_size=plan.ints(layer.kernel_size),
        strides=plan.ints(layer.strides),
        padding=layer.padding,
        dilation_rate=plan.ints(layer.dilation_rate),
        depth_multiplier=plan.int(layer.depth_multiplier),
        use_bias=plan.use_bias(layer.use_bias),
        activation=layer.activation,
    )


@TORCH_BUILDERS.register("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
def pooling(layer: Any, plan: LayerPlan) -> Construct:
    pool_size = plan.ints(layer.pool_size)
    strides = plan.ints(layer.strides) if layer.strides is not None else pool_size
    return Construct.of("Pool", kind="max" if layer.type.startswith("Max") else "average", pool_size=pool_size,
                        strides=strides, padding=layer.padding)


@TORCH_BUILDERS.register("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D")
def global_pooling(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("GlobalPool", kind="max" if "Max" in layer.type else "average", rank=len(plan.input_shape) - 1,
                        keepdims=layer.keepdims)


@TORCH_BUILDERS.register("ZeroPadding1D", "ZeroPadding2D")
def zero_padding(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("ZeroPadding", padding=tuple((plan.int(a), plan.int(b)) for a, b in layer.padding))


@TORCH_BUILDERS.register("Cropping1D", "Cropping2D")
def cropping(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Cropping", cropping=tuple((plan.int(a), plan.int(b)) for a, b in layer.cropping))


@TORCH_BUILDERS.register("UpSampling1D", "UpSampling2D")
def up_sampling(layer: Any, plan: LayerPlan) -> Construct:
    if getattr(layer, "interpolation", "nearest") != "nearest":
        raise plan.error(f"interpolation {layer.interpolation!r} is not exported to torch yet (only 'nearest')")
    size = plan.ints(layer.size) if isinstance(layer.size, tuple) else (plan.int(layer.size),)
    return Construct.of("UpSampling", size=size)


@TORCH_BUILDERS.register("Softmax")
def softmax(layer: Any, plan: LayerPlan) -> Construct:
    if isinstance(layer.axis, list):
        if len(layer.axis) != 1:
            raise plan.error("a Softmax over several axes is not exported to torch yet")
        return Construct.of("Softmax", axis=layer.axis[0])
    return Construct.of("Softmax", axis=layer.axis)


@TORCH_BUILDERS.register("Permute")
def permute(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Permute", dims=tuple(layer.dims))


@TORCH_BUILDERS.register("RepeatVector")
def repeat_vector(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("RepeatVector", n=plan.int(layer.n))


@TORCH_BUILDERS.register("GaussianNoise", "GaussianDropout")
def noise(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("nn.Identity")  # the identity at inference, as in Keras


@TORCH_BUILDERS.register("LayerNormalization")
def layer_normalization(layer: Any, plan: LayerPlan) -> Construct:
    rank = len(plan.input_shape)
    axes = sorted({(a + rank + 1 if a < 0 else a) for a in (layer.axis if isinstance(layer.axis, list) else [layer.axis])})
    if axes != list(range(rank + 1 - len(axes), rank + 1)):
        raise plan.error(f"LayerNormalization over axes {layer.axis} is exported to torch only over trailing axes")
    if layer.center and not layer.scale:
        raise plan.error("LayerNormalization with center but no scale has no torch.nn.LayerNorm counterpart")
    return Construct.of("LayerNorm", shape=tuple(plan.input_shape[a - 1] for a in axes), epsilon=layer.epsilon,
                        center=layer.center, scale=layer.scale)


@TORCH_BUILDERS.register("GroupNormalization")
def group_normalization(layer: Any, plan: LayerPlan) -> Construct:
    rank = len(plan.input_shape) + 1
    if (layer.axis + rank if layer.axis < 0 else layer.axis) != rank - 1:
        raise plan.error("GroupNormalization is exported to torch only over the last axis")
    if layer.center != layer.scale:
        raise plan.error("GroupNormalization with only one of center / scale has no torch.nn.GroupNorm counterpart")
    channels = plan.input_shape[-1]
    groups = channels if layer.groups == -1 else plan.int(layer.groups)
    return Construct.of("GroupNorm", groups=groups, channels=channels, epsilon=layer.epsilon, affine=layer.scale)


@TORCH_BUILDERS.register("SimpleRNN")
def simple_rnn(layer: Any, plan: LayerPlan) -> Construct:
    _steps, features = plan.input_shapes[0]  # then the initial state, if any
    return Construct.of("KerasRNN", input_size=features, units=plan.int(layer.units), activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias), return_sequences=layer.return_sequences,
                        go_backwards=layer.go_backwards, return_state=layer.return_state or None)


@TORCH_BUILDERS.register("LSTM")
def lstm(layer: Any, plan: LayerPlan) -> Construct:
    """KerasLSTM, a loop with nn.Linear kernels (nn.LSTM's fused CPU kernel is invisible to
    FlopCounterMode); cudnn_compatible adds the second bias vector of CuDNNLSTM and nn.LSTM."""
    _steps, features = plan.input_shapes[0]  # then the initial state, if any
    return Construct.of("KerasLSTM", input_size=features, units=plan.int(layer.units), activation=layer.activation,
                        recurrent_activation=layer.recurrent_activation, use_bias=plan.use_bias(layer.use_bias),
                        return_sequences=layer.return_sequences, go_backwards=layer.go_backwards,
                        recurrent_bias=layer.cudnn_compatible, return_state=layer.return_state or None)


@TORCH_BUILDERS.register("Embedding")
def embedding(layer: Any, plan: LayerPlan) -> Construct:
    if layer.mask_zero:
        raise plan.error("mask_zero: the masks Keras passes on to later layers are not exported to torch")
    return Construct.of("Embedding", input_dim=plan.int(layer.input_dim), output_dim=plan.int(layer.output_dim))


@TORCH_BUILDERS.register("MultiHeadAttention")
def multi_head_attention(layer: Any, plan: LayerPlan) -> Construct:
    query, value = plan.input_shapes[0], plan.input_shapes[1]
    key = plan.input_shapes[2] if len(plan.input_shapes) > 2 else value
    key_dim = plan.int(layer.key_dim)
    value_dim = plan.int(layer.value_dim) if layer.value_dim is not None else key_dim
    output_shape = plan.ints(layer.output_shape) if layer.output_shape else (query[-1],)
    return Construct.of("MultiHeadAttention", query_dim=query[-1], key_dim_in=key[-1], value_dim_in=value[-1],
                        num_heads=plan.int(layer.num_heads), key_dim=key_dim, value_dim=value_dim,
                        output_shape=output_shape, use_bias=plan.use_bias(layer.use_bias), use_gate=layer.use_gate,
                        attention_axes=_attention_axes(layer.attention_axes, len(query)))


def _attention_axes(axes: Any, rank: int) -> tuple[int, ...] | None:
    """Keras' attention_axes, or None for every position axis (the module's matmul path, as without them)."""
    if axes is None or sorted(keras_axis(a, rank) for a in axes) == list(range(1, rank)):
        return None
    return tuple(axes)


@TORCH_BUILDERS.register("Conv1DTranspose", "Conv2DTranspose")
def convolution_transpose(layer: Any, plan: LayerPlan) -> Construct:
    """ConvTranspose: nn.ConvTransposeNd with padding 0, then Keras' crops (Keras' own torch backend does this)."""
    return Construct.of(
        "ConvTranspose",
        in_channels=plan.input_shape[-1],
        filters=plan.int(layer.filters),
        kernel_size=plan.ints(layer.kernel_size),
        strides=plan.ints(layer.strides),
        padding=layer.padding,
        dilation_rate=plan.ints(layer.dilation_rate),
        output_padding=plan.ints(layer.output_padding) if layer.output_padding is not None else None,
        use_bias=plan.use_bias(layer.use_bias),
        activation=layer.activation,
    )


def _wrapped(plan: LayerPlan, input_shape: tuple[int, ...], output_shape: tuple[int, ...], **changes: Any) -> Construct:
    return TORCH_BUILDERS.build(plan.wrapped(input_shape, output_shape, **changes))


@TORCH_BUILDERS.register("Bidirectional")
def bidirectional(layer: Any, plan: LayerPlan) -> Construct:
    """Two copies of the wrapped recurrent layer's module, the backward one with go_backwards flipped (as Keras)."""
    inner = layer.layer
    return Construct.of(
        "Bidirectional",
        forward_layer=_wrapped(plan, plan.input_shapes[0], plan.output_shape),
        backward_layer=_wrapped(plan, plan.input_shapes[0], plan.output_shape, go_backwards=not inner.go_backwards),
        merge_mode=layer.merge_mode if layer.merge_mode is not None else Ref("None"),
        return_sequences=inner.return_sequences,
        trainable=None if inner.trainable else False,
        return_state=inner.return_state or None,
    )


@TORCH_BUILDERS.register("TimeDistributed")
def time_distributed(layer: Any, plan: LayerPlan) -> Construct:
    """The wrapped layer's module on (batch·T, ...): its costs T times, its params once."""
    return Construct.of("TimeDistributed", layer=_wrapped(plan, plan.input_shape[1:], plan.output_shape[1:]),
                        trainable=None if layer.layer.trainable else False)
