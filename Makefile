# replicast — the ways in. Each target creates .venv and installs the project if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# models `make train` backtests (~100 s on 2 cores); the ensemble is left out
# (`make train TRAIN_MODELS="lightgbm ets"`; empty = forecast.models of the settings)
TRAIN_MODELS ?= lightgbm prophet ets seasonal_naive_day seasonal_naive_week

.PHONY: help install train test test-fast lint serve mlflow-ui bench simulate-sample clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install replicast with its dev tools

train: $(STAMP)  ## sample fleet -> lake -> train + backtest -> MLflow registry -> forecasts
	$(BIN)/replicast train --ingest-sample $(TRAIN_MODELS:%=--models %)

test: $(STAMP)  ## the whole test suite (integration tests included)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## unit tests only
	$(BIN)/python -m pytest -q -m "not slow and not integration"

lint: $(STAMP)  ## ruff (lint + format) and mypy (strict on forecasting/ and features/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

serve: $(STAMP)  ## the HTTP API on 127.0.0.1:8000 (docs at /docs)
	$(BIN)/replicast serve

mlflow-ui: $(STAMP)  ## the MLflow UI on the embedded SQLite store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath var)/mlflow.db --port 5000

bench: $(STAMP)  ## every benchmark, JSON figures under bench/out/
	mkdir -p bench/out
	for b in bench/*.py; do $(BIN)/python $$b --json bench/out/$$(basename $$b .py).json || exit 1; done

simulate-sample: $(STAMP)  ## regenerate data/sample/ (deterministic)
	$(BIN)/replicast simulate --sample --out data/sample

clean:  ## remove the local lake, MLflow store and caches (not .venv)
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
