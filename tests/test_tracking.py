"""The tracking rules without Kedro: the switch, the URI check, one run per run version, and
what each saved output logs. The store is a throwaway sqlite file under tmp_path."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from alignment_stages.launcher import free_port
from alignment_stages.tracking import (
    GENERATION_TAG,
    REPLACES_TAG,
    RUN_VERSION_TAG,
    TrackingConfigError,
    find_or_create_run,
    gate_outcome,
    log_update_metrics,
    prepare_store,
    resolve_tracking_uri,
    round_outcome,
    split_switch,
    stage_outcome,
    trainer_reporting,
)

VERSION = "2026-11-23T23.30.46.143Z"


def test_the_switch_is_a_boolean_and_is_taken_out_of_what_kedro_mlflow_reads():
    assert split_switch({"enabled": False, "server": {}}, "mlflow.yml") == (False, {"server": {}})
    assert split_switch({}, "mlflow.yml") == (True, {})
    with pytest.raises(TrackingConfigError, match="enabled must be true or false, got 'no'"):
        split_switch({"enabled": "no"}, "mlflow.yml")


def test_a_relative_sqlite_store_lies_under_the_project(tmp_path):
    uri = resolve_tracking_uri("sqlite:///mlruns/mlflow.db", tmp_path, "mlflow.yml")
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert not (tmp_path / "mlruns").exists()  # written when a pipeline runs, not before
    prepare_store(uri, "mlflow.yml")
    assert (tmp_path / "mlruns").is_dir()
    absolute = f"sqlite:///{tmp_path}/elsewhere/mlflow.db"
    assert resolve_tracking_uri(absolute, Path("/nowhere"), "mlflow.yml") == absolute


@pytest.mark.parametrize("uri", ["mlruns", "file:///tmp/mlruns", "ftp://host/runs", ""])
def test_a_uri_mlflow_cannot_track_to_is_refused_naming_the_key(tmp_path, uri, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingConfigError, match="server.mlflow_tracking_uri=.*enabled: false"):
        resolve_tracking_uri(uri, tmp_path, "mlflow.yml")


def test_a_server_that_does_not_answer_is_refused_at_once(tmp_path):
    uri = resolve_tracking_uri(f"http://127.0.0.1:{free_port()}", tmp_path, "mlflow.yml")
    started = time.perf_counter()
    with pytest.raises(TrackingConfigError, match="no MLflow server answers at"):
        prepare_store(uri, "mlflow.yml")
    assert time.perf_counter() - started < 10


def test_without_an_active_run_nothing_is_logged_and_trainers_report_nowhere(monkeypatch):
    monkeypatch.delenv("ALIGNMENT_STAGES_MLFLOW_RUN_ID", raising=False)
    assert mlflow.active_run() is None
    log_update_metrics(1, {"ppo/kl": 0.1})  # no run, no store: a no-op, not an error
    assert trainer_reporting("dpo_refinement") == {
        "report_to": "none",
        "run_name": "dpo_refinement",
    }


def test_tasks_of_one_run_version_share_one_run_and_updates_log_live(tmp_path):
    uri = resolve_tracking_uri("sqlite:///mlruns/mlflow.db", tmp_path, "t")
    prepare_store(uri, "t")
    client = MlflowClient(uri)
    experiment = client.create_experiment("x", artifact_location=(tmp_path / "a").as_uri())
    first = find_or_create_run(client, experiment, VERSION, "full_alignment")
    assert find_or_create_run(client, experiment, VERSION, "full_alignment") == first
    other = find_or_create_run(client, experiment, "2026-11-24T00.00.00.000Z", "full_alignment")
    assert other != first
    assert client.get_run(first).data.tags[RUN_VERSION_TAG] == VERSION

    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=first):
        for step in (1, 2, 3):
            log_update_metrics(step, {"ppo/kl": step / 10, "ppo/note": "not a number"})
        assert trainer_reporting("reward_model")["report_to"] == "mlflow"
    history = client.get_metric_history(first, "ppo/kl")
    assert [(m.step, m.value) for m in history] == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert "ppo/note" not in client.get_run(first).data.metrics


def test_round_gate_and_stage_outcomes_name_their_keys():
    history = pd.DataFrame(
        {"round": [0, 1], "reward_mean": [0.1, 0.4], "healthy": [True, True],
         "checkpoint": ["base_policy", "round_001"], "ppo/kl": [math.nan, 0.3]}
    )  # fmt: skip
    assert sorted(round_outcome(history).metrics) == [
        ("round/healthy", 1.0, 0), ("round/healthy", 1.0, 1), ("round/ppo/kl", 0.3, 1),
        ("round/reward_mean", 0.1, 0), ("round/reward_mean", 0.4, 1),
    ]  # fmt: skip
    signal = {"value": 0.2, "low": 0.1, "high": 0.3, "threshold": 0.25, "triggered": False,
              "verdict": "settled", "confidence": 0.95}  # fmt: skip
    gate = gate_outcome(
        {"decision": "switch_to_refinement", "selected_round": 2, "signals": {"chaos_rate": signal}}
    )
    assert ("gate/chaos_rate", 0.2, 0) in gate.metrics
    assert ("gate/chaos_rate/triggered", 0.0, 0) in gate.metrics
    assert ("gate/selected_round", 2.0, 0) in gate.metrics
    assert gate.tags == {
        "gate/decision": "switch_to_refinement",
        "gate/chaos_rate/verdict": "settled",
    }
    table = pd.DataFrame({"policy": ["base", "ppo"], "violation_rate": [0.5, 0.2]})
    assert stage_outcome(table).metrics == [
        ("eval/base/violation_rate", 0.5, 0),
        ("eval/ppo/violation_rate", 0.2, 0),
    ]


def test_a_task_rerun_with_other_parameter_values_gets_a_new_run_of_its_version(tmp_path):
    uri = resolve_tracking_uri("sqlite:///mlruns/mlflow.db", tmp_path, "t")
    prepare_store(uri, "t")
    client = MlflowClient(uri)
    experiment = client.create_experiment("x", artifact_location=(tmp_path / "a").as_uri())
    first = find_or_create_run(client, experiment, VERSION, "curation", {"a.max": "0.1"})
    client.log_param(first, "a.max", "0.1")
    same = find_or_create_run(client, experiment, VERSION, "curation", {"a.max": "0.1", "b": "1"})
    assert same == first  # new keys and equal values join
    fixed = find_or_create_run(client, experiment, VERSION, "curation", {"a.max": "0.5"})
    assert fixed != first
    tags = client.get_run(fixed).data.tags
    assert (tags[RUN_VERSION_TAG], tags[GENERATION_TAG], tags[REPLACES_TAG]) == (
        VERSION,
        "1",
        first,
    )
    assert find_or_create_run(client, experiment, VERSION, "split", {"c": "2"}) == fixed  # newest


def _unprivileged(code: str) -> subprocess.CompletedProcess:
    """`code` in a child that file permissions apply to. Root writes a read-only file anyway;
    without its capabilities (setpriv) it is held to them, as any user is."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: read-only files are writable")
        prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    command = [*prefix, sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_read_only_store_is_refused_naming_its_path(tmp_path):
    uri = resolve_tracking_uri("sqlite:///mlruns/mlflow.db", tmp_path, "t")
    prepare_store(uri, "t")
    MlflowClient(uri).search_experiments()  # creates the store
    database = tmp_path / "mlruns" / "mlflow.db"
    database.chmod(0o444)
    child = _unprivileged(f"""
        from alignment_stages.tracking import TrackingConfigError, prepare_store
        try:
            open({str(database)!r}, "a")
        except PermissionError:
            pass
        else:
            raise SystemExit("the store is still writable: nothing to test")
        try:
            prepare_store({uri!r}, "mlflow.yml")
        except TrackingConfigError as error:
            print(error)
    """)
    assert child.returncode == 0, child.stderr[-2000:]
    assert f"the MLflow store {database} cannot be written" in child.stdout
    assert "readonly database" in child.stdout and "chmod u+w" in child.stdout
