"""End to end through whole spec files and the CLI: nothing in a spec executes, hostile files
are refused fast with bounded memory, counts are exact integers however large (no float ever
enters one), and a strided 'valid' convolution that drops input positions says so."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
import sympy

from analyzer import analyze, cli
from analyzer.errors import NNSpecError
from analyzer.report import FLOP_KINDS, QUANTITIES
from analyzer.spec.loader import parse_spec


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def dense_spec(units: str) -> str:
    return f"symbols: {{L: 128}}\ninputs:\n  - {{name: x, shape: [L]}}\nlayers:\n  - type: Dense\n    units: {units}\n"


# ---------------------------------------------------------------- nothing executes

HOSTILE_UNITS = [
    ("\"__import__('os').system('touch PWNED')\"", "'__import__' is not allowed"),
    ("\"eval('1')\"", "'eval' is not allowed"),
    ("\"lambda: open('PWNED', 'w')\"", "'lambda' is not allowed"),
    ("\"L.__class__.__mro__\"", "'__class__' is not allowed"),
    ("\"().__class__.__bases__[0].__subclasses__()\"", "'__class__' is not allowed"),
    ("\"__builtins__\"", "'__builtins__' is not allowed"),
    ("\"L.bit_length()\"", "unexpected character '.'"),
    ("\"[x for x in ()]\"", "unexpected character '['"),
    ("\"open('PWNED', 'w')\"", "'open' is not allowed"),
    ("2**2**2**30", "exponent 1073741824 is not allowed"),
    ("\"9**9**9**9\"", "is not allowed"),
    ("\"((L + 1)**256)**256\"", "polynomial degree over 256"),
    ("\"L**200 * L**200\"", "polynomial degree over 256"),
    ("\"" + "2**256*" * 40 + "1\"", "too large (over 4096 bits)"),
    ("\"" + "(" * 200 + "L" + ")" * 200 + "\"", "nested deeper than 50 levels"),
    ("\"" + "L+" * 300 + "L\"", "longer than 500 characters"),
    ("!!python/object/apply:os.system ['touch PWNED']", "tag !!python/object/apply:os.system is not allowed"),
    ("!!python/name:os.system", "tag !!python/name:os.system is not allowed"),
    ("!!binary aGVsbG8=", "tag !!binary is not allowed"),
]


@pytest.mark.parametrize(("units", "fragment"), HOSTILE_UNITS)
def test_hostile_sizes_are_refused_fast_without_side_effects(units, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "hostile.yaml"
    spec.write_text(dense_spec(units))
    start = time.perf_counter()
    status, out, err = run_cli(capsys, spec)
    assert time.perf_counter() - start < 1.0
    assert status == 2 and out == ""
    assert f"{spec}:6:12: " in err and fragment in err, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.yaml"]  # no PWNED


def test_python_tag_as_a_key_or_a_document_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for text in ("? !!python/object/apply:os.system 'touch PWNED'\n: 1\n",
                 "--- !!python/object/apply:os.system ['touch PWNED']\n",
                 "inputs: !!python/object/new:os.system [touch PWNED]\n"):
        with pytest.raises(NNSpecError, match="is not allowed"):
            parse_spec(text, "t.yaml")
    assert list(tmp_path.iterdir()) == []


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
BOMBS = [
    ("billion_laughs", "description: x\n" + LAUGHS, "aliases expand to more than 10000 values"),
    ("deep_lists", "inputs: " + "[" * 10_000 + "]" * 10_000 + "\n", "nesting deeper than 64 levels"),
    ("deep_mappings", "".join(" " * i + f"k{i}:\n" for i in range(1_300)), "nesting deeper than 64 levels"),
    ("deep_block_lists", "a:\n  " + "- " * 10_000 + "1\n", "nesting deeper than 64 levels"),
    ("deep_flow_mappings", "a: " + "{b: " * 10_000 + "1" + "}" * 10_000 + "\n", "nesting deeper than 64 levels"),
    ("many_aliases", "a: &a 1\nb: [" + ", ".join(["*a"] * 1000) + "]\n", "more than 100 aliases"),
    ("recursive_alias", "a: &a [*a]\n", "nesting deeper than 64 levels"),
    ("huge_integer", "symbols: {L: " + "9" * 5000 + "}\n", "integer with more than 1000 digits"),
]


@pytest.mark.parametrize(("name", "text", "fragment"), BOMBS, ids=[b[0] for b in BOMBS])
def test_bombs_through_the_cli_are_fast_and_small(name, text, fragment, capsys, tmp_path):
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    start = time.perf_counter()
    status, out, err = run_cli(capsys, spec)
    assert time.perf_counter() - start < 1.0
    assert status == 2 and out == "" and fragment in err and f"{spec}:" in err, err
    tracemalloc.start()  # a second run, traced (tracing slows Python several times)
    status, _, _ = run_cli(capsys, spec)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert status == 2
    assert peak < 50 * 2**20


# ---------------------------------------------------------------- exact arithmetic

PETA = """\
# 10^15 parameters: a Dense of 10^9 units on 10^6 features.
symbols: {N: 1000000}
inputs:
  - {name: x, shape: [N]}
layers:
  - {type: Dense, name: huge, units: 1000000000}
"""


def test_a_petaparameter_spec_prints_exactly(capsys, tmp_path):
    spec = tmp_path / "peta.yaml"
    spec.write_text(PETA)
    # params = N*U + U = 10^15 + 10^9; MACs = N*U = 10^15; dot = U*(2N - 1); FLOPs = dot + U = 2*10^15
    status, out, _ = run_cli(capsys, spec)
    assert status == 0
    assert "Total params:         1000000000*N + 1000000000 = 1,000,001,000,000,000" in out
    assert "MACs:                 1000000000*N = 1,000,000,000,000,000" in out
    assert "FLOPs:                2000000000*N = 2,000,000,000,000,000" in out
    status, out, _ = run_cli(capsys, spec, "--format", "json")
    data = json.loads(out)
    assert data["total"]["params"]["value"] == 10**15 + 10**9
    assert data["total"]["flops_by_op"]["dot"]["value"] == 10**9 * (2 * 10**6 - 1)
    assert isinstance(data["total"]["params"]["value"], int)
    # beyond float precision (2**53): still exact
    status, out, _ = run_cli(capsys, spec, "--format", "json", "--set", f"N={10**20 + 1}")
    data = json.loads(out)
    assert data["total"]["params"]["value"] == (10**20 + 1) * 10**9 + 10**9
    assert data["total"]["macs"]["value"] == 10**29 + 10**9


FLOAT_FIELDS = """\
symbols: {L: 64}
inputs:
  - {name: x, shape: [L, 3]}
layers:
  - {type: Dropout, rate: 0.5}
  - {type: BatchNormalization, momentum: 0.9, epsilon: 0.00001}
  - {type: GRU, units: 4, dropout: 0.25, recurrent_dropout: 0.125, return_sequences: true}
  - {type: Dense, units: 2}
"""


def test_float_fields_never_reach_a_count():
    report = analyze(FLOAT_FIELDS)
    for row in report.layers.values():
        for q in (*QUANTITIES, *FLOP_KINDS):
            expr = sympy.sympify(row.counts.quantity(q))
            assert not expr.atoms(sympy.Float), (row.name, q, expr)
            assert type(report.value(expr)) is int
    # BatchNormalization on 3 channels: 2*3 trainable, 2*3 non-trainable, whatever momentum/epsilon are
    assert report.value(report.layers["batch_normalization_1"].counts.params) == 12


@pytest.mark.parametrize(("text", "fragment"), [
    (dense_spec("1e3"), "non-integer number 1e3"),
    (dense_spec("1.0e+3"), "1000.0 is not an integer"),
    (dense_spec("8.0"), "8.0 is not an integer"),
    (dense_spec("true"), "expected an integer or an expression, got true"),
    ("symbols: {L: 128.0}\ninputs: [{shape: [L]}]\nlayers: [{type: Dense, units: 2}]\n", "needs an integer default value"),
    ("inputs: [{shape: [4]}]\nlayers: [{type: Dropout, rate: .nan}]\n", "rate must be a finite number"),
    ("inputs: [{shape: [4]}]\nlayers: [{type: Dropout, rate: true}]\n", "rate must be a number (got True)"),
])
def test_floats_and_booleans_are_not_sizes(text, fragment):
    with pytest.raises(NNSpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        analyze(text)


def test_numbers_too_long_to_print_are_user_errors(capsys, tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text("symbols: {L: 10}\ninputs: [{name: x, shape: [L, L, L, L]}]\nlayers: [{type: Flatten}]\n")
    status, _, err = run_cli(capsys, spec, "--set", "L=" + "9" * 5000)
    assert status == 2 and "more than 1000 digits" in err
    status, _, err = run_cli(capsys, spec, "--set", "L=" + "9" * 900)
    assert status == 2 and "larger than 2**10000" in err and "flatten_1" in err and "Traceback" not in err


# ---------------------------------------------------------------- strides that do not divide

STRIDED = """\
symbols: {L: 129}
inputs:
  - {name: x, shape: [L, 2]}
layers:
  - {type: Conv1D, name: conv, filters: 4, kernel_size: 4, strides: 2}
"""


def test_valid_padding_floor_drops_samples_and_says_so(capsys, tmp_path):
    spec = tmp_path / "strided.yaml"
    spec.write_text(STRIDED)
    # Keras: floor((129 - 4) / 2) + 1 = 63 outputs; windows start at 0, 2, ..., 124 and end at 127,
    # so input position 128 (the last 1) is never read.
    status, out, err = run_cli(capsys, spec)
    assert status == 0 and err == ""
    assert "= (63, 4)" in out
    note = "the last 1 input position(s) along the length (L) are never read, since L - 4 is not a multiple of 2"
    assert f"Note: {spec}:5:69: layer 'conv' (Conv1D): strides 2: {note}" in out
    status, out, _ = run_cli(capsys, spec, "--format", "json")
    data = json.loads(out)
    assert len(data["notes"]) == 1 and note in data["notes"][0]
    # at L = 130 the windows end exactly at the last sample (floor((130 - 4) / 2) + 1 = 64): no note
    status, out, _ = run_cli(capsys, spec, "--set", "L=130", "--format", "json")
    assert json.loads(out)["notes"] == []
    # stride 3 on 2 + 3k + 2 samples: (L - 4) mod 3 = 2 positions unread at L = 132
    spec.write_text(STRIDED.replace("strides: 2", "strides: 3"))
    status, out, _ = run_cli(capsys, spec, "--set", "L=132")
    assert "the last 2 input position(s)" in out


def test_same_padding_drops_nothing(capsys, tmp_path):
    spec = tmp_path / "same.yaml"
    spec.write_text(STRIDED.replace("strides: 2", "strides: 2, padding: same"))
    status, out, _ = run_cli(capsys, spec, "--format", "json")
    assert status == 0 and json.loads(out)["notes"] == []


def test_pooling_with_the_default_stride_says_so_too(capsys, tmp_path):
    spec = tmp_path / "pool.yaml"
    spec.write_text("symbols: {L: 129}\ninputs:\n  - {name: x, shape: [L, 2]}\nlayers:\n  - {type: MaxPooling1D}\n")
    # Keras: pool 2, stride 2 on 129 samples -> floor(127 / 2) + 1 = 64 windows covering samples 0..127
    status, out, _ = run_cli(capsys, spec)
    assert status == 0 and "= (64, 2)" in out
    assert "the last 1 input position(s) along the length (L) are never read" in out
