# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= artifacts

.PHONY: run test bench setup sdks clean

$(STAMP): pyproject.toml scripts/setup-system.sh
	bash scripts/setup-system.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The AWS SDKs Lambda's runtimes bundle, in $(VENV)/lambda-sdks (idempotent: quick when present).
sdks: $(STAMP)
	$(BIN)/python -m harness.sma.bundled_sdks

setup: $(STAMP) sdks

run: setup
	$(BIN)/sip-harness run sip_profiles --out $(OUT)

test: setup
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
