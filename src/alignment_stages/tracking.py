"""Experiment tracking with MLflow, as plain functions: where a run logs, and what it logs.

`alignment_stages.mlflow_hook` applies these to a Kedro run through kedro-mlflow (docs/tracking.md).
The training code calls `log_update_metrics` and `trainer_reporting`, which do nothing while no
MLflow run is active, so a run with tracking off, a unit test or a benchmark logs nothing.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric, Run
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

# The Kedro version of the run, as a tag: every task of one Airflow DAG run carries the same one
# (alignment_stages.run_identity), and the tasks find their shared MLflow run by it.
RUN_VERSION_TAG = "kedro_run_version"
# MLflow refuses to change a logged parameter. A task of that version rerun with other values
# (a retry after a config fix) logs into a new run of the next generation, tagged with the same
# version and with the run it replaces; later tasks join the newest generation.
GENERATION_TAG = "alignment_stages.run_generation"
REPLACES_TAG = "alignment_stages.replaces_run"
# Set for a process started by `accelerate launch`, so its main process logs into the Kedro
# process's run. Not MLFLOW_RUN_ID: HF's MLflowCallback would resume that run and end it.
PARENT_RUN_VARIABLE = "ALIGNMENT_STAGES_MLFLOW_RUN_ID"
# mlflow 3.17 refuses the file store (./mlruns as plain folders); a local store is sqlite.
DATABASE_SCHEMES = {"sqlite", "postgresql", "mysql", "mssql"}
SERVER_SCHEMES = {"http", "https"}
OTHER_SCHEMES = {"databricks", "databricks-uc"}
SERVER_PROBE_SECONDS = 5.0


class TrackingConfigError(ValueError):
    """`mlflow.yml` names a switch or a tracking URI that cannot work."""


def split_switch(conf: Mapping[str, Any], where: str) -> tuple[bool, dict[str, Any]]:
    """(`enabled`, the rest): the project's one switch, and what kedro-mlflow validates itself."""
    rest = dict(conf)
    enabled = rest.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise TrackingConfigError(f"{where}: enabled must be true or false, got {enabled!r}")
    return enabled, rest


def resolve_tracking_uri(uri: str | None, project_path: Path, where: str) -> str:
    """The tracking URI to hand to MLflow, refused if MLflow 3 cannot track to it. No I/O.

    A relative sqlite path is read from the project root (MLflow would read it from the working
    directory).
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    scheme = _scheme(uri)
    if scheme == "sqlite":
        path = Path(uri.split("://", 1)[1].removeprefix("/"))
        if not uri.startswith("sqlite:////"):  # three slashes: relative to the project
            path = project_path / path
        return f"sqlite:///{path.resolve()}"
    if scheme in DATABASE_SCHEMES | SERVER_SCHEMES | OTHER_SCHEMES or uri in OTHER_SCHEMES:
        return uri
    raise TrackingConfigError(
        f"{where}: server.mlflow_tracking_uri={uri!r} is not a tracking store MLflow 3 can use. "
        "Give sqlite:///mlruns/mlflow.db (a local store under the project), an http(s):// "
        f"server, or a database URI ({', '.join(sorted(DATABASE_SCHEMES))}); a plain folder is "
        "MLflow's retired file store. Or set enabled: false."
    )


def prepare_store(uri: str, where: str) -> None:
    """Before a pipeline's first node: a local sqlite store's folder is created, and an http(s)
    server must answer MLflow's `/health` now, not after the first training stage, when
    MLflow's retries would stall the run for minutes."""
    scheme = _scheme(uri)
    if scheme == "sqlite":
        database = Path(uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        _check_writable(database, where)
    elif scheme in SERVER_SCHEMES:
        _check_server(uri, where)


def _check_writable(database: Path, where: str) -> None:
    """MLflow reports a read-only store as "attempt to write a readonly database", with no
    path, once the run has started. A write that is rolled back finds it first."""
    try:
        if database.exists():
            with closing(sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=30)) as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("CREATE TABLE alignment_stages_write_probe (x)")
                db.rollback()
        else:  # MLflow will create it: the folder must take a new file
            probe = database.parent / f".{database.name}.write-probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
    except (sqlite3.Error, OSError) as error:
        if "locked" in str(error):  # busy with another task's writes, not unwritable
            return
        raise TrackingConfigError(
            f"{where}: the MLflow store {database} cannot be written ({error}). Make it and its "
            f"folder writable by this user (chmod u+w {database} {database.parent}), point "
            "server.mlflow_tracking_uri at a writable store, or set enabled: false."
        ) from error


def _scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


def _check_server(uri: str, where: str) -> None:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_PROBE_SECONDS):
            pass
    except (urllib.error.URLError, OSError) as error:
        raise TrackingConfigError(
            f"{where}: no MLflow server answers at server.mlflow_tracking_uri={uri!r} "
            f"({getattr(error, 'reason', error)}). Start one (`mlflow server`), fix the URI, "
            "or set enabled: false."
        ) from error


def find_or_create_run(
    client: MlflowClient,
    experiment_id: str,
    run_version: str,
    run_name: str,
    params: Mapping[str, str] | None = None,
) -> str:
    """The id of the run tagged with `run_version`, created by the first task that asks.

    Several runs carry one version when a task was rerun with other parameter values
    (`params`, as they will be logged): those go into a new run of the next generation, since
    MLflow cannot change a logged value, and the newest generation is the one joined. Two tasks
    that create the same generation at once both keep its oldest run; the other is deleted.
    """
    found = _runs_tagged(client, experiment_id, run_version)
    generation, tags = 0, {RUN_VERSION_TAG: run_version}
    if found:
        current = found[0]
        changed = changed_params(current.data.params, params or {})
        if not changed:
            return current.info.run_id
        generation = _generation(current) + 1
        tags[REPLACES_TAG] = current.info.run_id
        logger.warning(
            "MLflow run %s of run version %s logged other values for %s; this run logs into a "
            "new MLflow run with the same %s tag (generation %d), since MLflow cannot change a "
            "logged parameter",
            current.info.run_id, run_version, ", ".join(changed), RUN_VERSION_TAG, generation,
        )  # fmt: skip
    tags[GENERATION_TAG] = str(generation)
    created = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
    kept = _runs_tagged(client, experiment_id, run_version)[0].info.run_id
    if kept != created:
        client.delete_run(created)
    return kept


def changed_params(logged: Mapping[str, str], params: Mapping[str, str]) -> list[str]:
    """Keys logged with another value than the one about to be logged, as `key (old → new)`."""
    return [f"{key} ({logged[key]} → {value})" for key, value in sorted(params.items())
            if key in logged and logged[key] != value]  # fmt: skip


def _generation(run: Run) -> int:
    return int(run.data.tags.get(GENERATION_TAG, "0"))


def _runs_tagged(client: MlflowClient, experiment_id: str, run_version: str) -> list[Run]:
    """Newest generation first; within one, the oldest run first."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.{RUN_VERSION_TAG} = '{run_version}'"
    )
    return sorted(runs, key=lambda r: (-_generation(r), r.info.start_time, r.info.run_id))


def active_run_id() -> str | None:
    """The run this process logs into: the active one, or the Kedro process's run when this is
    a process `accelerate launch` started."""
    run = mlflow.active_run()
    return run.info.run_id if run else os.environ.get(PARENT_RUN_VARIABLE) or None


def log_update_metrics(step: int, stats: Mapping[str, float]) -> None:
    """One PPO update's statistics, live, at `step` (the update's number in the run)."""
    run_id = active_run_id()
    if run_id is None:
        return
    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, step) for key, value in stats.items()
               if _is_number(value)]  # fmt: skip
    MlflowClient().log_batch(run_id, metrics=metrics, synchronous=True)


def launch_environment() -> dict[str, str]:
    """Variables that let a process `accelerate launch` starts log into this process's run."""
    run = mlflow.active_run()
    if run is None:
        return {}
    return {PARENT_RUN_VARIABLE: run.info.run_id, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}


@contextmanager
def parent_run(main_process: bool) -> Iterator[None]:
    """In a launched process, the Kedro process's run is active on the main process (the live
    PPO metrics and the trainers' nested runs go there); elsewhere this does nothing. It is
    left RUNNING: the Kedro process ends it with the pipeline."""
    run_id = os.environ.get(PARENT_RUN_VARIABLE)
    if not (run_id and main_process) or mlflow.active_run():
        yield
        return
    mlflow.start_run(run_id=run_id)
    try:
        yield
    finally:
        mlflow.end_run(status="RUNNING")


def trainer_reporting(run_name: str) -> dict[str, Any]:
    """`report_to` and `run_name` of a TRL config: HF's MLflow callback while a run is active
    (each trainer in a nested run of its own, `MLFLOW_NESTED_RUN`), nothing otherwise."""
    return {"report_to": "mlflow" if active_run_id() else "none", "run_name": run_name}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- what a saved output logs -----------------------------------------------------------------


@dataclass
class Outcome:
    """Metrics as (key, value, step) and tags, from one saved output."""

    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def round_outcome(ppo_history: pd.DataFrame) -> Outcome:
    """Every numeric column of `ppo_history` as `round/<column>`, with step = round (round 0 is
    the starting policy). The per-update `ppo/…` keys are the round means here."""
    metrics = []
    for row in ppo_history.to_dict("records"):
        step = int(row["round"])
        for column, value in row.items():
            value = float(value) if isinstance(value, bool) else value
            if column != "round" and _is_number(value):
                metrics.append((f"round/{column}", float(value), step))
    return Outcome(metrics)


def gate_outcome(gate_decision: Mapping[str, Any]) -> Outcome:
    """`gate/<signal>` with its interval, threshold and trigger, the selected round, and the
    decision and each verdict as tags (docs/metrics.md, "Gate")."""
    metrics = [("gate/selected_round", float(gate_decision["selected_round"]), 0)]
    tags = {"gate/decision": str(gate_decision["decision"])}
    for name, signal in gate_decision["signals"].items():
        metrics.append((f"gate/{name}", signal["value"], 0))
        for part in ("low", "high", "threshold", "triggered"):
            metrics.append((f"gate/{name}/{part}", float(signal[part]), 0))
        tags[f"gate/{name}/verdict"] = str(signal["verdict"])
    return Outcome([m for m in metrics if _is_number(m[1])], tags)


def stage_outcome(stage_comparison: pd.DataFrame) -> Outcome:
    """`eval/<policy>/<column>` for every numeric column of `stage_comparison`."""
    metrics = [
        (f"eval/{row['policy']}/{column}", float(value), 0)
        for row in stage_comparison.to_dict("records")
        for column, value in row.items()
        if column != "policy" and _is_number(value)
    ]
    return Outcome(metrics)


def reward_outcome(reward_model_metrics: Mapping[str, Any]) -> Outcome:
    """The `reward_model/…` keys of docs/metrics.md."""
    metrics = [
        ("reward_model/accuracy", reward_model_metrics["accuracy"], 0),
        ("reward_model/margin_mean", reward_model_metrics["margin"]["mean"], 0),
        ("reward_model/chosen_mean", reward_model_metrics["score_chosen"]["mean"], 0),
        ("reward_model/chosen_std", reward_model_metrics["score_chosen"]["std"], 0),
    ]
    return Outcome([m for m in metrics if _is_number(m[1])])


def log_outcome(run_id: str, outcome: Outcome) -> None:
    now = int(time.time() * 1000)
    client = MlflowClient()
    metrics = [Metric(key, value, now, step) for key, value, step in outcome.metrics]
    # MLflow takes at most 1,000 metrics per batch.
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000], synchronous=True)
    for key, value in outcome.tags.items():
        client.set_tag(run_id, key, value)


def log_artifact_data(run_id: str, artifact_file: str, data: Any) -> None:
    """A report (text), a JSON output (dict) or a plotly chart (as interactive HTML) as an
    artifact, written from the saved object, so a remote catalog path needs no download."""
    client = MlflowClient()
    if isinstance(data, str):
        client.log_text(run_id, data, artifact_file)
    elif isinstance(data, Mapping):
        client.log_dict(run_id, dict(data), artifact_file)
    else:
        client.log_figure(run_id, data, artifact_file)
