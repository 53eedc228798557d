# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp
BIN    := $(VENV)/bin

.PHONY: demo test bench venv contracts clean

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

test: $(STAMP) $(NODE_STAMP)
	sh scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python bench/bench_margin.py
	$(BIN)/python bench/bench_ledger.py
	$(BIN)/python bench/bench_collateral.py
	$(BIN)/python bench/bench_workflow.py
	$(BIN)/python bench/weekday_margin.py
	$(BIN)/python bench/procyclicality.py
	$(BIN)/python bench/bench_stress.py
	$(BIN)/python bench/bench_default.py

contracts: $(STAMP)
	$(BIN)/python -m tokenclear.ledger.build

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
