"""analyzer.symbolic's shortcuts (issue 9) give exactly what sympy gives.

render() expands sums term by term and remembers what it printed; exact_value() computes with
Python ints and Fractions instead of substituting in sympy; product() and Report.total reuse
objects. Each is checked against the plain sympy computation it replaces.
"""

from __future__ import annotations

from dataclasses import fields
from fractions import Fraction

import pytest
import sympy
from sympy.core.sorting import default_sort_key

from analyzer import analyze
from analyzer.report import FLOP_KINDS, QUANTITIES, Counts
from analyzer.symbolic import _PRINTER, evaluate, evaluate_int, exact_value, make_symbol, product, render
from analyzer.training_memory import step_memory

SPECS = ["specs/scnn.yaml", "specs/pet_cgdnn.yaml", "specs/resnet50.yaml", "specs/transformer_encoder.yaml",
         "specs/mobilenet_v2.yaml", "specs/amc/mcldnn.yaml", "specs/llm/llama.yaml", "specs/llm/mixtral.yaml"]
L, S = make_symbol("L"), make_symbol("S")


def _formulas(spec: str) -> list[sympy.Expr]:
    report = analyze(spec)
    out = []
    for rep in (report, report.grouped(1)):
        out += [rep.total.quantity(q) for q in (*QUANTITIES, *FLOP_KINDS)]
        for row in rep.layers.values():
            out += [row.counts.quantity(q) for q in (*QUANTITIES, *FLOP_KINDS)]
            out += [*row.output_shape, product(row.output_shape)]
    step = report.training(optimizer="adam")  # B times the forward shapes: products that render multiplies out
    for part in ("forward", "backward", "grad_input", "grad_weight", "grad_other", "optimizer", "flops"):
        out += [step.total(part), *(getattr(layer, part) for layer in step.layers.values())]
    out += [line.elements for line in step_memory(step, "float32")]
    return [e for e in out if isinstance(e, sympy.Basic)]


@pytest.mark.parametrize("spec", SPECS)
def test_render_is_the_printed_expansion(spec):
    for expr in _formulas(spec):
        assert render(expr) == _PRINTER.doprint(sympy.expand(expr))


@pytest.mark.parametrize("spec", SPECS)
def test_sum_ordering_key_is_sympys_sort_key(spec):
    for expr in _formulas(spec):
        for term in sympy.Add.make_args(sympy.expand(expr)):
            assert _PRINTER._term_key(term)[2] == default_sort_key(term)


@pytest.mark.parametrize("spec", SPECS)
def test_total_is_the_plain_sum_of_the_rows(spec):
    report = analyze(spec)
    for rep in (report, report.grouped(1)):
        rows = [row.counts for row in rep.layers.values()]
        for f in fields(Counts):
            plain = sympy.Add(*(getattr(c, f.name) for c in rows))
            assert getattr(rep.total, f.name).args == plain.args
            assert getattr(rep.total, f.name) == plain


def test_render_of_sums_that_cancel_or_collect():
    x = sympy.floor((L - 1) / 8)
    assert render(sympy.Add(2 * (x + 1) ** 2, -2 * x**2, evaluate=False)) == "4*floor(L/8 - 1/8) + 2"
    assert render((x + 1) ** 2 - x**2 - 2 * x - 1) == "0"
    assert render(3 * (L + 1) + 2 * (L + 1) ** 2) == "2*L**2 + 7*L + 5"
    assert render(L * S - S * L + 5) == "5"


EXPRESSIONS = [
    3 * L**2 + 7, sympy.floor((L - 1) / 8) + 1, sympy.ceiling(L / 3) * S, sympy.Mod(L, 7), sympy.Mod(-L, 7),
    sympy.Min(L, 2 * S), sympy.Max(L - 100, S), L / 4, (L + 1) ** 2 / (S + 1), sympy.floor(sympy.Rational(-7, 3) * L),
    sympy.ceiling(-L / 2) + sympy.floor(S / 2**70), sympy.Integer(2) ** 100 * L, sympy.Rational(1, 2**65) * L**3,
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
def test_exact_value_is_sympys_substitution(expr):
    for values in ({L: 1, S: 1}, {L: 12, S: 5}, {L: 2**70 + 3, S: 17}, {L: 999, S: 2**64}):
        expected = expr.xreplace({s: sympy.Integer(v) for s, v in values.items()})
        value = exact_value(expr, values)
        assert value == Fraction(int(expected.p), int(expected.q))
        assert type(value) is (int if expected.is_Integer else Fraction)
        assert evaluate(expr, values) == expected


def test_exact_value_errors_as_before():
    with pytest.raises(ValueError, match=r"cannot evaluate L \+ S \(no value for S\)"):
        exact_value(L + S, {L: 1})
    with pytest.raises(ValueError, match="no value for"):
        exact_value(1 / (L - 1), {L: 1})  # a division by zero: sympy's zoo
    with pytest.raises(ValueError, match="not an integer"):
        evaluate_int(L / 2, {L: 3})
    assert exact_value(sympy.sqrt(L), {L: 16}) == 4  # beyond the fast path: sympy substitutes
    assert exact_value(True, {}) == 1 and type(exact_value(True, {})) is int


def test_product_returns_the_same_object_for_the_same_factors():
    shape = (sympy.floor(L / 2), sympy.floor(L / 2), sympy.Integer(16))
    assert product(shape) is product(shape)
    assert product(shape) == 16 * sympy.floor(L / 2) ** 2
    assert product([2, 3]) == 6 and product([]) == 1


def test_render_multiplies_out_products_as_sympy_expands_them():
    """Products and powers of sums (the training step's B times a shape) are multiplied out from their factors'
    expansions; each must print as sympy.expand's result, including the cases that fall back to sympy."""
    B, H = make_symbol("B"), make_symbol("H")
    f = sympy.floor(H / 8 - sympy.Rational(1, 8))
    cases = [
        4592 * B * (f + 1) ** 2,                       # the conv stack's deep layers
        B * (2 * f + 3) ** 2 * (f + 1),
        (B + 1) * (B - 1),                             # cancels to B**2 - 1
        sympy.Rational(1, 2) * (H + 2) * (H - 2),
        (H + 1) ** 3,
        sympy.sqrt(2) * (H + sympy.sqrt(2)) * (B + sympy.sqrt(2)),  # sqrt(2)*sqrt(2) folds into a number
        B * (H + 1) / (H + 2),                         # a denominator: sympy's rules
        sympy.Float(0.5) * B * (H + 1),                # a float: sympy's rules
        (H - 1) * (H + 1) - H**2 + 1,                  # a sum of products that cancels to 0
        3 * B * (H * f + 2 * H) ** 2 + (B * H - 1) * (B * H + 1),
    ]
    for expr in cases:
        assert render(expr) == _PRINTER.doprint(sympy.expand(expr)), expr
    assert render((B + 1) * (B - 1)) == "B**2 - 1"
    assert render(B * (H + 1) ** 2) == "B*H**2 + 2*B*H + B"
