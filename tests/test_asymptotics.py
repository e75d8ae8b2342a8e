"""Dominant terms and orders, checked against formulas worked by hand."""

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
