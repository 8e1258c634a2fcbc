"""One version timestamp for every task of an orchestrated run.

An orchestrator such as Airflow runs each task as its own Kedro session. Left alone, Kedro gives
every session a fresh timestamp as its save version and loads the newest version of every input,
so the tasks of one DAG run write into different version folders, and a task may read another
run's output if that run finished in between. Setting `ALIGNMENT_STAGES_RUN_VERSION` pins one
version for a whole run:

- every task saves under that version;
- every versioned dataset that a node of the pipeline being run produces is loaded at that
  version, so a task reads exactly what its upstream task of the same run wrote;
- datasets produced outside the pipeline (by earlier pipelines) still load their latest version;
- versions the user pins with `--load-versions` win.

This module holds those rules as plain functions; `alignment_stages.session` applies them to a
Kedro session, and the Airflow DAG template derives the version from the DAG run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

RUN_VERSION_VARIABLE = "ALIGNMENT_STAGES_RUN_VERSION"
# Kedro's own version format (kedro.io.core.generate_timestamp): UTC, millisecond precision.
# Versions sort as text, so only this exact shape keeps "latest" meaning "newest".
VERSION_FORMAT = "YYYY-MM-DDTHH.MM.SS.mmmZ"
_VERSION_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z")
_STRFTIME_FORMAT = "%Y-%m-%dT%H.%M.%S.%fZ"


class RunVersionError(ValueError):
    """A run version that is not a Kedro version timestamp."""


def parse_run_version(value: str) -> str:
    """Return `value` if it is a valid Kedro version timestamp, else raise `RunVersionError`."""
    if not _VERSION_PATTERN.fullmatch(value):
        raise RunVersionError(
            f"{RUN_VERSION_VARIABLE}={value!r} is not a Kedro version: expected the format "
            f"{VERSION_FORMAT} (UTC), for example 2026-11-23T23.30.46.143Z."
        )
    try:
        datetime.strptime(value, _STRFTIME_FORMAT)
    except ValueError as exc:  # the right shape but no real date, e.g. month 13
        raise RunVersionError(
            f"{RUN_VERSION_VARIABLE}={value!r} is not a real UTC time in the format "
            f"{VERSION_FORMAT}: {exc}"
        ) from exc
    return value


def run_version_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The pinned run version, or None when the variable is unset or empty.

    Empty counts as unset so that `ALIGNMENT_STAGES_RUN_VERSION= kedro run` behaves like a plain
    `kedro run`, as it does for most shell variables.
    """
    value = (os.environ if environ is None else environ).get(RUN_VERSION_VARIABLE, "").strip()
    return parse_run_version(value) if value else None


def version_from_datetime(moment: datetime) -> str:
    """Format a timezone-aware moment as a Kedro version (UTC, truncated to milliseconds).

    A naive datetime is refused: read as local time on one worker and UTC on another, it would
    give the tasks of one run different versions.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RunVersionError(f"a run version needs a timezone-aware time, got naive {moment!r}")
    text = moment.astimezone(UTC).strftime(_STRFTIME_FORMAT)
    return text[:-4] + "Z"  # microseconds → milliseconds, as Kedro does


def pinned_load_versions(
    produced_versioned: Iterable[str],
    run_version: str,
    explicit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Load versions for a pinned run: every versioned dataset the pipeline produces is read at
    `run_version`, and the user's explicit `--load-versions` override any of them."""
    pins = dict.fromkeys(sorted(produced_versioned), run_version)
    pins.update(explicit or {})
    return pins
