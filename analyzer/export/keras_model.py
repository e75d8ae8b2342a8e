"""Build a Keras 3 functional model from an ExportPlan (imported only when Keras is wanted)."""

from __future__ import annotations

from typing import Any

import keras

from analyzer.export.plan import ExportPlan
from analyzer.graph import output_reference
from analyzer.layers.builders import KERAS_BUILDERS, Construct, Ref


def _value(value: Any) -> Any:
    if isinstance(value, Ref) and value.text == "None":  # an argument whose None is not Keras' default (merge_mode)
        return None
    if isinstance(value, Ref):  # "ops.cos" -> keras.ops.cos
        obj: Any = keras
        for part in value.text.split("."):
            obj = getattr(obj, part)
        return obj
    if isinstance(value, Construct):  # a wrapped layer (Bidirectional, TimeDistributed): Keras names it
        return getattr(keras.layers, value.cls)(**{k: _value(v) for k, v in value.kwargs.items() if v is not None})
    return value


def instantiate(construct: Construct, name: str, trainable: bool = True) -> keras.layers.Layer:
    cls = getattr(keras.layers, construct.cls)
    kwargs = {k: _value(v) for k, v in construct.kwargs.items() if v is not None}  # Ref("None") stays
    if not trainable:
        kwargs["trainable"] = False
    return cls(**kwargs, name=name)


def build_keras(plan: ExportPlan) -> keras.Model:
    """The functional model. Layer names are the spec's, with '.' and '/' as '_' (plan.keras_names)."""
    tensors: dict[str, Any] = {}
    for x in plan.inputs:
        tensors[x.name] = keras.Input(shape=x.shape, name=x.keras_name)
    for layer in plan.layers:
        construct = KERAS_BUILDERS.build(layer)
        klayer = instantiate(construct, layer.keras_name, layer.spec.trainable)
        args = [tensors[s] for s in layer.inputs]
        if layer.initial_state:  # a recurrent layer's sequence, then its initial state
            out = klayer(args[0], initial_state=args[1:])
        elif not layer.multi_input:
            out = klayer(args[0])
        else:
            out = klayer(*args) if construct.call == "args" else klayer(args)
        outs = list(out) if layer.more_outputs else [out]  # return_state, merge_mode None: a list, in Keras' order
        for i, tensor in enumerate(outs):
            tensors[output_reference(layer.name, i)] = tensor
    inputs = [tensors[x.name] for x in plan.inputs]
    outputs = [tensors[o] for o in plan.outputs]
    return keras.Model(inputs=inputs[0] if len(inputs) == 1 else inputs,
                       outputs=outputs[0] if len(outputs) == 1 else outputs, name=plan.name.replace("/", "_"))
