"""Build a torch.nn.Module from an ExportPlan (imported only when torch is wanted)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from analyzer.export.plan import ExportError, ExportPlan
from analyzer.layers import torch_modules
from analyzer.layers.builders import TORCH_BUILDERS, Construct, Ref


class SpecModel(nn.Module):
    """A spec as a torch module: one attribute per spec layer, named after it, and a forward that
    walks the layers in graph order. Inputs and outputs are channels-last, as in Keras.

    `spec_names` maps each spec name to its attribute (the same unless the name is not a Python
    identifier); call with the inputs in spec order, or by their (attribute) names.
    """

    def __init__(self, name: str, inputs: list[str], graph: list[tuple[str, tuple[str, ...]]], outputs: list[str],
                 layers: dict[str, nn.Module], spec_names: dict[str, str],
                 outputs_of: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__()
        self.spec_name = name
        self.spec_inputs = list(inputs)
        self.spec_graph = list(graph)
        self.spec_outputs = list(outputs)
        self.spec_names = dict(spec_names)
        self.spec_outputs_of = dict(outputs_of or {})  # attr -> a name per output, for modules with several
        for attr, module in layers.items():
            self.add_module(attr, module)

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}"

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        if len(args) + len(kwargs) != len(self.spec_inputs):
            raise TypeError(f"{self.spec_name} takes {len(self.spec_inputs)} inputs ({', '.join(self.spec_inputs)}), "
                            f"got {len(args) + len(kwargs)}")
        values = dict(zip(self.spec_inputs, args, strict=False))
        for key, value in kwargs.items():
            attr = self.spec_names.get(key, key)
            if attr not in self.spec_inputs or attr in values:
                raise TypeError(f"unexpected or repeated input {key!r}")
            values[attr] = value
        for attr, sources in self.spec_graph:
            out = getattr(self, attr)(*(values[s] for s in sources))
            if attr in self.spec_outputs_of:  # return_state, merge_mode None: a tuple, in Keras' order
                values.update(zip(self.spec_outputs_of[attr], out, strict=True))
            else:
                values[attr] = out
        outputs = tuple(values[o] for o in self.spec_outputs)
        return outputs[0] if len(outputs) == 1 else outputs


def _value(value: Any) -> Any:
    if isinstance(value, Construct):  # a wrapper's layers are modules too
        return instantiate(value)
    return None if isinstance(value, Ref) and value.text == "None" else value


def instantiate(construct: Construct) -> nn.Module:
    cls = getattr(nn, construct.cls[3:]) if construct.cls.startswith("nn.") else getattr(torch_modules, construct.cls)
    return cls(**{k: _value(v) for k, v in construct.kwargs.items() if v is not None})


def build_torch(plan: ExportPlan) -> SpecModel:
    layers: dict[str, nn.Module] = {}
    for layer in plan.layers:
        module = instantiate(TORCH_BUILDERS.build(layer))
        if not layer.spec.trainable:
            module.requires_grad_(False)
        layers[layer.attr] = module
    attrs = plan.attrs
    if set(layers) & {x.attr for x in plan.inputs}:
        raise ExportError("internal: an input and a layer share a name")  # python_names keeps them distinct
    model = SpecModel(
        plan.name,
        [x.attr for x in plan.inputs],
        [(layer.attr, layer.input_attrs) for layer in plan.layers],
        [attrs[o] for o in plan.outputs],
        layers,
        {name: attr for name, attr in attrs.items() if ":" not in name},  # inputs and layers, not their outputs
        {layer.attr: layer.output_attrs for layer in plan.layers if layer.more_outputs},
    )
    return model.eval()
