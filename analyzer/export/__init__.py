"""Export a spec as a runnable model at concrete sizes: Keras 3 or PyTorch.

    from analyzer.export import to_keras, to_torch
    keras_model = to_keras("specs/scnn.yaml", L=1024)      # keras.Model, layer names as in the spec
    torch_model = to_torch("specs/scnn.yaml", L=1024)      # torch.nn.Module (eval mode), same names
    text = export_source("specs/scnn.yaml", "torch", L=1024)   # a standalone Python file

Keras semantics are the reference; the torch modules are channels-last in and out
(docs/export.md). Frameworks are imported here only, inside the functions that need
them: `import analyzer` never imports torch or keras. Each layer type has one builder
per framework, registered by its family module (analyzer/layers/<family>.py, in the
tables of analyzer/layers/builders.py); a type without one is an ExportError naming
the layer.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.export.plan import ExportError, ExportPlan, plan_export
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS

if TYPE_CHECKING:
    from analyzer.spec.loader import Spec

FRAMEWORKS = ("keras", "torch")

__all__ = ["FRAMEWORKS", "KERAS_BUILDERS", "TORCH_BUILDERS", "ExportError", "ExportPlan", "copy_keras_weights",
           "export_source", "plan_export", "to_keras", "to_torch"]


def _require(module: str, extra: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(f"exporting to {extra} needs {module}, which is not installed ({exc})",
                          hint=f"pip install 'nnspec[{extra}]' (torch==2.13.0)") from None


def to_keras(spec: str | Path | Spec, *, bias: str = "spec", **symbols: int) -> Any:
    """A Keras 3 functional model of `spec` at `symbols` (default: the spec's values).

    Uses KERAS_BACKEND=torch unless Keras was already imported or the variable is set.
    """
    plan = plan_export(spec, symbols, bias=bias)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    _require("keras", "keras")
    from analyzer.export.keras_model import build_keras

    return build_keras(plan)


def to_torch(spec: str | Path | Spec, *, bias: str = "spec", native_gru: bool = False, **symbols: int) -> Any:
    """A torch.nn.Module of `spec` at `symbols`, in eval mode, one attribute per spec layer.

    native_gru=True exports every GRU with tanh / sigmoid as torch.nn.GRU, as a straightforward port
    does, even a reset_after=False one (which nn.GRU does not compute: same MACs, 3*units more bias
    params). By default only reset_after=True GRUs are nn.GRU; the others are loops of nn.Linear.
    """
    plan = plan_export(spec, symbols, bias=bias, options={"native_gru": native_gru})
    _require("torch", "torch")
    from analyzer.export.torch_model import build_torch

    return build_torch(plan)


def export_source(spec: str | Path | Spec, framework: str, *, bias: str = "spec", native_gru: bool = False,
                  **symbols: int) -> str:
    """The text of a standalone Python file that builds the model (no framework needed to write it)."""
    from analyzer.export.source import keras_source, torch_source

    if framework not in FRAMEWORKS:
        raise ExportError(f"unknown framework {framework!r}: use one of {', '.join(FRAMEWORKS)}")
    plan = plan_export(spec, symbols, bias=bias, options={"native_gru": native_gru})
    return keras_source(plan) if framework == "keras" else torch_source(plan)


def copy_keras_weights(keras_model: Any, torch_model: Any) -> None:
    """Load every Keras layer's weights into the matching module of a `to_torch` model.

    Each module's `load_keras_weights` gets a dict of the layer's variables keyed both by their
    name ('kernel') and by their path inside the layer ('query/kernel', for layers made of sublayers).
    """
    import keras

    from analyzer.export.plan import keras_names

    knames = keras_names(list(torch_model.spec_names))
    for name, attr in torch_model.spec_names.items():
        if attr in torch_model.spec_inputs:
            continue
        layer = keras_model.get_layer(knames[name])
        weights: dict[str, Any] = {}
        for w in layer.weights:
            value = keras.ops.convert_to_numpy(w)
            weights.setdefault(w.name, value)
            weights[w.path.split("/", 1)[1] if "/" in w.path else w.name] = value
        if not weights:
            continue
        module = getattr(torch_model, attr)
        if not hasattr(module, "load_keras_weights"):
            raise ExportError(f"layer '{name}': {type(module).__name__} cannot load Keras weights")
        module.load_keras_weights(weights)
