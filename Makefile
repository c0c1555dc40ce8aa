# Two commands on a fresh machine with Python 3.11:
#   make demo   set up (with the embedded local model) and run the demo exam
#   make test   set up (with dev tools) and run ruff, mypy and the tests
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles llama.cpp once (about 4 minutes on 2 cores); LLaVA is not needed.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: setup setup-dev demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install writes no bytecode: it is compiled once here, so that start-up does not
# compile the package's modules on every command where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local]'
	$(BIN)/python -m compileall -q examharness
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local,dev]'
	$(BIN)/python -m compileall -q examharness
	touch $@ $(VENV)/.installed-local

setup: $(VENV)/.installed-local
setup-dev: $(VENV)/.installed-dev

# The run prints its folder last; the Figure-4-style chart goes into that folder.
demo: setup
	@set -o pipefail; exec 3>&1; \
	run=$$($(BIN)/examharness run exams/demo | tee /dev/fd/3 | tail -n 1) && \
	$(BIN)/examharness chart "$$run" --out "$$run/figure4.png"

lint: setup-dev
	$(BIN)/ruff check examharness tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: setup-dev
	$(BIN)/python bench/bench_runner.py
	$(BIN)/python bench/bench_contamination.py
	$(BIN)/python bench/bench_extract.py --baseline 6117533
	$(BIN)/python bench/bench_cli.py
	$(BIN)/python bench/bench_fleet.py
