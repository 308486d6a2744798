# Taskhub: `make run` starts the service, `make test` runs the suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_PATHS := backend tests alembic scripts $(wildcard bench)

.PHONY: run test lint format migrate services bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

services:
	scripts/ensure-services.sh

migrate: $(STAMP) services
	$(PY) -m scripts.create_database
	$(VENV)/bin/alembic upgrade head

run: migrate
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(VENV)/bin/honcho start -f Procfile

test: $(STAMP) services
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# bench/ may not exist yet; ruff fails on a missing path.
LINT_PATHS := backend tests alembic scripts $(wildcard bench)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	scripts/check-compose.sh

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Writes docs/benchmarks.md; exits non-zero if a measurement failed (not if a target is missed).
bench: $(BENCH_STAMP) services
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
