"""sizes.yaml covers every spec: new specs cannot skip the cross-check."""

from __future__ import annotations

import functools

import pytest
from crosscheck_harness import MIN_VALUES, ROOT, SIZES_FILE, cases_of, load_sizes, spec_files

from analyzer import analyze

SIZES = load_sizes()


@functools.cache
def analyzed(path):
    return analyze(ROOT / path)


def test_specs_are_found():
    files = spec_files()
    assert "specs/scnn.yaml" in files and "specs/pet_cgdnn.yaml" in files


@pytest.mark.parametrize("path", spec_files())
def test_every_spec_has_sizes_for_every_symbol(path):
    entry = SIZES.get(path)
    assert entry, f"{path} has no entry in {SIZES_FILE.name}: every spec must be cross-checked"
    symbols = [s.name for s in analyzed(path).symbols]
    assert sorted(entry) == sorted(symbols), f"{path}: sizes for {sorted(entry)}, symbols {sorted(symbols)}"
    for name, values in entry.items():
        assert len(set(values)) >= MIN_VALUES, f"{path}: {name} needs at least {MIN_VALUES} distinct values"
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in values), f"{path}: {name}: {values}"


@pytest.mark.parametrize("path", sorted(SIZES))
def test_every_entry_names_an_existing_spec_and_valid_sizes(path):
    assert path in spec_files(), f"{SIZES_FILE.name} names {path}, which is not a spec any more"
    report = analyzed(path)
    for values in cases_of(SIZES[path]):
        report.at(**values)  # raises (naming the layer and the rule) outside the spec's domain
