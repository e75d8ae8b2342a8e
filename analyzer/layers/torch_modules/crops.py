"""Keras' crop of torch's full transposed-convolution output. Torch-free on purpose: the torch module
(conv_transpose.py) crops with it, and the convention rules of analyzer/layers/conv_transpose.py compute
the module's full output length with it, so both read one definition (the written torch file copies it).
"""


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
