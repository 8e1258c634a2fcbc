"""Project pipelines, discovered under `pipelines/`."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Each stage is its own pipeline; `full_alignment` chains them and is also the default.

    When a run names pipelines, Kedro 1.7 discovers only those packages, so `full_alignment` is
    present here only when it (or `__default__`) was asked for.
    """
    pipelines = find_pipelines(raise_errors=True)
    if "full_alignment" in pipelines:
        pipelines["__default__"] = pipelines["full_alignment"]
    return pipelines
