"""MLflow tracking of a real run, read back from the local store with MLflow's own client: the
smoke `full_alignment` run (tracking on), and what the switch and a bad mlflow.yml do."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.project import settings as kedro_settings
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from alignment_stages.curation.curate import CurationQualityError
from alignment_stages.demo.generate import write_demo_files
from alignment_stages.run_identity import RUN_VERSION_VARIABLE
from alignment_stages.tracking import (
    GENERATION_TAG,
    REPLACES_TAG,
    RUN_VERSION_TAG,
    TrackingConfigError,
)
from tests.conftest import make_project, set_tracking

# docs/metrics.md's per-update PPO keys (the smoke run uses GAE, so the critic's are there too).
PPO_UPDATE_KEYS = (
    "ppo/reward", "ppo/score", "ppo/judge_penalty", "ppo/kl", "ppo/non_score_reward",
    "ppo/kl_coef", "ppo/episodes", "ppo/entropy", "ppo/policy_grad_norm", "ppo/value_grad_norm",
    "ppo/approx_kl", "ppo/clipfrac", "ppo/policy_loss", "ppo/value_loss", "ppo/value_clipfrac",
    "ppo/explained_variance", "ppo/response_length", "ppo/eos_rate", "ppo/advantage_mean",
    "ppo/return_mean",
)  # fmt: skip


def saved(project, relative: str, run) -> Path:
    """A dataset's file at the version this MLflow run carries. Other tests share the project
    and write newer versions, so "latest" may be theirs."""
    return project / relative / run.data.tags[RUN_VERSION_TAG] / Path(relative).name


@pytest.fixture(scope="module")
def tracked_project(tmp_path_factory) -> Path:
    """The smoke `full_alignment`, tracking on, in a project of its own: the shared pipeline
    project also hosts other tests' sessions (stage probes, reruns), each its own MLflow run."""
    project = make_project(tmp_path_factory.mktemp("tracked"), tracking=True)
    write_demo_files(project / "data" / "01_raw" / "preferences")
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke") as session:
        session.run(pipeline_names=["full_alignment"])
    return project


@pytest.fixture(scope="module")
def store(tracked_project):
    client = MlflowClient(f"sqlite:///{tracked_project}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("alignment_stages")
    runs = client.search_runs([experiment.experiment_id])
    # The project is shared: the stage-probe tests run `stage_probe` sessions in it too, each
    # its own MLflow run. The one `kedro run --pipeline=full_alignment` must be exactly one run.
    kedro_runs = [
        r
        for r in runs
        if "mlflow.parentRunId" not in r.data.tags and r.info.run_name == "full_alignment"
    ]
    assert len(kedro_runs) == 1, [r.info.run_name for r in runs]
    children = [
        r for r in runs if r.data.tags.get("mlflow.parentRunId") == kedro_runs[0].info.run_id
    ]
    return client, kedro_runs[0], children


def test_one_finished_run_carries_the_kedro_run_version(store, tracked_project):
    _, run, _ = store
    # The tag names the version folder the run saved its outputs under.
    for relative in (
        "data/07_model_output/ppo_history.parquet",
        "data/08_reporting/gate_decision.json",
    ):
        assert saved(tracked_project, relative, run).is_file(), relative
    assert run.info.run_name == "full_alignment" and run.info.status == "FINISHED"


def test_every_pipelines_validated_parameters_are_logged_key_by_key(store):
    params = store[1].data.params
    assert params["ppo_shaping.ppo.kl_coef"] == "0.05"  # conf/smoke over conf/base
    assert params["ppo_shaping.updates_per_round"] == "4"
    assert params["ppo_shaping.ppo.advantage_estimator"] == "gae"  # a pydantic default
    for block in ("data_curation", "base_model", "reward_model", "stability_gate",
                  "dpo_refinement", "evaluation", "behaviour_judges"):  # fmt: skip
        assert any(name.startswith(f"{block}.") for name in params), block


def test_ppo_logs_every_update_with_step_equal_to_the_update(store, tracked_project):
    client, run, _ = store
    history = pd.read_parquet(
        saved(tracked_project, "data/07_model_output/ppo_history.parquet", run)
    )
    for key in PPO_UPDATE_KEYS:
        points = client.get_metric_history(run.info.run_id, key)
        assert [p.step for p in points] == list(range(1, 9)), key  # 2 rounds × 4 updates
    kl = [p.value for p in client.get_metric_history(run.info.run_id, "ppo/kl")]
    assert history.loc[1, "ppo/kl"] == pytest.approx(sum(kl[:4]) / 4)
    assert history.loc[2, "ppo/kl"] == pytest.approx(sum(kl[4:]) / 4)


def test_rounds_gate_and_stage_comparison_are_metrics(store, tracked_project):
    client, run, _ = store
    run_id = run.info.run_id
    history = pd.read_parquet(
        saved(tracked_project, "data/07_model_output/ppo_history.parquet", run)
    )
    rounds = client.get_metric_history(run_id, "round/reward_mean")
    assert [(p.step, p.value) for p in rounds] == list(
        zip(history["round"], history["reward_mean"], strict=True)
    )
    gate = json.loads(
        saved(tracked_project, "data/08_reporting/gate_decision.json", run).read_text()
    )
    assert run.data.tags["gate/decision"] == gate["decision"]
    for name, signal in gate["signals"].items():
        assert run.data.metrics[f"gate/{name}"] == pytest.approx(signal["value"])
        assert run.data.tags[f"gate/{name}/verdict"] == signal["verdict"]
    table = pd.read_parquet(
        saved(tracked_project, "data/08_reporting/stage_comparison.parquet", run)
    )
    for row in table.to_dict("records"):
        metric = run.data.metrics[f"eval/{row['policy']}/violation_rate"]
        assert metric == pytest.approx(row["violation_rate"])


def test_reward_model_and_dpo_curves_are_nested_runs_of_trl(store):
    client, run, children = store
    names = {child.info.run_name: child for child in children}
    assert {"reward_model", "dpo_refinement"} <= set(names)
    for name in ("reward_model", "dpo_refinement"):
        child = names[name]
        assert child.data.tags["mlflow.parentRunId"] == run.info.run_id
        assert "train_loss" in child.data.metrics, name
        assert client.get_metric_history(child.info.run_id, "loss"), name


def test_reports_and_charts_are_artifacts(store, tracked_project, tmp_path):
    client, run, _ = store
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/gate_report.md", "reports/evaluation_report.md", "reports/gate_decision.json",
            "reports/curation_report.json", "reports/reward_model_metrics.json"} <= reports  # fmt: skip
    charts = {a.path for a in client.list_artifacts(run.info.run_id, "charts")}
    assert {"charts/stage_metrics_chart.html", "charts/ppo_rounds_chart.html"} <= charts
    copy = client.download_artifacts(run.info.run_id, "reports/gate_report.md", str(tmp_path))
    report = saved(tracked_project, "data/08_reporting/gate_report.md", run)
    assert open(copy, encoding="utf-8").read() == report.read_text(encoding="utf-8")


def _curation_project(tmp_path, **tracking):
    project = make_project(tmp_path, tracking=True)
    write_demo_files(project / "data" / "01_raw" / "preferences")
    set_tracking(project, **tracking)
    bootstrap_project(project)
    return project


def _run_curation(project, params=None):
    with kedro_settings.SESSION_CLASS.create(project_path=project, env="test", runtime_params=params) as session:  # fmt: skip
        session.run(pipeline_names=["data_curation"])


def test_a_session_that_runs_no_pipeline_writes_no_store(tmp_path):
    """`kedro airflow create`, `kedro viz` and notebooks open a context and run nothing."""
    project = _curation_project(tmp_path)
    with KedroSession.create(project_path=project, env="test") as session:
        assert session.load_context().mlflow.server.mlflow_tracking_uri.endswith("mlflow.db")
    assert not (project / "mlruns").exists()


def test_the_switch_off_runs_the_pipeline_and_writes_no_store(tmp_path):
    project = _curation_project(tmp_path, enabled=False)
    _run_curation(project)
    assert (project / "data" / "08_reporting" / "curation_report.json").is_dir()
    assert not (project / "mlruns").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"server": {"mlflow_tracking_uri": "mlruns"}}, "retired file store"),
        ({"server": {"mlflow_tracking_uri": "http://127.0.0.1:9"}}, "no MLflow server answers"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"trackng": {}}, "trackng"),
    ],
)
def test_a_bad_mlflow_yml_stops_the_run_before_any_node(tmp_path, settings, message):
    project = _curation_project(tmp_path, **settings)
    with pytest.raises(TrackingConfigError, match=message):
        _run_curation(project)
    assert not (project / "data" / "08_reporting" / "curation_report.json").exists()


def test_a_pinned_rerun_after_the_fix_the_error_names_logs_into_a_new_run(tmp_path, monkeypatch):
    """A task of a pinned run fails on max_bad_fraction, and is rerun with the raised value the
    error asks for (by hand, or an Airflow task cleared after the config fix). MLflow cannot
    change the logged value: the rerun logs into a new run tagged with the same run version."""
    version = "2002-01-01T00.00.00.000Z"
    project = _curation_project(tmp_path)
    monkeypatch.setenv(RUN_VERSION_VARIABLE, version)
    with pytest.raises(CurationQualityError, match="raise data_curation.max_bad_fraction"):
        _run_curation(project, {"data_curation": {"max_bad_fraction": 0.001}})
    _run_curation(project, {"data_curation": {"max_bad_fraction": 0.2}})
    _run_curation(project, {"data_curation": {"max_bad_fraction": 0.2}})  # joins, as retries do

    client = MlflowClient(f"sqlite:///{project}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("alignment_stages").experiment_id
    runs = client.search_runs([experiment], filter_string=f"tags.{RUN_VERSION_TAG} = '{version}'")
    failed, fixed = sorted(runs, key=lambda r: r.data.tags[GENERATION_TAG])
    assert failed.info.status == "FAILED" and fixed.info.status == "FINISHED"
    assert failed.data.params["data_curation.max_bad_fraction"] == "0.001"
    assert fixed.data.params["data_curation.max_bad_fraction"] == "0.2"
    assert fixed.data.tags[REPLACES_TAG] == failed.info.run_id
    assert (project / "data" / "08_reporting" / "curation_report.json" / version).is_dir()


def test_sessions_of_one_process_each_get_their_own_run(tmp_path):
    """kedro-mlflow left the run open after a session (MLflow 3 stacks each node's reopening),
    so a notebook's second session logged into the first one's run."""
    project = _curation_project(tmp_path)
    _run_curation(project)
    _run_curation(project, {"data_curation": {"max_bad_fraction": 0.3}})
    client = MlflowClient(f"sqlite:///{project}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("alignment_stages").experiment_id
    values = sorted(r.data.params["data_curation.max_bad_fraction"] for r in client.search_runs([experiment]))  # fmt: skip
    assert values == ["0.2", "0.3"]
