# The two commands a newcomer runs: `make run` and `make test`. Each does its own set-up.
# `make run` installs only what the service needs; `make install` (for test and lint) adds
# the test extras.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SERVICE_STAMP := $(VENV)/.installed-service
PORT   ?=

.PHONY: install install-service run test lint bench bench-service clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(SERVICE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(SERVICE_STAMP) $@

install-service: $(SERVICE_STAMP)

install: $(STAMP)

run: install-service ## Serve imgserve on the embedded default at http://localhost:8888 (PORT=9000: there).
	$(BIN)/imgserve up$(if $(PORT), --port $(PORT))

test: install ## Run the whole test suite (starts its own redis-server).
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(VENV)/.installed-bench: pyproject.toml | $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.installed-bench ## Pipeline benchmark: imgserve vs naive OpenCV, Pillow, pyvips, codec floor.
	$(BIN)/python -m benchmarks.pipeline

bench-service: $(VENV)/.installed-bench ## Service benchmark: throughput and scaling beside a direct pool, memory.
	$(BIN)/python -m benchmarks.service

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .imgserve
