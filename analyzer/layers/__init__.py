"""Layer types. Each module states, for its layer family, the spec fields, the
shape rule, the params and the costs, what each counting tool counts for it
(`counted_as`) and its torch and Keras builders; `LAYERS` is the table of all of them (a
module is imported the first time one of its types is looked up: registry.TYPE_MODULES).
docs/architecture.md says how to add a layer type.

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
  transformer.py     GroupedQueryAttention (rotary, q/k norm, causal, window), GatedMLP, ReversibleEmbedding, PositionEmbedding
  normalization.py   BatchNormalization, LayerNormalization, GroupNormalization, RMSNormalization
  activations.py     Activation, Softmax, and every activation's cost (also fused `activation:`)
  merging.py         Add, Subtract, Multiply, Maximum, Minimum, Average, Concatenate
  reshaping.py       Reshape, Flatten, Permute, RepeatVector
  elementwise.py     Lambda (cos, sin, ...), Rescaling
  scalar_ops.py      ScalarOp (x + 3.0: Keras 3 ops saved as layers), LayerScale, CustomScaleLayer
  preprocessing.py   Normalization (Keras' preprocessing layer)
  moe.py             MixtureOfExperts (router, top-k, gated experts)
  regularization.py  Dropout, GaussianDropout, GaussianNoise
  sizes.py           size-field types (optional lists, padding / cropping pairs)
  <family>_training.py, <family>_saved.py   a family's training and saved-activation rules, when long

What the families build on:
  base.py            the spec base model, LayerResult, LayerContext
  registry.py        the tables: handlers (@register) and convention rules (counted_as)
  builders.py        the torch / Keras builder tables, Construct and Ref
  torch_ops.py       what the torch export runs (nn.ConvNd, nn.Linear, activation calls), for the rules
  tool_rules.py      what the tools' rules share (Skipped, thop's count_linear, fvcore's unsupported ops)
  torch_modules/     the nn.Module classes of the export, one module per family (imports torch)
"""

from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import LAYERS, LayerKind, register

__all__ = ["LAYERS", "LayerContext", "LayerKind", "LayerResult", "LayerSpec", "Shape", "register"]
