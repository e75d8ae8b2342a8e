"""Dense, BatchNormalization, GRU, worked by hand."""

from tests.conftest import run, values


def test_dense_on_last_axis_of_rank3(one_layer):
    r = one_layer([5, 7], {"type": "Dense", "units": 3})
    assert r["shape"] == (5, 3)
    assert r["params"] == 7 * 3 + 3 == 24
    assert r["macs"] == 5 * 3 * 7 == 105
    assert r["dot"] == 15 * 13 and r["bias"] == 15


def test_dense_fc2_of_the_seed(one_layer):
    # seed: fc2 Dense(1) on 256 inputs: 511 dot + 1 bias = 512
    r = one_layer([256], {"type": "Dense", "units": 1})
    assert r["params"] == 257
    assert r["dot"] + r["bias"] == 512


def test_bias_switch(one_layer):
    layer = {"type": "Dense", "units": 4, "use_bias": False}
    assert one_layer([10], layer)["params"] == 40
    assert one_layer([10], layer, bias="on")["params"] == 44
    assert one_layer([10], {"type": "Dense", "units": 4}, bias="off")["params"] == 40


def test_batch_normalization(one_layer):
    r = one_layer([128, 128], {"type": "BatchNormalization"})
    assert (r["params"], r["trainable"], r["non_trainable"]) == (512, 256, 256)
    assert r["other"] == 2 * 128 * 128
    r = one_layer([6, 4], {"type": "BatchNormalization", "center": False})
    assert (r["trainable"], r["non_trainable"]) == (4, 8)


def test_trainable_false_moves_params(one_layer):
    r = one_layer([10], {"type": "Dense", "units": 2, "trainable": False})
    assert (r["trainable"], r["non_trainable"]) == (0, 22)


def test_gru_reset_after_false_pet_cgdnn(one_layer):
    # I=25, H=128, T=117: 3(IH + H^2 + H) = 59,136 (Keras, reset_after=False)
    r = one_layer([117, 25], {"type": "GRU", "units": 128, "reset_after": False})
    assert r["shape"] == (128,)
    assert r["params"] == 59_136
    assert r["macs"] == 117 * 3 * 128 * (25 + 128) == 6_873_984
    assert r["bias"] == 117 * 3 * 128
    assert r["other"] == 117 * 8 * 128
    assert r["activation"] == 117 * (2 * 128 * 4 + 128 * 5)
    # tf.profiler on the unrolled Keras GRU (reset_after=False) counts T*[6H(I+H) + 3H + 8H] = 13,912,704:
    # 2 FLOPs per MAC (no -1), bias and gate arithmetic, activations free. Ours differs exactly by the -1s.
    assert r["dot"] + r["bias"] + r["other"] + 117 * 6 * 128 == 13_912_704


def test_gru_reset_after_true(one_layer):
    r = one_layer([117, 25], {"type": "GRU", "units": 128, "return_sequences": True})
    assert r["shape"] == (117, 128)
    assert r["params"] == 59_520  # two bias vectors: PyTorch nn.GRU's count too
    assert r["bias"] == 117 * 6 * 128
    # tf.profiler, unrolled reset_after=True: T*[6H(I+H) + 6H + 8H] = 13,957,632
    assert r["dot"] + r["bias"] + r["other"] + 117 * 6 * 128 == 13_957_632


def test_gru_without_bias(one_layer):
    r = one_layer([3, 2], {"type": "GRU", "units": 4, "use_bias": False})
    assert r["params"] == 3 * 4 * (2 + 4) == 72 and r["bias"] == 0


def test_gru_length_symbolic():
    report = run(["T", 8], [{"type": "GRU", "units": 16}], {"T": 10})
    row = list(report.layers.values())[-1]
    assert values(report.at(T=20), row)["macs"] == 20 * 3 * 16 * 24
