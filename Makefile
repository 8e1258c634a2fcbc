# The two commands of the README. Both create .venv and install the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Apache Airflow gets its own environment: the project's does not carry it.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
LINTED := src tests benchmarks tests_airflow deploy
export KEDRO_DISABLE_TELEMETRY := 1

.PHONY: install run test lint test-airflow dags

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/kedro run --pipeline=full_alignment

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test: lint
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-airflow

# The Airflow environment: the project plus Apache Airflow 3 and pytest, built on first use.
$(AIRFLOW_BIN)/python:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install --quiet --upgrade pip

$(AIRFLOW_VENV)/.installed: pyproject.toml tests_airflow/requirements.txt | $(AIRFLOW_BIN)/python
	$(AIRFLOW_BIN)/python -m pip install --quiet -e . -r tests_airflow/requirements.txt
	touch $@

# The generated DAGs import in Airflow, match the pipelines, match a fresh `make dags`, and run.
test-airflow: $(AIRFLOW_VENV)/.installed
	$(AIRFLOW_BIN)/python -m pytest tests_airflow

# Regenerate airflow_dags/ (one DAG per pipeline) from deploy/airflow/dag_template.j2.
dags: install
	$(BIN)/python deploy/airflow/create_dags.py
