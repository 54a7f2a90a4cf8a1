# The two commands of the README: `make run` and `make test`. Both install what they need.
# `make image` builds the container image (the wheelhouse on this host, then the image on
# BASE_IMAGE); `make image-base` makes a Debian base with debootstrap where no registry is reachable.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= artifacts
BASE_IMAGE ?= python:3.11-slim-bookworm
IMAGE ?= sip-harness
BUILD_NETWORK ?=

.PHONY: run test bench setup clean image image-base

$(STAMP): pyproject.toml scripts/setup-system.sh
	bash scripts/setup-system.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/sip-harness run sip_profiles --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

image:
	$(PYTHON) scripts/build_image.py image --base $(BASE_IMAGE) --tag $(IMAGE) $(if $(BUILD_NETWORK),--network $(BUILD_NETWORK))

image-base:
	$(PYTHON) scripts/build_image.py base

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build
