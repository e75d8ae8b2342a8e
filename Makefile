# Everything runs from a local virtual environment that the Makefile creates.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core

.PHONY: demo test crosscheck lint clean zoo why-counters bench keras-apps

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

## zoo: regenerate the tables of docs/amc-zoo.md (analyze compare on the 15 specs of specs/amc/)
zoo: $(CORE)
	$(BIN)/python scripts/amc_zoo_doc.py

## test: the unit, golden and error tests (no framework needed)
test: $(CORE)
	$(BIN)/python -m pytest -q tests

# Keras 3 and PyTorch in .venv. torch is pinned (==2.13.0) in pyproject.toml: its CPU wheel is on
# the build machines' disk; any other version downloads a multi-GB CUDA build.
CROSSCHECK_READY := $(VENV)/.installed-crosscheck

$(CROSSCHECK_READY): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,dev,crosscheck]'
	touch $@

## crosscheck: every spec in specs/ at the sizes of tests/crosscheck/sizes.yaml, against real Keras and PyTorch
## (and the counters thop, ptflops, fvcore); two workers, one test file each at a time. The unit tests that
## export tiny torch modules (tests/test_importers_onnx.py) skip in `make test` without torch: they run here.
# One torch thread per pytest worker: two workers each spinning two threads on 2 cores ran the recurrent specs'
# autograd tests 3x slower (lstm2 at L = 301: 53 s a worker instead of 19 s).
crosscheck: $(CROSSCHECK_READY)
	KERAS_BACKEND=torch OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25 tests/crosscheck tests/test_importers_onnx.py

## keras-apps: regenerate the keras.applications table of docs/importers.md (every buildable model imported, against
## Keras' count_params() and FlopCounterMode; about 2 minutes)
keras-apps: $(CROSSCHECK_READY)
	KERAS_BACKEND=torch $(BIN)/python scripts/keras_apps_doc.py

## why-counters: regenerate docs/why-counters-disagree.md from the profiles and the real tools
why-counters: $(CROSSCHECK_READY)
	$(BIN)/python docs/why_counters_disagree.py

## bench: issue 9's benchmarks (cold CLI vs frameworks, 10..10,000-layer specs, 10,000-point sweeps);
## writes docs/performance.md (about 5-10 minutes on 2 cores)
bench: $(CROSSCHECK_READY)
	KERAS_BACKEND=torch $(BIN)/python bench/run.py

lint: $(CORE)
	$(BIN)/ruff check analyzer tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
