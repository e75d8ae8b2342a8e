"""The keras.applications models and a BERT-base-like encoder, against Keras.

Reference numbers: Keras 3.15.1 (torch backend), `keras.applications.X(weights=None)`:
count_params(), trainable_weights, non_trainable_weights and output_shape, measured
for this project with include_top=True at 224x224 and include_top=False at 96 and 161.
"""

import pytest

from analyzer import analyze


def split(report, rows):
    def total(q):
        return sum(report.value(r.counts.quantity(q)) for r in rows)

    return total("params"), total("trainable_params"), total("non_trainable_params")


def up_to(report, last):
    """The rows of the model without its top (include_top=False): everything up to `last`."""
    rows = []
    for row in report.layers.values():
        rows.append(row)
        if row.name == last:
            return rows
    raise AssertionError(last)


@pytest.mark.parametrize(("spec", "top", "no_top", "last"), [
    ("specs/vgg16.yaml", (138_357_544, 138_357_544, 0), (14_714_688, 14_714_688, 0), "block5.pool"),
    ("specs/resnet50.yaml", (25_636_712, 25_583_592, 53_120), (23_587_712, 23_534_592, 53_120), "conv5.rest.block2.out"),
    ("specs/mobilenet_v2.yaml", (3_538_984, 3_504_872, 34_112), (2_257_984, 2_223_872, 34_112), "out_relu"),
])
def test_keras_applications(spec, top, no_top, last):
    report = analyze(spec)
    assert split(report, list(report.layers.values())) == top
    for size, side in ((96, 3), (161, {"specs/vgg16.yaml": 5}.get(spec, 6))):
        at = report.at(S=size)
        rows = up_to(at, last)
        assert split(at, rows) == no_top
        assert tuple(at.value(d) for d in rows[-1].output_shape[:2]) == (side, side)


def test_vgg16_formula_in_the_image_size():
    report = analyze("specs/vgg16.yaml")
    # fc1 sees 512 * floor(S/32)^2 inputs: five 2x2 pools fold into one floor
    assert str(report.layers["fc1"].counts.params) == "2097152*floor(S/32)**2 + 4096"


def test_transformer_encoder_params_by_hand():
    report = analyze("specs/transformer_encoder.yaml")
    d, n_blocks = 768, 12
    attention = 4 * d * d + 4 * d  # q, k, v, output projections with biases
    ffn = d * 4 * d + 4 * d + 4 * d * d + d
    block = attention + ffn + 2 * 2 * d  # two LayerNorms
    embeddings = 30522 * d + 512 * d + 2 * d
    assert report.value(report.total.params) == embeddings + n_blocks * block == 108_890_112
    # BERT-base's published 109,482,240 adds token types (2 x 768) and the pooler (768 x 768 + 768)
    assert report.value(report.total.params) + 2 * d + d * d + d == 109_482_240
    # MACs per block: projections 4*S*d^2, scores and weighted sum 2*S^2*d, feed-forward 8*S*d^2
    S = 128
    assert report.value(report.total.macs) == n_blocks * (12 * S * d * d + 2 * S * S * d)
    assert report.at(N=2, S=64).value(report.total.macs) == 2 * (12 * 64 * d * d + 2 * 64 * 64 * d)


def test_declared_minimum_is_the_domain_when_no_layer_needs_more():
    # five 2x2 pools need S >= 32, which is exactly the declared minimum
    report = analyze("specs/vgg16.yaml")
    assert report.domain() == ["S >= 32  [declared minimum of S]"]
