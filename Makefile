# Everything runs from a local virtual environment that the Makefile creates.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $@

## demo: install into .venv and analyze both founding models
demo: $(CORE)
	$(BIN)/analyze specs/scnn.yaml
	$(BIN)/analyze specs/pet_cgdnn.yaml

## test: the unit, golden and error tests (no framework needed)
test: $(CORE)
	$(BIN)/python -m pytest -q tests

lint: $(CORE)
	$(BIN)/ruff check analyzer tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
