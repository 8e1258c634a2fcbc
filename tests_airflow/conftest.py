"""Airflow tests: real Apache Airflow 3 in its own virtual environment (`make test-airflow`).

They live outside `tests/` because the project's own environment has no Airflow. Airflow reads
its home and configuration when first imported, so both are set here, before any test module
imports it: a throwaway home, its own SQLite database, and the committed DAG folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "airflow_dags"
TEMPLATE = REPO_ROOT / "deploy" / "airflow" / "dag_template.j2"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="alignment-stages-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
)


def registered_pipelines() -> dict:
    """The project's pipelines, except `__default__` (full_alignment under another name)."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(REPO_ROOT)
    return {name: pipelines[name] for name in sorted(pipelines) if name != "__default__"}


@pytest.fixture(scope="session")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER)
