"""kedro-mlflow as this project runs it (docs/tracking.md); the rules are in `tracking.py`.

kedro-mlflow's own hook does most of the work: it reads `mlflow.yml`, sets up the store and the
experiment, starts one MLflow run per `kedro run`, logs the parameters of every node, and ends
the run. `TrackRunInMlflow` is that hook with what the project adds (kedro-mlflow's
auto-registration is disabled in `settings.py`, so it runs once):

- `enabled: false` in `mlflow.yml` turns all of it off: no run, and no store written;
- the settings and the tracking URI are checked before the first node, and the store is set up
  only when a pipeline runs;
- with `ALIGNMENT_STAGES_RUN_VERSION` set, every task of one Airflow DAG run joins one MLflow
  run, found by its `kedro_run_version` tag; a task rerun with other parameter values (a retry
  after a config fix) logs into a new run with the same tag, which MLflow's refusal to change a
  logged parameter would otherwise stop;
- parameters are the validated pydantic blocks, logged key by key (`ppo_shaping.ppo.kl_coef`);
- the outputs in `OUTCOMES` log their metrics and tags when they are saved, and the reports and
  charts in `ARTIFACTS` are logged from the saved object. kedro-mlflow's MlflowArtifactDataset
  would do the latter from the catalog, but it versions its inner dataset with a timestamp of
  its own, which Kedro 1.7 refuses (every dataset of a run shares one save version).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from kedro_mlflow.framework.hooks.utils import _flatten_dict
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from pydantic import BaseModel, ValidationError

from alignment_stages.run_identity import run_version_from_env
from alignment_stages.tracking import (
    RUN_VERSION_TAG,
    Outcome,
    TrackingConfigError,
    find_or_create_run,
    gate_outcome,
    log_artifact_data,
    log_outcome,
    prepare_store,
    resolve_tracking_uri,
    reward_outcome,
    round_outcome,
    split_switch,
    stage_outcome,
)

logger = logging.getLogger(__name__)

# Saved output → what it logs. They stay the tables and JSON the next stages read; a metrics
# dataset in their place would need a second output per node (and new Airflow tasks).
OUTCOMES: dict[str, Callable[[Any], Outcome]] = {
    "reward_model_metrics": reward_outcome,
    "ppo_history": round_outcome,
    "gate_decision": gate_outcome,
    "stage_comparison": stage_outcome,
}
# Saved output → its artifact in the run; every `<name>_chart` is `charts/<name>_chart.html`.
ARTIFACTS = {
    "curation_report": "reports/curation_report.json",
    "reward_model_metrics": "reports/reward_model_metrics.json",
    "gate_decision": "reports/gate_decision.json",
    "gate_report": "reports/gate_report.md",
    "evaluation_report": "reports/evaluation_report.md",
    "stage_recommendation": "reports/stage_recommendation.json",
    "stage_recommendation_report": "reports/stage_recommendation.md",
}
MLFLOW_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]


class TrackRunInMlflow(MlflowHook):
    """Registered in `settings.HOOKS`."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True

    @hook_impl
    def after_context_created(self, context) -> None:
        """Reads and checks `mlflow.yml`. The store itself is set up only when a pipeline runs,
        so `kedro airflow create`, `kedro viz` or a notebook session write nothing."""
        self.run_id, self._context = None, None  # one instance serves every session of a process
        self._where = f"mlflow.yml (env {context.env or 'local'!r} over base)"
        loader = context.config_loader
        loader.config_patterns.setdefault("mlflow", MLFLOW_PATTERNS)
        try:
            conf = loader["mlflow"]
        except MissingConfigException:
            conf = {}
        self.enabled, conf = split_switch(conf, self._where)
        self._is_mlflow_enabled = self.enabled
        if not self.enabled:
            logger.info("MLflow tracking is off (%s: enabled: false)", self._where)
            return
        server = dict(conf.get("server") or {})
        server["mlflow_tracking_uri"] = resolve_tracking_uri(
            server.get("mlflow_tracking_uri"), Path(context.project_path), self._where
        )
        self._conf = {**conf, "server": server}
        try:
            config = KedroMlflowConfig.model_validate(self._conf)
        except ValidationError as error:
            raise TrackingConfigError(f"{self._where}: {error}") from error
        # `kedro mlflow ui` reads the settings from the context, as kedro-mlflow's hook leaves them.
        context.__setattr__("mlflow", config)
        self._context = context

    def _set_up_store(self, pipeline, catalog) -> None:
        """kedro-mlflow's own setup (store, experiment, autologging off), then the DAG run's
        MLflow run when the run version is pinned."""
        prepare_store(self._conf["server"]["mlflow_tracking_uri"], self._where)
        self._context.config_loader["mlflow"] = self._conf  # what kedro-mlflow reads back
        super().after_context_created(self._context)
        self._join_dag_run(pipeline, catalog)

    def _join_dag_run(self, pipeline, catalog) -> None:
        run_version = run_version_from_env()
        if run_version is None or self._already_active_mlflow:
            return
        config = self.mlflow_config
        config.tracking.run.id = find_or_create_run(
            config.server._mlflow_client,
            config.tracking.experiment._experiment.experiment_id,
            run_version,
            run_name=config.tracking.run.name or run_version,
            params=self._params_to_log(pipeline, catalog),
        )

    def _params_to_log(self, pipeline, catalog) -> dict[str, str]:
        """The parameters this run's nodes will log, as kedro-mlflow's `before_node_run` logs
        them (long values become tags, which may change, and are left out)."""
        names = {name for node in pipeline.nodes for name in node.inputs if name.startswith("params:")}  # fmt: skip
        params = {name.removeprefix("params:"): _loggable(catalog.load(name)) for name in names}
        settings = self.mlflow_config.tracking.params.dict_params
        if settings.flatten:
            params = _flatten_dict(d=params, recursive=settings.recursive, sep=settings.sep)
        return {self.sanitize_param_name(key): str(value) for key, value in params.items()
                if len(str(value)) <= MAX_PARAM_VAL_LENGTH}  # fmt: skip

    @hook_impl
    def after_catalog_created(
        self, catalog, conf_catalog, conf_creds, parameters, save_version, load_versions
    ) -> None:
        if not self.enabled:
            switch_catalog_logging(catalog, False)
            return
        super().after_catalog_created(
            catalog, conf_catalog, conf_creds, parameters, save_version, load_versions
        )

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if not self.enabled:
            return
        # HF's MLflowCallback (TRL's report_to): each trainer in a nested run of its own, so the
        # reward model's and DPO's `loss` curves and arguments do not mix in the Kedro run.
        os.environ["MLFLOW_NESTED_RUN"] = "true"
        self._set_up_store(pipeline, catalog)
        super().before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        if self._is_mlflow_enabled:
            import mlflow

            mlflow.set_tag(RUN_VERSION_TAG, run_params["run_id"])

    @hook_impl
    def before_node_run(self, node: Node, catalog, inputs: dict[str, Any], is_async: bool) -> None:
        if not self.enabled:
            return
        # Nodes receive validated pydantic blocks; kedro-mlflow flattens dicts only.
        plain = {name: _loggable(value) for name, value in inputs.items()}
        super().before_node_run(node=node, catalog=catalog, inputs=plain, is_async=is_async)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if not (self.enabled and self._is_mlflow_enabled and self.run_id):
            return
        if dataset_name in OUTCOMES:
            log_outcome(self.run_id, OUTCOMES[dataset_name](data))
        artifact = ARTIFACTS.get(dataset_name)
        if artifact is None and dataset_name.endswith("_chart"):
            artifact = f"charts/{dataset_name}.html"
        if artifact is not None:
            log_artifact_data(self.run_id, artifact, data)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if not self.enabled:
            return
        super().after_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        if self._is_mlflow_enabled and not self._already_active_mlflow:
            import mlflow

            # kedro-mlflow reopens the run before every node, which MLflow 3 stacks, and ends
            # it once: the next session of this process (a notebook, a test) would log into it.
            while (active := mlflow.active_run()) is not None and active.info.run_id == self.run_id:
                mlflow.end_run()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline, catalog):
        # Only once a run was started: kedro-mlflow's handler fails when none is (a server that
        # does not answer stops the run in before_pipeline_run), hiding the real error.
        if self.enabled and self.run_id is not None:
            super().on_pipeline_error(
                error=error, run_params=run_params, pipeline=pipeline, catalog=catalog
            )


def _loggable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
