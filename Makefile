# Two commands from a fresh clone: `make run` (the app) and `make test` (the test suite).
# Each creates .venv if needed and installs idempotently (stamps are refreshed when the
# requirement files change).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
ARGS   ?=

.PHONY: setup setup-dev run test test-fast bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# facenet-pytorch 2.6.0 declares torch<2.3, numpy<2 and Pillow<10.3, yet its MTCNN runs on the
# pinned modern stack; a requirements file cannot say --no-deps, so it is installed here.
$(VENV)/.runtime: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps facenet-pytorch==2.6.0
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

run: setup
	$(PY) app.py $(ARGS)

test: setup-dev
	$(PY) -m pytest $(ARGS)

# The edit-and-rerun loop: everything not marked slow (no trained toy model, no browser, no
# subprocess training), stopping at the first failure. `make test` (what CI runs) stays the full suite.
test-fast: setup-dev
	$(PY) -m pytest -m "not slow" -x -q $(ARGS)

bench: setup
	$(PY) bench/cpu.py

clean:
	rm -rf $(VENV) .pytest_cache
