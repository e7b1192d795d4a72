# The README's commands. Each one does its own set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch. Elsewhere, e.g. for CUDA: make setup TORCH_SPEC="torch"
TORCH_SPEC ?= torch==2.13.0
# INTERSPHINX=1 links the docs to scikit-learn, numpy and PyTorch (needs internet).
INTERSPHINX ?= 0
LINTED := skae tests benchmarks examples docs/conf.py docs/_ext

.PHONY: setup setup-docs setup-cluster demo test test-cluster fuzz lint format bench docs \
	docs-check docs-clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup-docs: $(VENV)/.installed-docs

$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $@

# The scale-out engines (Dask, Ray, Optuna, pyarrow), for `make test-cluster`.
setup-cluster: $(VENV)/.installed-cluster

$(VENV)/.installed-cluster: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,cluster]"
	touch $@

demo: setup
	$(BIN)/skae demo

test: setup lint
	$(BIN)/python -m pytest

# Local Dask and Ray clusters, Optuna, 2-process DDP: the tests marked `cluster`.
test-cluster: setup-cluster
	$(BIN)/python -m pytest -m cluster -rs

# The property-based tests with many more examples (a few minutes); writes
# the outcomes by kind to fuzz-report.json.
FUZZ_EXAMPLES ?= 300
fuzz: setup
	SKAE_FUZZ=1 SKAE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SKAE_FUZZ_REPORT=fuzz-report.json \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py

lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: setup
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

bench: setup
	$(BIN)/python benchmarks/bench_fit_throughput.py

# The site, into docs/_build/html: warnings are errors, and the gallery runs.
docs: setup-docs
	SKAE_DOCS_INTERSPHINX=$(INTERSPHINX) $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# Builds the site, then checks it: every public name has an API page, and
# pages render with their code and figures in headless Chromium.
docs-check: docs
	SKAE_DOCS_HTML=docs/_build/html $(BIN)/python -m pytest -rs tests/test_docs_site.py

docs-clean:
	rm -rf docs/_build docs/generated docs/auto_examples docs/api.rst docs/sg_execution_times.rst
