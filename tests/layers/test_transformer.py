"""The decoder vocabulary (analyzer/layers/transformer.py) and RMSNormalization's scale_plus_one. Hand-worked;
"Keras" marks params measured with Keras 3.15.1 (torch backend, keras.layers.GroupQueryAttention.count_params())."""

from pathlib import Path

import pytest

from analyzer.api import analyze
from analyzer.conventions import recount_with
from analyzer.errors import NNSpecError
from tests.conftest import last, run, values

ROOT = Path(__file__).resolve().parents[2]


def gqa(shapes, **fields):
    names = [f"x{i}" for i in range(len(shapes))]
    report = run(shapes, [{"type": "GroupedQueryAttention", "inputs": fields.pop("inputs", [names[0]] * 2 + names[1:]),
                           **fields}], fields.pop("symbols", None))
    return values(report, last(report))


def test_rms_normalization_scale_plus_one_counts_as_the_plain_one(one_layer):
    # Gemma's x/rms · (1 + w): the same n weights, and 1 + w is folded once (a constant of the weights), so the same
    # 3n + 2 per row + 1 per element as test_rms_normalization: 4·20 + 24 = 104.
    plain = one_layer([4, 6], {"type": "RMSNormalization"})
    gemma = one_layer([4, 6], {"type": "RMSNormalization", "scale_plus_one": True})
    assert (gemma["params"], gemma["other"]) == (plain["params"], plain["other"]) == (6, 104)


def test_grouped_query_attention_matches_keras_params():
    # (10, 32), 4 query heads and 2 key/value heads of 8: q 32·32 + 32, k and v 32·16 + 16 each, o 32·32 + 32
    r = gqa([[10, 32]], head_dim=8, num_query_heads=4, num_key_value_heads=2)
    assert r["shape"] == (10, 32)  # Keras
    assert r["params"] == 1056 + 2 * 528 + 1056 == 3168  # Keras: 3,168
    # projections 10·32·32 + 2·10·16·32 + 10·32·32 = 30,720; scores 4 heads · 100 pairs · 8; weighted sum the same
    assert r["macs"] == 30_720 + 3200 + 3200 == 37_120
    # dot 2n - 1 per output: q 320·63, k v 160·63 each, o 320·63; scores 400·15; weighted sum 4·10·8 outputs of 19
    assert r["dot"] == 320 * 63 * 2 + 160 * 63 * 2 + 400 * 15 + 320 * 19 == 72_560
    assert r["bias"] == 320 + 160 + 160 + 320
    assert r["activation"] == 4 * 10 * (3 * 10 - 1)  # softmax over 10 keys per head and query
    assert r["other"] == 10 * 4 * 8  # the query scaled by 1/sqrt(8)
    no_bias = gqa([[10, 32]], head_dim=8, num_query_heads=4, num_key_value_heads=2, use_bias=False)
    assert no_bias["params"] == 3072  # Keras: 3,072


def test_causal_attention_counts_the_lower_triangle_and_rotary_three_per_rotated_feature():
    # causal: query i sees i + 1 keys, 1 + 2 + ... + 10 = 55 scores per head
    r = gqa([[10, 32]], head_dim=8, num_query_heads=4, num_key_value_heads=2, causal=True, rope_theta=10000.0)
    assert r["params"] == 3168  # rotary has no weights
    assert r["macs"] == 30_720 + 4 * 55 * 8 * 2 == 34_240
    # weighted sum: query i's 8 outputs per head have i + 1 terms: 4·8·(2·55 - 10)
    assert r["dot"] == 320 * 63 * 2 + 160 * 63 * 2 + 4 * 55 * 15 + 4 * 8 * (2 * 55 - 10) == 66_980
    assert r["activation"] == 4 * (3 * 55 - 10)  # softmax of a row of m keys: 3m - 1
    # rotary: all 8 features of the 10·4 query heads and 10·2 key heads, 3 each; the scaling 320
    assert r["other"] == 3 * 8 * (40 + 20) + 320 == 1760


def test_causal_counts_are_symbolic_in_t():
    # per head T(T+1)/2 scores of 8 terms, twice (scores, weighted sum): at T = 100, 4·5050·8·2
    report = run([["T", 32]], [{"type": "GroupedQueryAttention", "inputs": ["x0", "x0"], "head_dim": 8,
                                "num_query_heads": 4, "num_key_value_heads": 2, "causal": True}], {"T": 16})
    assert values(report.at(T=100), last(report))["macs"] == 100 * 3072 + 4 * 5050 * 8 * 2 == 630_400


def test_sliding_window_sums_min_of_the_position_and_the_window():
    # causal, W = 4, T = 10: the keys per query are 1, 2, 3, 4, 4, 4, 4, 4, 4, 4 = 34
    r = gqa([[10, 16]], head_dim=4, num_query_heads=2, num_key_value_heads=1, causal=True, sliding_window=4)
    assert r["activation"] == 2 * (3 * 34 - 10)
    assert r["macs"] == 10 * 16 * 8 * 2 + 10 * 16 * 4 * 2 + 2 * 34 * 4 * 2
    # a window of 16 >= T: the causal triangle, 55
    wide = gqa([[10, 16]], head_dim=4, num_query_heads=2, num_key_value_heads=1, causal=True, sliding_window=16)
    assert wide["activation"] == 2 * (3 * 55 - 10)
    # without causal, Keras' symmetric band |i - j| < 4: 4, 5, 6, 7, 7, 7, 7, 6, 5, 4 = 58
    band = gqa([[10, 16]], head_dim=4, num_query_heads=2, num_key_value_heads=1, sliding_window=4)
    assert band["activation"] == 2 * (3 * 58 - 10)


def test_the_window_is_exact_at_symbolic_t():
    report = run([["T", 16]], [{"type": "GroupedQueryAttention", "inputs": ["x0", "x0"], "head_dim": 4,
                                "num_query_heads": 2, "num_key_value_heads": 1, "causal": True, "sliding_window": 4}],
                 {"T": 10})
    # T = 3 (shorter than the window): 1 + 2 + 3 = 6; T = 10: 34 (above); T = 7: 1 + 2 + 3 + 4·4 = 22
    for t, scores in ((3, 6), (10, 34), (7, 22)):
        assert values(report.at(T=t), last(report))["activation"] == 2 * (3 * scores - t)


def test_qwen2_biases_and_qwen3_qk_norm():
    # Qwen2: q, k, v biased, o not; output_dim 20: q 32·24 + 24, k v 32·6 + 6 each, o 24·20
    r = gqa([[5, 32]], head_dim=6, num_query_heads=4, num_key_value_heads=1, output_bias=False, output_dim=20)
    assert r["shape"] == (5, 20)
    assert r["params"] == 792 + 2 * 198 + 480 == 1668
    assert r["bias"] == 5 * 24 + 5 * 6 * 2 == 180
    # Qwen3: no bias, q/k RMS norm over head_dim (one weight of 6 each): + 12 params; each row of 6 costs 3·6 + 2
    # plus 6 for the weight, 26: 5·4 query rows and 5·1 key rows
    n = gqa([[5, 32]], head_dim=6, num_query_heads=4, num_key_value_heads=1, use_bias=False, qk_norm=True)
    assert n["params"] == 32 * 24 + 2 * 32 * 6 + 24 * 32 + 12 == 1932
    assert n["other"] == 5 * 4 * 6 + 26 * (20 + 5) == 770


def test_partial_rotary_factor_rotates_floor_of_head_dim_times_the_factor():
    # Phi: head_dim 10, factor 0.4 -> 4 features per head rotated, 3 each, on 6·2 query and 6·2 key heads
    r = gqa([[6, 8]], head_dim=10, num_query_heads=2, num_key_value_heads=2, rope_theta=10000.0,
            partial_rotary_factor=0.4)
    assert r["other"] == 3 * 4 * (12 + 12) + 6 * 2 * 10 == 408
    with pytest.raises(NNSpecError, match=r"floor\(head_dim · partial_rotary_factor\) = 5 are odd"):
        gqa([[6, 8]], head_dim=10, num_query_heads=2, num_key_value_heads=2, rope_theta=1e4, partial_rotary_factor=0.5)


def test_heads_that_do_not_divide_are_refused_naming_the_layer():
    with pytest.raises(NNSpecError, match="num_query_heads 6 is not divisible by num_key_value_heads 4") as error:
        gqa([[5, 32]], name="attn", head_dim=8, num_query_heads=6, num_key_value_heads=4)
    assert "attn" in str(error.value)
    with pytest.raises(NNSpecError, match="exceeds num_query_heads"):
        gqa([[5, 32]], head_dim=8, num_query_heads=2, num_key_value_heads=4)
    with pytest.raises(NNSpecError, match="causal: query length 5 differs from key length 7"):
        gqa([[5, 32], [7, 32]], inputs=["x0", "x1"], head_dim=8, num_query_heads=2, num_key_value_heads=1, causal=True)


def test_torch_convention_counts_every_score():
    # FlopCounterMode on the export: 2 per MAC of the four projections and of both T·T products (the mask is
    # applied after): 2·(30,720 + 2·4·100·8) = 74,240, where nnspec's default counts 55 of the 100 scores.
    report = run([[10, 32]], [{"type": "GroupedQueryAttention", "inputs": ["x0", "x0"], "head_dim": 8,
                               "num_query_heads": 4, "num_key_value_heads": 2, "causal": True}])
    row = last(report)
    assert report.value(recount_with(report, "torch").layers[row.name].expr) == 2 * (30_720 + 2 * 4 * 100 * 8)


def test_gated_mlp():
    # SwiGLU on (10, 32), intermediate 64: gate and up 32·64 each, down 64·32
    r = values(report := run([[10, 32]], [{"type": "GatedMLP", "intermediate_dim": 64}]), last(report))
    assert r["params"] == 3 * 32 * 64 == 6144
    assert r["macs"] == 2 * 640 * 32 + 320 * 64 == 61_440
    assert r["dot"] == 2 * 640 * 63 + 320 * 127 == 121_280
    assert (r["activation"], r["other"]) == (5 * 640, 640)  # silu 5 per element; silu(gate) · up
    # GeGLU with bias, to 16: gate and up 32·8 + 8, down 8·16 + 16
    g = values(report := run([[10, 32]], [{"type": "GatedMLP", "intermediate_dim": 8, "activation": "gelu",
                                           "use_bias": True, "output_dim": 16}]), last(report))
    assert g["shape"] == (10, 16) and g["params"] == 2 * 264 + 144 == 672
    assert (g["bias"], g["activation"]) == (2 * 80 + 160, 5 * 80)


def test_reversible_embedding_counts_a_tied_table_once_and_its_matmul():
    layers = [{"type": "ReversibleEmbedding", "name": "embed", "input_dim": 50, "output_dim": 16},
              {"type": "ReversibleEmbedding", "name": "head", "reverse": True, "tied_to": "embed", "input_dim": 50,
               "output_dim": 16}]
    report = run([7], layers)
    embed, head = values(report, report.layers["embed"]), values(report, report.layers["head"])
    assert (embed["params"], embed["flops"]) == (800, 0)  # the table, 50·16; a lookup
    assert (head["shape"], head["params"]) == ((7, 50), 0)  # counted on embed
    assert (head["macs"], head["dot"]) == (7 * 50 * 16, 7 * 50 * 31)
    untied = values(report := run([7], [layers[0], {**layers[1], "tied_to": None, "tie_weights": False}]), last(report))
    assert untied["params"] == 800
    with pytest.raises(NNSpecError, match="needs tied_to"):
        run([7], [layers[0], {**layers[1], "tied_to": None}])


def test_tied_to_must_name_an_earlier_lookup_of_the_same_table():
    embed = {"type": "ReversibleEmbedding", "name": "embed", "input_dim": 50, "output_dim": 16}
    head = {"type": "ReversibleEmbedding", "name": "head", "reverse": True, "tied_to": "embed", "input_dim": 50,
            "output_dim": 16}
    with pytest.raises(NNSpecError, match="tied_to 'embd' names no earlier layer") as error:
        run([7], [embed, {**head, "tied_to": "embd"}])
    assert error.value.layer == "head"
    with pytest.raises(NNSpecError, match="tied_to 'd' is a Dense, not an embedding lookup"):
        run([7], [embed, {"type": "Dense", "name": "d", "units": 16}, {**head, "tied_to": "d"}])
    with pytest.raises(NNSpecError, match="input_dim 60 differs from the input_dim 50 of 'embed'"):
        run([7], [embed, {**head, "input_dim": 60}])
    with pytest.raises(NNSpecError, match="output_dim 8 differs"):
        run([7], [embed, {"type": "Dense", "name": "d", "units": 8}, {**head, "output_dim": 8}])


def test_position_embedding():
    # GPT-2's wpe at 1024 positions of 16: 16,384 params, a lookup; the add is its own layer
    report = run([["T", 16]], [{"type": "PositionEmbedding", "sequence_length": 1024}], {"T": 8})
    r = values(report, last(report))
    assert (r["shape"], r["params"], r["flops"]) == ((8, 16), 16_384, 0)
    with pytest.raises(NNSpecError, match="exceeds sequence_length"):
        run([[2000, 16]], [{"type": "PositionEmbedding", "sequence_length": 1024}])


def test_llama_2_7b_has_the_published_params():
    # embed 32000·4096 = 131,072,000; a decoder layer: q k v o 4·4096² = 67,108,864, the MLP 3·4096·11008 =
    # 135,266,304, two RMS norms 2·4096 -> 202,383,360, times 32 = 6,476,267,520; the final norm 4,096; the untied
    # LM head 131,072,000. Sum: 6,738,415,616 (Llama-2-7B's published figure).
    report = analyze(ROOT / "specs/llm/llama.yaml")
    assert 131_072_000 + 32 * (67_108_864 + 135_266_304 + 8192) + 4096 + 131_072_000 == 6_738_415_616
    assert report.value(report.total.params) == 6_738_415_616
    # Llama-3-8B: V 128256, I 14336, 8 key/value heads: embed and head 525,336,576 each; a layer q o 4096² each,
    # k v 4096·1024 each (41,943,040), MLP 3·4096·14336 = 176,160,768, norms 8192 -> 218,112,000; 32 of them
    # 6,979,584,000; + 4096 -> 8,030,261,248 (published).
    llama3 = report.at(V=128256, I=14336, kv=8)
    assert 2 * 525_336_576 + 32 * (41_943_040 + 176_160_768 + 8192) + 4096 == 8_030_261_248
    assert llama3.value(report.total.params) == 8_030_261_248


def test_the_cli_exits_2_naming_the_layer_when_the_heads_do_not_divide(tmp_path, capsys):
    from analyzer import cli

    spec = (ROOT / "specs/llm/llama.yaml").read_text(encoding="utf-8")
    path = tmp_path / "llama.yaml"
    path.write_text(spec.replace("kv: {default: 32,", "kv: {default: 12,"), encoding="utf-8")
    assert cli.main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "layer 'layers.each.self_attn' (GroupedQueryAttention)" in captured.err
    assert "num_query_heads h is not divisible by num_key_value_heads kv at the default h=32, kv=12" in captured.err
