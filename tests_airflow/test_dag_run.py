"""A real Airflow DAG run of `data_curation` on a throwaway project: one version for all tasks,
and one MLflow run for the DAG run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alignment_stages.demo.generate import write_demo_files
from alignment_stages.run_identity import version_from_datetime
from alignment_stages.tracking import RUN_VERSION_TAG
from tests.conftest import make_project


@pytest.fixture
def airflow_db():
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )


def test_every_task_of_a_dag_run_writes_the_run_version(airflow_db, dag_bag, tmp_path, monkeypatch):
    project = make_project(tmp_path, tracking=True)
    write_demo_files(project / "data" / "01_raw" / "preferences")
    monkeypatch.setenv("ALIGNMENT_STAGES_PROJECT_PATH", str(project))
    monkeypatch.setenv("KEDRO_ENV", "test")

    dag_run = dag_bag.dags["alignment_stages_data_curation"].test()

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    assert len(states) == 2  # the curation task, then the split task reading its output
    version = version_from_datetime(dag_run.run_after)
    outputs = [p for p in (project / "data").glob("0*/*") if p.suffix in (".parquet", ".json")]
    assert len(outputs) == 11  # every saved output of data_curation
    for output in outputs:
        assert [v.name for v in output.iterdir()] == [version], output.name

    # Both tasks joined one MLflow run: the first logged the curation report, the last task's
    # command is the run's (kedro-mlflow tags each task's command in turn).
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("alignment_stages").experiment_id
    runs = client.search_runs([experiment])
    assert [r.data.tags[RUN_VERSION_TAG] for r in runs] == [version]
    (run,) = runs
    assert run.data.params["data_curation.seed"] is not None
    assert "reports/curation_report.json" in {
        a.path for a in client.list_artifacts(run.info.run_id, "reports")
    }
    assert "split_curated_pairs" in run.data.tags["kedro_command"]
