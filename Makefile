# flowlane — `make run` runs the demo, `make test` runs every check, `make bench` the benchmarks.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck imports pytest bench clean dovecot assets chromium screenshots \
	conformance

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The browser libraries of the web UI (bpmn-js, htmx 2, SortableJS, Chart.js), from npm.
ASSETS := node_modules/.installed
$(ASSETS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(ASSETS)
assets: $(ASSETS)

# Debian's chromium for the browser tests (Playwright drives it; never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -q && \
		apt-get install -y -q --no-install-recommends chromium; }

run: $(STAMP) $(ASSETS)
	$(BIN)/flowlane demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

# The IMAP server tests/durable/test_imap_in.py starts (Debian's dovecot; the tests run it
# on free loopback ports in a folder of their own).
dovecot:
	@command -v dovecot >/dev/null 2>&1 || { apt-get update -q && \
		apt-get install -y -q --no-install-recommends dovecot-imapd openssl; }

pytest: $(STAMP) $(ASSETS) dovecot chromium
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=term:skip-covered

test: lint typecheck imports pytest

# The BPMN conformance table docs/CONFORMANCE.md, from the corpus in ../shared/conformance (or
# $FLOWLANE_CONFORMANCE); tests/conformance/test_table.py fails when the table is stale.
conformance: $(STAMP)
	$(BIN)/python tools/conformance.py

# Pictures of the main pages for the README (docs/screenshots/), from the demo account.
screenshots: $(STAMP) $(ASSETS) chromium
	$(BIN)/python tools/screenshots.py

BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q -e . 'SpiffWorkflow>=3,<4'
	touch $(BENCH_VENV)/.installed

bench: $(BENCH_VENV)/.installed $(STAMP)
	$(BENCH_VENV)/bin/python bench/engine.py
	$(BIN)/python bench/durable.py
	$(BIN)/python bench/launch.py
	$(BIN)/python bench/tasks.py
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage
