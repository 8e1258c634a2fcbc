"""`RunIdentitySession`: a Kedro session that honours `ALIGNMENT_STAGES_RUN_VERSION`.

With the variable unset it is a plain `KedroSession`. With it set (see
`alignment_stages.run_identity`):

- the session id, and so the save version of every versioned dataset, is the run version;
- every versioned dataset that a node of the requested pipelines produces is loaded at the run
  version, unless `--load-versions` names it;
- the outputs of the nodes about to run are cleared at the run version first, so a retried or
  re-run task rewrites its own version folder instead of failing on "must not exist".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import fsspec
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.io import AbstractVersionedDataset
from kedro.io.catalog_config_resolver import CatalogConfigResolver
from kedro.pipeline import Pipeline

from alignment_stages.run_identity import pinned_load_versions, run_version_from_env

logger = logging.getLogger(__name__)


class RunIdentitySession(KedroSession):
    """Registered as `SESSION_CLASS` in `settings.py`, so `kedro run` and the DAGs use it."""

    def __init__(self, session_id: str, *args: Any, **kwargs: Any):
        # Read (and validated) before anything else, so a bad value fails before any work.
        self.run_version = run_version_from_env()
        super().__init__(self.run_version or session_id, *args, **kwargs)
        if self.run_version:
            self._hook_manager.register(_RewriteTaskOutputs(self.run_version))

    def run(  # type: ignore[override]
        self,
        pipeline_name: str | None = None,
        pipeline_names: list[str] | None = None,
        load_versions: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if self.run_version:
            names = pipeline_names or ([pipeline_name] if pipeline_name else None)
            load_versions = pinned_load_versions(
                self._produced_versioned(names or ["__default__"]), self.run_version, load_versions
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

    def _produced_versioned(self, names: list[str]) -> set[str]:
        """Versioned datasets that some node of the named pipelines produces (unfiltered: a task
        runs a slice, and its inputs come from the other slices of the same pipeline)."""
        pipelines.set_requested(None if "__default__" in names else names)
        # An unknown name is left for KedroSession.run, which reports it with suggestions.
        produced = set().union(*(pipelines[n].all_outputs() for n in names if n in pipelines))
        return _versioned(self._get_config_loader()["catalog"], produced)


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


class _RewriteTaskOutputs:
    """Clears, at the run version, the outputs of the nodes about to run.

    Kedro refuses to save a versioned dataset whose version path exists, and a failed attempt
    may have saved some outputs (a parquet file half written, or the first node of a grouped
    task done). The run version belongs to one DAG run and these outputs to this task, so what
    is there can only come from an earlier attempt of the same task: the retry rewrites it.
    """

    def __init__(self, run_version: str):
        self._run_version = run_version

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Pipeline, catalog: Any) -> None:
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name)
            dataset = getattr(dataset, "_dataset", dataset)  # CachedDataset wraps the real one
            if not isinstance(dataset, AbstractVersionedDataset) or not dataset._version:
                continue
            # kedro-datasets keep their fsspec filesystem in `_fs` (protocol already stripped
            # from `_filepath`); the project's model datasets are local directories.
            fs = getattr(dataset, "_fs", None) or fsspec.filesystem("file")
            version_folder = str(dataset._filepath / self._run_version)
            if fs.exists(version_folder):
                logger.warning(
                    "Rewriting %s at run version %s: removing %s from an earlier attempt",
                    name,
                    self._run_version,
                    version_folder,
                )
                fs.rm(version_folder, recursive=True)
