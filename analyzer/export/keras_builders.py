"""Keras 3 builders: one small function per layer type, giving the `keras.layers` class and
its arguments at concrete sizes (the layer's `name` is added by the exporter).

A new layer type needs one entry here and one in torch_builders.py. The exporter
resolves `Construct("Conv1D", ...)` to `keras.layers.Conv1D(...)`; a `Ref("ops.cos")`
argument becomes `keras.ops.cos`.
"""

from __future__ import annotations

from typing import Any

from analyzer.export.plan import BuilderTable, Construct, LayerPlan, Ref

KERAS_BUILDERS = BuilderTable("keras", "analyzer/export/keras_builders.py")


def _one_or_tuple(values: tuple[int, ...]) -> int | tuple[int, ...]:
    return values[0] if len(values) == 1 else values


@KERAS_BUILDERS.register("Conv1D", "Conv2D")
def convolution(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(
        layer.type,
        filters=plan.int(layer.filters),
        kernel_size=_one_or_tuple(plan.ints(layer.kernel_size)),
        strides=_one_or_tuple(plan.ints(layer.strides)),
        padding=layer.padding,
        dilation_rate=_one_or_tuple(plan.ints(layer.dilation_rate)),
        groups=plan.int(layer.groups),
        activation=layer.activation,
        use_bias=plan.use_bias(layer.use_bias),
    )


@KERAS_BUILDERS.register("SeparableConv1D")
def separable_convolution(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(
        layer.type,
        filters=plan.int(layer.filters),
        kernel_size=_one_or_tuple(plan.ints(layer.kernel_size)),
        strides=_one_or_tuple(plan.ints(layer.strides)),
        padding=layer.padding,
        dilation_rate=_one_or_tuple(plan.ints(layer.dilation_rate)),
        depth_multiplier=plan.int(layer.depth_multiplier),
        activation=layer.activation,
        use_bias=plan.use_bias(layer.use_bias),
    )


@KERAS_BUILDERS.register("Dense")
def dense(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Dense", units=plan.int(layer.units), activation=layer.activation, use_bias=plan.use_bias(layer.use_bias))


@KERAS_BUILDERS.register("GRU")
def gru(layer: Any, plan: LayerPlan) -> Construct:
    # cudnn_compatible: Keras 2's CuDNNGRU, which computes reset_after=True (its two bias vectors)
    return Construct.of(
        "GRU",
        units=plan.int(layer.units),
        activation=layer.activation,
        recurrent_activation=layer.recurrent_activation,
        use_bias=plan.use_bias(layer.use_bias),
        reset_after=layer.reset_after or layer.cudnn_compatible,
        return_sequences=layer.return_sequences,
        return_state=layer.return_state or None,
        go_backwards=layer.go_backwards,
        dropout=layer.dropout,
        recurrent_dropout=layer.recurrent_dropout,
    )


@KERAS_BUILDERS.register("BatchNormalization")
def batch_normalization(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("BatchNormalization", axis=layer.axis, momentum=layer.momentum, epsilon=layer.epsilon,
                        center=layer.center, scale=layer.scale)


@KERAS_BUILDERS.register("Activation")
def activation(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Activation", activation=layer.activation)


@KERAS_BUILDERS.register("Lambda")
def elementwise_function(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Lambda", function=Ref(f"ops.{layer.function}"))


@KERAS_BUILDERS.register("Dropout")
def dropout(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Dropout", rate=layer.rate, seed=layer.seed)


@KERAS_BUILDERS.register("Flatten")
def flatten(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Flatten")


@KERAS_BUILDERS.register("Reshape")
def reshape(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Reshape", target_shape=plan.output_shape)  # any -1 already resolved


@KERAS_BUILDERS.register("Add", "Subtract", "Multiply")
def elementwise_merge(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type)


@KERAS_BUILDERS.register("Concatenate")
def concatenate(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Concatenate", axis=layer.axis)


@KERAS_BUILDERS.register("Conv3D")
def convolution_3d(layer: Any, plan: LayerPlan) -> Construct:
    return convolution(layer, plan)


@KERAS_BUILDERS.register("DepthwiseConv1D", "DepthwiseConv2D")
def depthwise_convolution(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(
        layer.type,
        kernel_size=_one_or_tuple(plan.ints(layer.kernel_size)),
        strides=_one_or_tuple(plan.ints(layer.strides)),
        padding=layer.padding,
        dilation_rate=_one_or_tuple(plan.ints(layer.dilation_rate)),
        depth_multiplier=plan.int(layer.depth_multiplier),
        activation=layer.activation,
        use_bias=plan.use_bias(layer.use_bias),
    )


@KERAS_BUILDERS.register("SeparableConv2D")
def separable_convolution_2d(layer: Any, plan: LayerPlan) -> Construct:
    return separable_convolution(layer, plan)


@KERAS_BUILDERS.register("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
def pooling(layer: Any, plan: LayerPlan) -> Construct:
    strides = plan.ints(layer.strides) if layer.strides is not None else None
    return Construct.of(layer.type, pool_size=_one_or_tuple(plan.ints(layer.pool_size)),
                        strides=_one_or_tuple(strides) if strides else None, padding=layer.padding)


@KERAS_BUILDERS.register("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D")
def global_pooling(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type, keepdims=layer.keepdims)


def _pairs(plan: LayerPlan, pairs: Any) -> tuple[tuple[int, int], ...]:
    return tuple((plan.int(a), plan.int(b)) for a, b in pairs)


@KERAS_BUILDERS.register("ZeroPadding1D", "ZeroPadding2D")
def zero_padding(layer: Any, plan: LayerPlan) -> Construct:
    pairs = _pairs(plan, layer.padding)
    return Construct.of(layer.type, padding=pairs[0] if len(pairs) == 1 else pairs)


@KERAS_BUILDERS.register("Cropping1D", "Cropping2D")
def cropping(layer: Any, plan: LayerPlan) -> Construct:
    pairs = _pairs(plan, layer.cropping)
    return Construct.of(layer.type, cropping=pairs[0] if len(pairs) == 1 else pairs)


@KERAS_BUILDERS.register("UpSampling1D")
def up_sampling_1d(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("UpSampling1D", size=plan.int(layer.size))


@KERAS_BUILDERS.register("UpSampling2D")
def up_sampling_2d(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("UpSampling2D", size=plan.ints(layer.size), interpolation=layer.interpolation)


@KERAS_BUILDERS.register("Maximum", "Minimum", "Average")
def elementwise_merge_more(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of(layer.type)


@KERAS_BUILDERS.register("Softmax")
def softmax(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Softmax", axis=layer.axis if not isinstance(layer.axis, list) else tuple(layer.axis))


@KERAS_BUILDERS.register("Permute")
def permute(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Permute", dims=tuple(layer.dims))


@KERAS_BUILDERS.register("RepeatVector")
def repeat_vector(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("RepeatVector", n=plan.int(layer.n))


@KERAS_BUILDERS.register("GaussianNoise")
def gaussian_noise(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("GaussianNoise", stddev=layer.stddev, seed=layer.seed)


@KERAS_BUILDERS.register("GaussianDropout")
def gaussian_dropout(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("GaussianDropout", rate=layer.rate, seed=layer.seed)


@KERAS_BUILDERS.register("LayerNormalization")
def layer_normalization(layer: Any, plan: LayerPlan) -> Construct:
    axis = tuple(layer.axis) if isinstance(layer.axis, list) else layer.axis
    return Construct.of("LayerNormalization", axis=axis, epsilon=layer.epsilon, center=layer.center, scale=layer.scale)


@KERAS_BUILDERS.register("GroupNormalization")
def group_normalization(layer: Any, plan: LayerPlan) -> Construct:
    groups = -1 if layer.groups == -1 else plan.int(layer.groups)
    return Construct.of("GroupNormalization", groups=groups, axis=layer.axis, epsilon=layer.epsilon,
                        center=layer.center, scale=layer.scale)


@KERAS_BUILDERS.register("SimpleRNN")
def simple_rnn(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("SimpleRNN", units=plan.int(layer.units), activation=layer.activation,
                        use_bias=plan.use_bias(layer.use_bias), return_sequences=layer.return_sequences,
                        return_state=layer.return_state or None, go_backwards=layer.go_backwards, dropout=layer.dropout,
                        recurrent_dropout=layer.recurrent_dropout)


@KERAS_BUILDERS.register("LSTM")
def lstm(layer: Any, plan: LayerPlan) -> Construct:
    # cudnn_compatible (Keras 2's CuDNNLSTM): Keras 3 has no layer with its second bias vector; the two
    # only ever add up, so a Keras 3 LSTM computes the same function with 4*units fewer params.
    return Construct.of("LSTM", units=plan.int(layer.units), activation=layer.activation,
                        recurrent_activation=layer.recurrent_activation, use_bias=plan.use_bias(layer.use_bias),
                        return_sequences=layer.return_sequences, return_state=layer.return_state or None,
                        go_backwards=layer.go_backwards, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout)


@KERAS_BUILDERS.register("Embedding")
def embedding(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("Embedding", input_dim=plan.int(layer.input_dim), output_dim=plan.int(layer.output_dim),
                        mask_zero=layer.mask_zero)


@KERAS_BUILDERS.register("MultiHeadAttention")
def multi_head_attention(layer: Any, plan: LayerPlan) -> Construct:
    output_shape = plan.ints(layer.output_shape) if layer.output_shape else None
    return Construct("MultiHeadAttention", dict(
        num_heads=plan.int(layer.num_heads),
        key_dim=plan.int(layer.key_dim),
        value_dim=plan.int(layer.value_dim) if layer.value_dim is not None else None,
        output_shape=_one_or_tuple(output_shape) if output_shape else None,
        use_bias=plan.use_bias(layer.use_bias),
        use_gate=layer.use_gate,
        dropout=layer.dropout,
        attention_axes=tuple(layer.attention_axes) if layer.attention_axes is not None else None,
    ), call="args")


@KERAS_BUILDERS.register("Conv1DTranspose", "Conv2DTranspose")
def convolution_transpose(layer: Any, plan: LayerPlan) -> Construct:
    output_padding = plan.ints(layer.output_padding) if layer.output_padding is not None else None
    return Construct.of(
        layer.type,
        filters=plan.int(layer.filters),
        kernel_size=_one_or_tuple(plan.ints(layer.kernel_size)),
        strides=_one_or_tuple(plan.ints(layer.strides)),
        padding=layer.padding,
        output_padding=_one_or_tuple(output_padding) if output_padding else None,
        dilation_rate=_one_or_tuple(plan.ints(layer.dilation_rate)),
        activation=layer.activation,
        use_bias=plan.use_bias(layer.use_bias),
    )


def _wrapped(plan: LayerPlan, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Construct:
    """The wrapped layer's own construct (a keras.layers object given to the wrapper), trainable: false kept."""
    construct = KERAS_BUILDERS.build(plan.wrapped(input_shape, output_shape))
    if not plan.spec.layer.trainable:
        construct = Construct(construct.cls, {**construct.kwargs, "trainable": False}, construct.call)
    return construct


@KERAS_BUILDERS.register("Bidirectional")
def bidirectional(layer: Any, plan: LayerPlan) -> Construct:
    if layer.layer.go_backwards:
        raise plan.error("Keras 3's Bidirectional refuses a wrapped layer with go_backwards: true (it builds the "
                         "backward copy with the same go_backwards)", hint="drop go_backwards from the wrapped layer")
    return Construct.of("Bidirectional", layer=_wrapped(plan, plan.input_shapes[0], plan.output_shape),
                        merge_mode=layer.merge_mode if layer.merge_mode is not None else Ref("None"))


@KERAS_BUILDERS.register("TimeDistributed")
def time_distributed(layer: Any, plan: LayerPlan) -> Construct:
    return Construct.of("TimeDistributed", layer=_wrapped(plan, plan.input_shape[1:], plan.output_shape[1:]))
