"""Column-wise exact evaluation agrees with sympy substitution."""

import time

import pytest
import sympy

from analyzer import analyze
from analyzer.fast_eval import evaluate_many
from analyzer.symbolic import evaluate_int, make_symbol

L = make_symbol("L")
C = make_symbol("C")


@pytest.mark.parametrize("expr", [
    6 * sympy.floor((L - 1) / 2) + 7,
    sympy.floor(L / 4 - sympy.Rational(3, 4)) ** 2 * C + C,
    -sympy.floor(-L / 3) + sympy.ceiling(L / 5),
    sympy.Max(L, 3 * C) + sympy.Min(L, 7),
    L * (L + 1) / 2,
    sympy.Integer(10) ** 15 * L,
    sympy.Integer(42),
    sympy.Mod(sympy.floor((L + 1) / 2), 2) + C,
])
def test_matches_sympy(expr):
    lengths = [1, 2, 3, 7, 100, 1001, 10**12 + 3]
    for channels in (1, 5):
        got = evaluate_many(expr, {L: lengths, C: [channels] * len(lengths)})
        assert got == [evaluate_int(expr, {L: n, C: channels}) for n in lengths]


def test_non_integer_result_raises():
    with pytest.raises(ValueError, match="not an integer"):
        evaluate_many(L / 3, {L: [3, 4]})


def test_founding_model_totals_over_a_sweep():
    report = analyze("specs/pet_cgdnn.yaml")
    L_, classes = (s.symbol for s in report.symbols)
    lengths = list(range(12, 400, 37))
    flops = evaluate_many(report.total.flops, {L_: lengths, classes: [11] * len(lengths)})
    assert flops == [report.at(L=n).value(report.total.flops) for n in lengths]


def test_ten_thousand_points_are_fast():
    report = analyze("specs/pet_cgdnn.yaml")
    L_, classes = (s.symbol for s in report.symbols)
    lengths = list(range(12, 10_012))
    start = time.perf_counter()
    evaluate_many(report.total.flops, {L_: lengths, classes: [11] * len(lengths)})
    assert time.perf_counter() - start < 1.0  # generous for CI; bench/ measures the real figure
