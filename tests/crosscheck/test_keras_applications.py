"""The image specs against keras.applications itself (weights=None), live: with the top at
224x224, and without it (include_top=False) at two other sizes. Params, trainable and
non-trainable params, and the output shape of the convolutional part."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import pytest

from analyzer import analyze

ROOT = Path(__file__).resolve().parents[2]


def split(model) -> tuple[int, int, int]:
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return model.count_params(), trainable, frozen


def rows_split(report, rows) -> tuple[int, int, int]:
    return tuple(sum(report.value(r.counts.quantity(q)) for r in rows)
                 for q in ("params", "trainable_params", "non_trainable_params"))


@pytest.mark.parametrize(("application", "spec", "last_conv_layer"), [
    ("VGG16", "specs/vgg16.yaml", "block5.pool"),
    ("ResNet50", "specs/resnet50.yaml", "conv5.rest.block2.out"),
    ("MobileNetV2", "specs/mobilenet_v2.yaml", "out_relu"),
])
def test_spec_equals_keras_applications(application, spec, last_conv_layer):
    build = getattr(keras.applications, application)
    report = analyze(ROOT / spec)
    keras.backend.clear_session()
    assert rows_split(report, list(report.layers.values())) == split(build(weights=None, include_top=True))
    for size in (96, 161):
        at = report.at(S=size)
        rows = []
        for row in at.layers.values():
            rows.append(row)
            if row.name == last_conv_layer:
                break
        keras.backend.clear_session()
        model = build(weights=None, include_top=False, input_shape=(size, size, 3))
        assert rows_split(at, rows) == split(model), (application, size)
        assert tuple(at.value(d) for d in rows[-1].output_shape) == tuple(model.output_shape[1:]), (application, size)
