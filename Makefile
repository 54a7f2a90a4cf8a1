# The two commands of the README: `make run` and `make test`. Both install what they need.
# `make image` builds the container image (the wheelhouse on this host, then the image on
# BASE_IMAGE); `make image-base` makes a Debian base with debootstrap where no registry is reachable.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= artifacts
# Test files run in this many processes (pytest-xdist, one file per process at a time): most
# tests wait on calls, so three share two cores well; each has its own RTP lane.
TEST_WORKERS ?= 3
BASE_IMAGE ?= python:3.11-slim-bookworm
IMAGE ?= sip-harness
BUILD_NETWORK ?=

.PHONY: run test bench setup sdks clean image image-base

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
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

bench: setup
	$(BIN)/python bench/run_all.py

image:
	$(PYTHON) scripts/build_image.py image --base $(BASE_IMAGE) --tag $(IMAGE) $(if $(BUILD_NETWORK),--network $(BUILD_NETWORK))

image-base:
	$(PYTHON) scripts/build_image.py base

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build
