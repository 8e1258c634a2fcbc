"""Kedro glue for `ALIGNMENT_STAGES_RUN_VERSION` (the rules are in `alignment_stages.run_identity`),
and the checks every run gets before its first node:

- a `--params` block that no pipeline reads is refused, naming the closest block;
- `ParallelRunner` is refused for pipelines whose nodes hand models over in memory;
- `probe_start_policy` is registered as the model `stage_probe.start` names (`ResolveProbeStart`);
- settings of two stages that cannot both hold are refused (`RefuseContradictoryParameters`).

With the variable unset, both classes here change nothing else. With it set:

- `RunIdentitySession` makes the run version the session id, and so the save version of every
  versioned dataset, and loads every versioned dataset that a node of the requested pipelines
  produces at that version, unless `--load-versions` names it;
- `RewritePinnedOutputs` clears a node's outputs at the run version just before the node runs,
  so a retried or re-run task rewrites its own version folder instead of failing on Kedro's
  "must not exist". Nodes that `--only-missing-outputs` skips are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fsspec
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines, settings
from kedro.framework.session import KedroSession
from kedro.framework.session.session import KedroSessionError
from kedro.io import AbstractVersionedDataset
from kedro.io.catalog_config_resolver import CatalogConfigResolver
from kedro.pipeline import Node, Pipeline
from kedro.runner import ParallelRunner
from pydantic import BaseModel

from alignment_stages.datasets.start_policy import PROBE_START, start_dataset
from alignment_stages.evaluation.config import EvaluationParams, check_raw_checkpoint
from alignment_stages.parameters import check_override_blocks
from alignment_stages.ppo.checkpoint import RoundCheckpoints
from alignment_stages.probe.config import StageProbeParams
from alignment_stages.resources import UsageMeter
from alignment_stages.run_identity import pinned_load_versions, run_version_from_env

logger = logging.getLogger(__name__)

CHECKPOINTS = "ppo_checkpoints"  # a RoundCheckpoints: the run's own round checkpoints
SHAPING_PARAMS = "params:ppo_shaping"  # compared round by round (RoundCheckpoints.check_parameters)


class RunIdentitySession(KedroSession):
    """Registered as `SESSION_CLASS` in `settings.py`, so `kedro run` and the DAGs use it."""

    def __init__(self, session_id: str, *args: Any, **kwargs: Any):
        # Read (and validated) before anything else, so a bad value fails before any work.
        self.run_version = run_version_from_env()
        super().__init__(self.run_version or session_id, *args, **kwargs)

    def run(  # type: ignore[override]
        self,
        pipeline_name: str | None = None,
        pipeline_names: list[str] | None = None,
        load_versions: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        names = pipeline_names or ([pipeline_name] if pipeline_name else None)
        check_override_blocks(self.store.get("runtime_params") or {}, self._parameter_blocks())
        if isinstance(kwargs.get("runner"), ParallelRunner):
            self._refuse_memory_handoffs(names)
        if self.run_version:
            load_versions = pinned_load_versions(
                self._produced_versioned(names), self.run_version, load_versions
            )
            logger.info(
                "Run version %s pinned for %d datasets", self.run_version, len(load_versions)
            )
        return super().run(
            pipeline_name=pipeline_name,
            pipeline_names=pipeline_names,
            load_versions=load_versions,
            **kwargs,
        )

    def _parameter_blocks(self) -> set[str]:
        """Top-level parameter keys of the project's configuration, `--params` left out."""
        loader = settings.CONFIG_LOADER_CLASS(
            conf_source=self._conf_source,
            env=self.store.get("env"),
            runtime_params=None,
            **settings.CONFIG_LOADER_ARGS,
        )
        return set(loader["parameters"])

    def _refuse_memory_handoffs(self, names: list[str] | None) -> None:
        """ParallelRunner copies an explicit `MemoryDataset` into each worker process instead of
        sharing it, so a model one node hands to the next never arrives (the receiving node
        fails after the training before it). Refuse before any work."""
        pipelines.set_requested(names)
        requested = [n for n in names or ["__default__"] if n in pipelines]
        handoffs = sorted(
            name
            for pipeline in (pipelines[n] for n in requested)
            for name in _memory_handoffs(self._get_config_loader()["catalog"], pipeline)
        )
        if handoffs:
            raise KedroSessionError(
                f"--runner=ParallelRunner cannot run {', '.join(names or ['__default__'])}: its "
                f"nodes hand {', '.join(dict.fromkeys(handoffs))} to each other in memory "
                "(MemoryDataset), and ParallelRunner copies those into each worker process "
                "instead of sharing them. Run it with the default SequentialRunner (leave out "
                "--runner); to train on several devices, set the stage's launcher to "
                "accelerate (docs/deployment.md)."
            )

    def _produced_versioned(self, names: list[str] | None) -> set[str]:
        """Versioned datasets that some node of the named pipelines produces (unfiltered: a task
        runs a slice, and its inputs come from the other slices of the same pipeline)."""
        pipelines.set_requested(names)  # as KedroSession.run does, before the first access
        # An unknown name is left for KedroSession.run, which reports it with suggestions.
        produced = set().union(
            *(pipelines[n].all_outputs() for n in names or ["__default__"] if n in pipelines)
        )
        return _versioned(self._get_config_loader()["catalog"], produced)


def _memory_handoffs(catalog_config: dict[str, Any], pipeline: Pipeline) -> set[str]:
    """Catalog entries of type MemoryDataset that one node of `pipeline` writes and another
    reads."""
    memory = {
        name
        for name, entry in catalog_config.items()
        if isinstance(entry, dict)
        and str(entry.get("type", "")).rsplit(".", 1)[-1] == "MemoryDataset"
    }
    return memory & pipeline.all_outputs() & pipeline.all_inputs()


def _versioned(catalog_config: dict[str, Any], names: Iterable[str]) -> set[str]:
    """The names the catalog declares `versioned: true`, directly or through a dataset factory.

    Only the flag is kept, so credentials need not be resolved just to read it.
    """
    flags = {
        key: {"versioned": bool(entry.get("versioned"))}
        for key, entry in catalog_config.items()
        if isinstance(entry, dict)
    }
    resolver = CatalogConfigResolver(flags, default_runtime_patterns={"{default}": {}})
    return {name for name in names if resolver.resolve_pattern(name).get("versioned")}


class RewritePinnedOutputs:
    """Clears a node's outputs at the run version just before the node runs.

    Kedro refuses to save a versioned dataset whose version path exists, and a failed attempt
    may have saved some outputs (a parquet file half written, the first node of a grouped task
    done, the staging folder of a killed model save). The run version belongs to one DAG run and
    a node's outputs to that node, so what is there can only come from an earlier attempt of the
    same task: the retry rewrites it. Registered in `settings.HOOKS` rather than by the session,
    so ParallelRunner's worker processes have it too.
    """

    @hook_impl
    def before_node_run(self, node: Node, catalog: Any) -> None:
        run_version = run_version_from_env()
        if run_version is None:
            return
        for name in sorted(node.outputs):
            dataset = catalog.get(name)
            dataset = getattr(dataset, "_dataset", dataset)  # CachedDataset wraps the real one
            if not isinstance(dataset, AbstractVersionedDataset) or not dataset._version:
                continue
            # kedro-datasets keep their fsspec filesystem in `_fs` (protocol already stripped
            # from `_filepath`); the project's model datasets are local directories.
            fs = getattr(dataset, "_fs", None) or fsspec.filesystem("file")
            version_folder = str(dataset._filepath / run_version)
            if fs.exists(version_folder):
                logger.warning(
                    "Rewriting %s at run version %s: removing %s from an earlier attempt",
                    name,
                    run_version,
                    version_folder,
                )
                fs.rm(version_folder, recursive=True)


class LogNodeUsage:
    """Logs each node's wall time and its own peak RSS (`alignment_stages.resources`).

    One line per node, `usage/node=<name> seconds=… peak_rss_mb=… scope=stage`, so a long run's
    memory can be read per stage (docs/performance.md's per-stage tables come from these lines).
    """

    def __init__(self) -> None:
        self._meters: dict[str, UsageMeter] = {}

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        meter = self._meters[node.name] = UsageMeter()
        meter.start()

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        meter = self._meters.pop(node.name, None)
        if meter is None:
            return
        usage = meter.stop()
        logger.info(
            "usage/node=%s seconds=%.1f peak_rss_mb=%.0f scope=%s",
            node.name, usage.seconds, usage.peak_rss_mb, usage.scope,
        )  # fmt: skip


class ResolveProbeStart:
    """Registers `probe_start_policy` as the dataset `stage_probe.start` names, before the first
    node of a pipeline that reads it; a start that names nothing fails here, before any work.
    Registered in `settings.HOOKS`; ParallelRunner's workers receive the catalog with it."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        if PROBE_START not in pipeline.inputs():
            return
        params = StageProbeParams.model_validate(catalog.load("params:stage_probe"))
        catalog[PROBE_START] = start_dataset(
            params.start, catalog, Path(run_params.get("project_path") or ".")
        )
        logger.info("stage_probe starts from %s", params.start)


class RefuseContradictoryParameters:
    """Settings of two stages that cannot both hold, refused before the first node instead of
    where the second stage meets them: `evaluation.raw_checkpoint` without
    `base_model.pretrained` used to fail at the evaluation, after the whole run had trained.
    Registered in `settings.HOOKS`."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        blocks = {"params:evaluation", "params:base_model"}
        if any(blocks <= set(node.inputs) for node in pipeline.nodes):
            # Kedro hands a block over validated where a node's signature names its model.
            evaluation = EvaluationParams.model_validate(
                _as_json(catalog.load("params:evaluation"))
            )
            base_model = _as_json(catalog.load("params:base_model"))
            check_raw_checkpoint(evaluation, base_model.get("pretrained", ""))


class RefuseMismatchedResume:
    """A PPO run resumed from its round checkpoints (a rerun with its run version) continues
    only on what it started with (`ppo/checkpoint.py`):

    - before the pipeline, the `ppo_shaping` parameters against the last round's;
    - before the node, the version of every versioned input it loads ("latest" resolved) and
      its other parameter blocks, against `inputs.json`, which a run with no completed round
      writes here.

    Both run first (`tryfirst`), before kedro-mlflow starts or joins the MLflow run and logs
    parameters: a changed learning rate is this project's ResumeMismatchError naming the key,
    not MLflow's refusal to change a logged parameter. Registered in `settings.HOOKS`.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        for node in pipeline.nodes:
            if CHECKPOINTS in node.inputs and SHAPING_PARAMS in node.inputs:
                checkpoints: RoundCheckpoints = catalog.load(CHECKPOINTS)
                checkpoints.check_parameters(_as_json(catalog.load(SHAPING_PARAMS)))

    @hook_impl(tryfirst=True)
    def before_node_run(self, node: Node, catalog: Any, inputs: dict[str, Any]) -> None:
        checkpoints = inputs.get(CHECKPOINTS)
        if not isinstance(checkpoints, RoundCheckpoints):
            return
        versions, parameters = {}, {}
        for name in sorted(set(node.inputs) - {CHECKPOINTS, SHAPING_PARAMS}):
            if name.startswith("params:"):
                parameters[name.removeprefix("params:")] = _as_json(inputs[name])
                continue
            dataset = catalog.get(name)
            dataset = getattr(dataset, "_dataset", dataset)
            if isinstance(dataset, AbstractVersionedDataset) and dataset._version:
                versions[name] = dataset.resolve_load_version()
        checkpoints.check_inputs(versions, parameters)


def _as_json(value: Any) -> Any:
    """A validated parameter block in the JSON form the checkpoints hold (pydantic defaults in)."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
