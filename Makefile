# keel — the two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export UV_LINK_MODE := copy

.PHONY: demo test check lint format bench docs clean help chromium

help:
	@echo "make demo   set up a virtualenv, install keel-mlops[quickstart] and run 'keel quickstart'"
	@echo "make test   install the dev dependencies and run the whole test suite"
	@echo "make check  lint (ruff), type-check (mypy) and check the layer contracts (lint-imports)"
	@echo "make bench  run the benchmarks against the peers (writes docs/benchmarks.md)"
	@echo "make docs   regenerate docs/cli.md from the CLI's --help"

$(BIN)/python:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	uv venv -q -p $(PYTHON) $(VENV)

# keel is distributed as keel-mlops (docs/decisions/010); a .venv made before the rename still holds
# the old `keel` distribution, whose files would clash with the new one's, so it goes first.
# Not quiet: the install is the slowest part of a first `make demo` (~20 s even from a warm cache),
# and uv's progress says it is working.
$(VENV)/.demo: pyproject.toml | $(BIN)/python
	@uv pip uninstall -q -p $(BIN)/python keel 2>/dev/null || true
	uv pip install -p $(BIN)/python --compile-bytecode -e '.[quickstart]'
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	@uv pip uninstall -q -p $(BIN)/python keel 2>/dev/null || true
	uv pip install -q -p $(BIN)/python --compile-bytecode -e '.[dev]'
	@touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(BIN)/keel quickstart

# Browser tests drive Debian's Chromium; installed here when missing (CI runs as root).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing Chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "Chromium could not be installed: browser tests will skip (or fail where KEEL_TEST_REQUIRE_BROWSER=1)"

test: $(VENV)/.dev chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.dev
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run.py --mlflow-psutil

docs: $(VENV)/.dev
	$(BIN)/python -m keel.cli._reference > docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache test-artifacts
