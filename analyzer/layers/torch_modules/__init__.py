"""PyTorch modules with Keras semantics, used by nnspec's torch export: one module per layer family, named
like the family modules of analyzer/layers/, with common.py for the helpers several families share. A name
looked up here (analyzer/export/torch_model.py resolves a builder's class by name) is found in the family
modules, imported then, so a new class needs no entry here; importing the package itself imports no torch,
and only the torch export imports the family modules (to_torch; analyzer/export/source.py reads the files'
source text instead): `import analyzer` never imports torch. crops.py is torch-free: the convention rules
of conv_transpose.py use it too.

Every module takes and returns channels-last tensors with the batch axis first, exactly
like the Keras layer it stands for; convolutions and batch normalization move the
channels to axis 1 for torch and back. Each module with weights can load a Keras
layer's weights (`load_keras_weights`, a dict of the Keras variable names to arrays).

The style is deliberate, because it decides what FLOP counters see (docs/export.md):
activations are plain torch.relu / torch.sigmoid / torch.tanh / torch.softmax calls,
merges use the * + - operators, kernels are nn.ConvNd, nn.Linear or nn.GRU.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

FAMILIES = tuple(sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem != "__init__"))


def __getattr__(name: str) -> Any:
    for family in FAMILIES:
        module = import_module(f"{__name__}.{family}")
        if name in vars(module) and not name.startswith("_"):
            return vars(module)[name]
    raise AttributeError(f"no torch module or helper {name!r} in analyzer/layers/torch_modules/")
