"""The safe size-expression parser: what it accepts, and that nothing runs."""

import time

import pytest
import sympy

from analyzer.spec.expressions import ExpressionSyntaxError, parse_expression
from analyzer.symbolic import make_symbol

L = make_symbol("L")
C = make_symbol("classes")
SYMBOLS = {"L": L, "classes": C}


@pytest.mark.parametrize(("text", "expected"), [
    ("L - 11", L - 11),
    ("2 * L + classes", 2 * L + C),
    ("(L - 1) // 2 + 1", sympy.floor((L - 1) / 2) + 1),
    ("2 ** 10", 1024),
    ("-2 ** 2", -4),
    ("2 ** 3 ** 2", 512),
    ("max(L, 4)", sympy.Max(L, 4)),
    ("ceil(L / 3)", sympy.ceiling(L / 3)),
    ("1_000", 1000),
    ("mod(L, 4)", sympy.Mod(L, 4)),
])
def test_accepts_arithmetic(text, expected):
    assert parse_expression(text, SYMBOLS) == expected


def test_nested_floor_division_folds():
    assert parse_expression("(L - 1) // 2 // 2", SYMBOLS) == sympy.floor((L - 1) / 4)


@pytest.mark.parametrize(("text", "fragment"), [
    ("__import__('os').system('touch PWNED')", "'__import__' is not allowed"),
    ("lambda: 1", "'lambda' is not allowed"),
    ("L.real", "unexpected character '.'"),
    ("L.__class__", "'__class__' is not allowed"),
    ("().__class__.__bases__", "is not allowed"),
    ("clases", "undefined symbol 'clases'"),
    ("1.5", "non-integer number 1.5"),
    ("L % 2", "unexpected character '%'"),
    ("mod(L)", "mod takes two arguments"),
    ("mod(L, 0)", "mod by zero"),
    ("L +", "expected a number"),
    ("sqrt(L)", "unknown function 'sqrt'"),
    ("L / 0", "division by zero"),
    ("L ** L", "exponent L is not allowed"),
    ("2 ** 2 ** 2 ** 30", "exponent 1073741824 is not allowed"),
    ("10 ** 256 ** 2", "is not allowed"),
    ("(" * 60 + "1" + ")" * 60, "nested deeper"),
    ("1" * 600, "longer than"),
])
def test_rejects(text, fragment):
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression(text, SYMBOLS)
    assert fragment in str(info.value)


def test_undefined_symbol_suggests():
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression("clases", SYMBOLS)
    assert info.value.hint == "did you mean 'classes'?"


def test_hostile_input_is_fast_and_has_no_side_effect(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    for text in ("__import__('os').system('touch PWNED')", "2**2**2**30", "9**9**9**9", "[x for x in ()]"):
        with pytest.raises(ExpressionSyntaxError):
            parse_expression(text, SYMBOLS)
    assert time.perf_counter() - start < 0.5
    assert not (tmp_path / "PWNED").exists()
