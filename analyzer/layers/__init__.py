"""Layer types. Each module states, for its layer family, the spec fields, the
shape rule, the params and the costs; `LAYERS` is the table of all of them (a module is
imported the first time one of its types is looked up: registry.TYPE_MODULES).

Where is X counted?
  convolutional.py   Conv1D, Conv2D, Conv3D (groups), DepthwiseConv1D/2D, SeparableConv1D/2D
  conv_transpose.py  Conv1DTranspose, Conv2DTranspose
  pooling.py         MaxPooling1D/2D, AveragePooling1D/2D, GlobalMax/GlobalAveragePooling1D/2D
  resizing.py        UpSampling1D/2D, ZeroPadding1D/2D, Cropping1D/2D
  dense.py           Dense
  embedding.py       Embedding
  recurrent.py       SimpleRNN, LSTM, GRU
  wrappers.py        Bidirectional, TimeDistributed
  attention.py       MultiHeadAttention
  normalization.py   BatchNormalization, LayerNormalization, GroupNormalization
  activations.py     Activation, Softmax, and every activation's cost (also fused `activation:`)
  merging.py         Add, Subtract, Multiply, Maximum, Minimum, Average, Concatenate
  reshaping.py       Reshape, Flatten, Permute, RepeatVector
  elementwise.py     Lambda (cos, sin, ...)
  regularization.py  Dropout, GaussianDropout, GaussianNoise
  sizes.py           size-field types (optional lists, padding / cropping pairs)
"""

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import LAYERS, LayerKind, register

__all__ = ["LAYERS", "LayerContext", "LayerKind", "LayerResult", "LayerSpec", "Shape", "register"]
