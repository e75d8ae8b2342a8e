"""Reusable blocks: expansion, names, args, repeat, residual connections, --depth.

tests/specs/tiny_resnet.yaml, by hand at H=32:
  stem: conv 3*3*3*16 = 432 (no bias) + BN 4*16 = 64                      -> 496
  stage1 (identity x2), each: 2 convs 3*3*16*16 = 2,304 + 2 BNs of 64      -> 4,736 each
  stage2 (projection): a 3*3*16*32 + BN 128 = 4,736; b 3*3*32*32 + BN 128 = 9,344;
                       shortcut 1*1*16*32 + 32 = 544                       -> 14,624
  dense: 16*16*32 = 8,192 inputs * 10 + 10                                 -> 81,930
"""

import pytest

from analyzer import analyze
from analyzer.errors import NNSpecError

SPEC = "tests/specs/tiny_resnet.yaml"


@pytest.fixture(scope="module")
def report():
    return analyze(SPEC)


def test_expanded_names_are_readable_and_unique(report):
    names = list(report.layers)
    assert names[:5] == ["image", "stem.conv", "stem.bn", "stem.relu", "stage1.block1.a.conv"]
    assert "stage1.block2.add" in names and "stage2.shortcut" in names
    assert len(names) == len(set(names))


def test_residual_and_projection_wiring(report):
    assert report.layers["stage1.block1.add"].inputs == ("stage1.block1.b.relu", "stem.relu")
    assert report.layers["stage1.block2.a.conv"].inputs == ("stage1.block1.add",)
    assert report.layers["stage2.shortcut"].inputs == ("stage1.block2.add",)
    assert report.layers["flatten_1"].inputs == ("stage2.add",)


def test_params_by_hand(report):
    grouped = report.grouped(1)
    params = {name: report.value(row.counts.params) for name, row in grouped.layers.items()}
    assert params == {"image": 0, "stem": 496, "stage1": 2 * 4736, "stage2": 14_624, "flatten_1": 0, "dense_1": 81_930}
    assert grouped.layers["stage1"].type == "identity x2"
    assert report.value(report.total.params) == 496 + 9472 + 14_624 + 81_930


def test_depth_two_splits_repeats(report):
    rows = report.grouped(2).layers
    assert rows["stage1.block1"].type == "identity"
    assert report.value(rows["stage2.a"].counts.params) == 4736
    assert "stem.conv" in rows  # not nested two deep: kept as is


def test_grouped_totals_equal_flat_totals(report):
    for depth in (1, 2, 3):
        grouped = report.grouped(depth)
        assert grouped.value(grouped.total.flops) == report.value(report.total.flops)


def test_block_args_are_expressions_in_the_callers_symbols():
    text = """
symbols: {C: 8}
blocks:
  widen:
    args: {width: null}
    layers:
      - {type: Dense, name: fc, units: 2 * width}
inputs: [{name: x, shape: [C]}]
layers:
  - {block: widen, name: w, width: C + 1}
"""
    report = analyze(text)
    assert report.value(report.layers["w.fc"].counts.params) == 8 * 18 + 18
    assert report.at(C=10).value(report.layers["w.fc"].counts.params) == 10 * 22 + 22


@pytest.mark.parametrize(("layers", "fragment"), [
    ("- {block: widen, name: w}", "needs arg 'width'"),
    ("- {block: widen, name: w, width: 2, wdth: 3}", "unknown arg 'wdth'"),
    ("- {block: widn, name: w, width: 2}", "unknown block 'widn'"),
    ("- {block: widen, name: w, width: 2, repeat: 0}", "repeat must be a whole number"),
    ("- {block: widen, name: w, width: nope}", "undefined symbol 'nope'"),
])
def test_block_use_errors(layers, fragment):
    text = f"""
blocks:
  widen:
    args: {{width: null}}
    layers:
      - {{type: Dense, name: fc, units: width}}
inputs: [{{name: x, shape: [4]}}]
layers:
  {layers}
"""
    with pytest.raises(NNSpecError, match=fragment):
        analyze(text)


SYMBOLIC_REPEAT = """
symbols: {N: 12, S: 128, d: 64}
blocks:
  mlp:
    layers:
      - {type: Dense, name: up, units: 4 * d, activation: relu}
      - {type: Dense, name: down, units: WIDTH}
      - {type: Add, name: add, inputs: [down, x]}
inputs: [{name: tokens, shape: [S, d]}]
layers:
  - {block: mlp, name: encoder, repeat: N}
  - {type: Dense, name: head, units: 2}
"""


def test_symbolic_repeat_counts_n_copies():
    report = analyze(SYMBOLIC_REPEAT.replace("WIDTH", "d"))
    # one copy at d=64, S=128: up 64*256 + 256, down 256*64 + 64 -> 33,088 params
    one_copy = 64 * 256 + 256 + 256 * 64 + 64
    assert report.value(report.layers["encoder.each.up"].counts.params) == 12 * (64 * 256 + 256)
    assert report.value(report.total.params) == 12 * one_copy + 64 * 2 + 2
    assert report.at(N=1).value(report.total.params) == one_copy + 130
    # MACs: per copy S*(d*4d + 4d*d) = 128 * 32,768
    assert report.at(N=3).value(report.total.macs) == 3 * 128 * 2 * 64 * 256 + 128 * 2 * 64
    assert report.layers["head"].inputs == ("encoder.each.add",)
    assert report.grouped(1).layers["encoder"].type == "mlp xN"


def test_symbolic_repeat_must_keep_the_shape():
    with pytest.raises(NNSpecError, match="is repeated N times, so it must keep its input shape"):
        analyze(SYMBOLIC_REPEAT.replace("WIDTH", "d").replace("inputs: [down, x]", "inputs: [down, down]")
                .replace("units: d}", "units: 32}").replace("[down, down]", "[down, down]"))


def test_table_marks_rows_of_a_symbolic_repeat(tmp_path, capsys):
    from analyzer import cli

    path = tmp_path / "repeat.yaml"
    path.write_text(SYMBOLIC_REPEAT.replace("WIDTH", "d"))
    assert cli.main([str(path)]) == 0
    assert "encoder.each.up (Dense) xN" in capsys.readouterr().out
