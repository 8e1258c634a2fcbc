"""Project pipelines, discovered under `pipelines/`."""

from __future__ import annotations

import warnings

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Each stage is its own pipeline; `full_alignment` chains them and is also the default.

    When a run names pipelines, Kedro 1.7 discovers only those packages, so `full_alignment` is
    present here only when it (or `__default__`) was asked for.
    """
    try:
        pipelines = find_pipelines(raise_errors=True)
    except ImportError as exc:
        if exc.__cause__ is not None:  # a pipeline package that exists but does not import
            raise
        # A requested name with no package under pipelines/ (a typo): leave it out, so that
        # KedroSession.run reports it with Kedro's own "Did you mean one of these instead?".
        # Every package that was found has just imported without error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipelines = find_pipelines(raise_errors=False)
    if "full_alignment" in pipelines:
        pipelines["__default__"] = pipelines["full_alignment"]
    return pipelines
