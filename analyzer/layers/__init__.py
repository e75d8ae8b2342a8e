"""Layer types. Each module states, for its layer family, the spec fields, the
shape rule, the params and the costs; `LAYERS` is the table of all of them.

Where is X counted?  Conv1D/Conv2D/SeparableConv1D: convolutional.py;
Dense: dense.py; GRU: recurrent.py; BatchNormalization: normalization.py;
Reshape/Flatten: reshaping.py; Add/Subtract/Multiply/Concatenate: merging.py;
Activation and activation costs: activations.py; Lambda (cos, sin, ...):
elementwise.py; Dropout: regularization.py.
"""

from analyzer.layers import (  # noqa: F401  (importing registers the handlers)
    activations,
    convolutional,
    dense,
    elementwise,
    merging,
    normalization,
    recurrent,
    regularization,
    reshaping,
)
from analyzer.layers.base import LayerContext, LayerResult, LayerSpec, Shape
from analyzer.layers.registry import LAYERS, LayerKind, register

__all__ = ["LAYERS", "LayerContext", "LayerKind", "LayerResult", "LayerSpec", "Shape", "register"]
