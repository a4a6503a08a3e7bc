# The two commands a newcomer runs: `make run` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench bench-service clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

run: install ## Serve imgserve on the embedded default at http://localhost:8888.
	$(BIN)/imgserve up

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
