# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp
BIN    := $(VENV)/bin

.PHONY: demo test bench venv contracts clean serve

NODE_STAMP := node_modules/.installed-stamp

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# anvil (foundry's dev chain) for the JSON-RPC tests, pinned in package.json / package-lock.json.
# `npm install`, not `npm ci`: the lock holds only this platform's optional binary package.
$(NODE_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/tokenclear demo

# the service on embedded defaults (a new SQLite book, the in-process EVM), replaying the SVB weekend at an hour
# a second; the API at http://127.0.0.1:8000/docs, the dashboard at http://127.0.0.1:8000/
serve: $(STAMP)
	$(BIN)/tokenclear serve --clock replay --from 2023-03-10T00:00Z --speed 3600

test: $(STAMP) $(NODE_STAMP)
	sh scripts/ensure-postgres.sh
	sh scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python bench/bench_margin.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_distributed.py
	$(BIN)/python bench/bench_account_check.py
	$(BIN)/python bench/bench_ledger.py
	$(BIN)/python bench/bench_collateral.py
	$(BIN)/python bench/bench_workflow.py
	$(BIN)/python bench/weekday_margin.py
	$(BIN)/python bench/procyclicality.py
	$(BIN)/python bench/bench_backtest.py
	$(BIN)/python bench/bench_stress.py
	$(BIN)/python bench/bench_default.py
	$(BIN)/python bench/bench_service.py

contracts: $(STAMP)
	$(BIN)/python -m tokenclear.ledger.build

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
