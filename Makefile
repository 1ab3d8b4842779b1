# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv (once), installs aekit with its dependencies, then runs.
# TORCH pins the CPU-friendly wheel; override it on a GPU machine, e.g. `make test TORCH=torch==2.11.0`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test install bench

$(BIN)/aekit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[test]"
	touch $(BIN)/aekit

install: $(BIN)/aekit

demo: install
	$(BIN)/aekit demo --out demo-report

test: install
	$(BIN)/ruff check src tests benches
	$(BIN)/ruff format --check src tests benches
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benches/bench_train.py
