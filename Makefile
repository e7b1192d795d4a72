# The README's commands. Each one does its own set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch. Elsewhere, e.g. for CUDA: make setup TORCH_SPEC="torch"
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test lint format bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: setup
	$(BIN)/skae demo

test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check skae tests benchmarks
	$(BIN)/ruff format --check skae tests benchmarks

format: setup
	$(BIN)/ruff check --fix skae tests benchmarks
	$(BIN)/ruff format skae tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_fit_throughput.py
