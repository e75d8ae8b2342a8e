"""Dominant terms and orders, checked against formulas worked by hand."""

import pytest
import sympy

from analyzer import analyze
from analyzer.asymptotics import growth
from analyzer.symbolic import make_symbol

L = make_symbol("L")
S = make_symbol("S")


def test_linear_with_floor():
    g = growth(6 * sympy.floor((L - 1) / 2) + 7, L, {L: 128})
    assert (g.degree, g.coefficient, g.order) == (1, 3, "O(L)")
    assert str(g) == "~ 3*L  (O(L))"


def test_quadratic_in_one_symbol_other_fixed():
    g = growth(2 * L * S**2 + 5 * S, S, {L: 10, S: 4})
    assert (g.degree, g.coefficient) == (2, 20)
    assert growth(2 * L * S**2 + 5 * S, L, {L: 10, S: 4}).coefficient == 32


def test_constant_shows_the_exact_value():
    g = growth(sympy.Integer(59_136), L, {L: 128})
    assert g.order == "O(1)" and g.dominant() == "59,136"


def test_rational_coefficient():
    g = growth(sympy.floor(L / 4) ** 2, L, {L: 8})
    assert g.dominant() == "1/16*L^2" and g.order == "O(L^2)"


def test_founding_models():
    pet = analyze("specs/pet_cgdnn.yaml")
    L_ = pet.symbol("L").symbol
    # params grow only through fc2 (Dense(1) on 2L inputs): 2 per sample
    assert str(growth(pet.total.params, L_, pet.values)) == "~ 2*L  (O(L))"
    # MACs per sample of L: fc2 2, conv1_1 75*16, conv1_2 25*375, GRU 3*128*(25 + 128)
    assert growth(pet.total.macs, L_, pet.values).coefficient == 2 + 1200 + 9375 + 58_752


def test_pet_cgdnn_growth_in_table_and_json(capsys):
    import json

    from analyzer import cli

    # per sample of L, by hand: MACs fc2 2 + conv1_1 16*75 + conv1_2 375*25 + GRU 3*128*(25 + 128) = 69,329.
    # FLOPs: fc2 2*(2L) per L = 4; multiply x4, add, subtract 1 each = 6; conv1_1 75*(2*16-1 + bias 1 + relu 1) = 2,475;
    # conv1_2 25*(2*375-1 + 1 + 1) = 18,775; GRU (reset_after false) per step: dots 3*128*((2*25-1) + (2*128-1)) = 116,736,
    # bias 3*128 = 384, sigmoid 4 x 2*128 + tanh 5 x 128 = 1,664, elementwise 8*128 = 1,024  ->  119,808.
    flops_per_l = 4 + 6 + 2475 + 18_775 + 116_736 + 384 + 1664 + 1024
    assert flops_per_l == 141_068
    assert cli.main(["specs/pet_cgdnn.yaml"]) == 0
    out = capsys.readouterr().out
    assert "  L: params ~ 2*L (O(L)); MACs ~ 69,329*L (O(L)); FLOPs ~ 141,068*L (O(L))" in out
    # classes: softmax Dense(classes) on 128 inputs: params 129, MACs 128, FLOPs 2*128-1 + 1 + softmax 3 = 259
    assert "  classes: params ~ 129*classes (O(classes)); MACs ~ 128*classes (O(classes))" in out
    assert cli.main(["specs/pet_cgdnn.yaml", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["asymptotics"]["L"]["macs"] == {"dominant": "69329*L", "order": "O(L)"}
    assert data["asymptotics"]["L"]["flops"] == {"dominant": "141068*L", "order": "O(L)"}
    assert data["asymptotics"]["classes"]["flops"] == {"dominant": "259*classes", "order": "O(classes)"}


def test_scnn_growth_in_both_symbols():
    from analyzer.asymptotics import report_growth

    scnn = analyze("specs/scnn.yaml")
    g = report_growth(scnn)
    # dense_1: 64*L inputs -> classes units: params 64*L*classes + classes
    assert (g["L"]["params"].coefficient, g["L"]["params"].order) == (64 * 11, "O(L)")
    assert g["classes"]["params"].coefficient == 64 * 128 + 1
    # MACs in classes: dense_1 only, 64*128 per class
    assert g["classes"]["macs"].coefficient == 64 * 128


def test_leading_terms_that_cancel_leave_the_next_degree():
    # (L + 1)**2 - L**2 = 2L + 1, worked term by term: the L^2 of the two terms cancels
    g = growth((L + 1) ** 2 - sympy.floor(L**2 / 1), L, {L: 5})
    assert (g.degree, g.coefficient) == (1, 2)


def test_nested_floors_of_a_strided_stack():
    # floor(floor(L/2)/2) ~ L/4; its square times 3 ~ 3/16*L^2; L*S with S fixed at 3 ~ 3*L
    g = growth(3 * sympy.floor(sympy.floor(L / 2) / 2) ** 2 + L * S, L, {L: 64, S: 3})
    assert g.dominant() == "3/16*L^2"


def test_a_symbol_as_divisor_is_not_polynomial():
    g = growth(L + sympy.floor(100 / L), L, {L: 10})
    assert (g.degree, g.order) == (None, "not polynomial")


@pytest.mark.parametrize("spec", ["specs/scnn.yaml", "specs/pet_cgdnn.yaml", "specs/resnet50.yaml",
                                  "specs/transformer_encoder.yaml", "specs/llm/llama.yaml", "specs/llm/mixtral.yaml",
                                  "specs/amc/mcldnn.yaml"])
def test_growth_without_substituting_is_growth_after_substituting(spec):
    """growth() reads the other symbols' values while it walks the total; the same as substituting them first
    (xreplace) and taking the polynomial of what is left, as growth() does where the walk gives up."""
    import sympy

    from analyzer.asymptotics import _coefficients, growth
    from analyzer.symbolic import evaluate

    report = analyze(spec)
    for s in report.symbols:
        for quantity in ("params", "macs", "flops"):
            expr = report.total.quantity(quantity)
            fixed = expr.xreplace({o: sympy.Integer(v) for o, v in report.values.items() if o != s.symbol})
            coefficients = _coefficients(fixed, s.symbol) if s.symbol in fixed.free_symbols else {0: 0}
            if coefficients is None:  # 1/h: not a polynomial in h
                expected = (None, None)
            else:
                degree = max((d for d, c in coefficients.items() if c != 0), default=0)
                expected = (0, evaluate(fixed, {s.symbol: report.values[s.symbol]})) if degree <= 0 else (
                    degree, coefficients[degree])
            got = growth(expr, s.symbol, report.values)
            assert (got.degree, got.coefficient) == expected, (spec, s.name, quantity)
