# Taskhub: `make run` starts the service, `make test` runs the suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_PATHS := backend tests alembic scripts $(wildcard bench)

.PHONY: run test test-fast test-stress soak lint format lock migrate services chromium bench bench-quick fuzz clean

# The lock (requirements/*.txt, `make lock`) has every package at an exact version with its
# hashes: the install is the same on every machine, and pip resolves nothing (`pip check`
# then proves the lock complete). The project itself goes in editable, without dependencies
# (the lock holds them all, setuptools too).
LOCK := requirements/dev.txt
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	# The locked pip first (its entry of the lock, hashes and all): a current pip installs
	# the rest about twice as fast as the one a new venv comes with.
	sed -n '/^pip==/,/^    # via/p' $(LOCK) > $(VENV)/pip-lock.txt
	$(PY) -m pip install --quiet --require-hashes -r $(VENV)/pip-lock.txt
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check  # the lock is complete: nothing it installed lacks a dependency
	touch $(STAMP)

services:
	scripts/ensure-services.sh

# The console's browser tests drive Debian's chromium (installed here where missing).
chromium:
	scripts/ensure-chromium.sh

migrate: $(STAMP) services
	$(PY) -m scripts.create_database
	$(VENV)/bin/alembic upgrade head

# prometheus-client multiprocess mode: api, worker and scheduler share this directory, so the
# API's /metrics serves all three. Emptied of an earlier run's samples at each start.
run: export PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/.run/metrics
run: migrate
	mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)"
	find "$(PROMETHEUS_MULTIPROC_DIR)" -maxdepth 1 -name '*.db' -delete
	# honcho sets PORT itself (5000 by default): pass ours as its base port.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(VENV)/bin/honcho start -p $${PORT:-8000} -f Procfile

# The layering contracts first: a broken one fails in a second, before the suite starts.
test: $(STAMP) services chromium
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# What needs no started process (no worker, scheduler, API server or browser).
test-fast: $(STAMP) services
	$(VENV)/bin/pytest -m "not e2e and not browser and not fuzz" $(PYTEST_ARGS)

# The end-to-end, fault and scheduler tests STRESS_ROUNDS times, with one core kept busy:
# a test that fails only here races the machine's load (poll with a deadline instead).
STRESS_ROUNDS ?= 3
test-stress: $(STAMP) services
	STRESS_ROUNDS=$(STRESS_ROUNDS) scripts/stress.sh $(VENV)/bin/pytest -m e2e $(PYTEST_ARGS)

# The schema fuzz of `make test` (tests/system/test_fuzz.py) with far more, and new, examples.
FUZZ_MAX_EXAMPLES ?= 1000
fuzz: $(STAMP) services
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_RANDOM=1 $(VENV)/bin/pytest tests/system/test_fuzz.py $(PYTEST_ARGS)

# The chaos soak (tests/system/test_soak.py) for SOAK_SECONDS (3 minutes); `make test` runs it
# for 45 s. It prints its table of counts (docs/benchmarks.md keeps a 3-minute one).
SOAK_SECONDS ?= 180
soak: $(STAMP) services
	SOAK_SECONDS=$(SOAK_SECONDS) $(VENV)/bin/pytest -m soak -s tests/system/test_soak.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy backend
	$(VENV)/bin/lint-imports --no-cache
	scripts/check-compose.sh
	# The alerting rules, where Debian's prometheus package brings promtool.
	if command -v promtool >/dev/null; then promtool check rules docs/prometheus-alerts.yml; fi

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP) pyproject.toml requirements/bench.txt
	$(PY) -m pip install --quiet --require-hashes -r requirements/bench.txt
	touch $(BENCH_STAMP)

# Writes docs/benchmarks.md; exits non-zero if a measurement failed (not if a target is missed).
bench: $(BENCH_STAMP) services
	$(PY) -m bench.run

# Every bench at a small N in about a minute, printed (no file written): a change's before/after.
bench-quick: $(BENCH_STAMP) services
	$(PY) -m bench.quick

# Compiles requirements/{bench,dev,main}.txt from pyproject.toml with pip-tools, keeping every
# pin that still fits (a few minutes: it asks the package index). `make lock UPGRADE=1` moves
# every pin to the newest release pyproject.toml allows. tests/unit/test_lock.py fails while
# pyproject.toml and the lock disagree.
lock: $(STAMP)
	$(PY) -m scripts.lock $(if $(UPGRADE),--upgrade)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
