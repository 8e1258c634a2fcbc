"""`stage_probe.start`: which policy the probe starts from, as a catalog model or a path.

The forms accepted:

- a model dataset of the catalog: `base_policy`, `ppo_policy`, `dpo_policy` (its version is the
  one `--load-versions` pins, or the latest);
- one round of `ppo_round_policies`: `ppo_round_policies:round_002`;
- the path of a saved artifact directory (anything holding a `/`, or starting with `.` or `~`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MODEL_DATASETS = ("base_policy", "ppo_policy", "dpo_policy")
ROUND_COLLECTION = "ppo_round_policies"
_ROUND = re.compile(r"round_\d{3}")


class StartPolicyError(ValueError):
    """`stage_probe.start` names no model dataset, round or saved artifact."""


@dataclass(frozen=True)
class StartSpec:
    kind: Literal["dataset", "round", "path"]
    name: str  # the dataset name, or the path
    round: str | None = None  # "round_002" for kind == "round"


def parse_start(start: str) -> StartSpec:
    """The form of `start`, checked without touching the disk (see `check_start_path`)."""
    text = start.strip()
    if text in MODEL_DATASETS:
        return StartSpec("dataset", text)
    if text.startswith(f"{ROUND_COLLECTION}:"):
        round_name = text.split(":", 1)[1]
        if not _ROUND.fullmatch(round_name):
            raise StartPolicyError(
                f"stage_probe.start={start!r}: a round is named like "
                f"{ROUND_COLLECTION}:round_002 (three digits)"
            )
        return StartSpec("round", ROUND_COLLECTION, round_name)
    if "/" in text or text.startswith((".", "~")) or "\\" in text:
        return StartSpec("path", text)
    raise StartPolicyError(
        f"stage_probe.start={start!r} is neither a model dataset ({', '.join(MODEL_DATASETS)}), "
        f"a round ({ROUND_COLLECTION}:round_NNN) nor a path to a saved artifact"
    )


def check_start_path(path: str, project_path: Path) -> Path:
    """A local path, relative to the project, that holds a finished artifact; remote paths
    (s3://, gs://) are checked when they are loaded."""
    if "://" in path:
        return Path(path)
    resolved = Path(path).expanduser()
    resolved = resolved if resolved.is_absolute() else project_path / resolved
    if not resolved.is_dir():
        raise StartPolicyError(f"stage_probe.start: {resolved} is not a directory")
    if not (resolved / "COMPLETE").is_file():
        raise StartPolicyError(
            f"stage_probe.start: {resolved} is not a saved artifact (no COMPLETE marker). "
            "Point at a version folder, e.g. data/06_models/ppo_policy/<version>/ppo_policy"
        )
    return resolved


def check_round(round_name: str, available: list[str], version: str | None) -> None:
    if round_name not in available:
        raise StartPolicyError(
            f"stage_probe.start: {ROUND_COLLECTION} version {version or 'latest'} has no "
            f"{round_name}; it has {available or 'no rounds'}"
        )
