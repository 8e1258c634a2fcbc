"""Shared fixtures: a throwaway copy of the project, so pipeline tests never touch data/."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
# A run version left in the shell would pin every session the tests create.
os.environ.pop("ALIGNMENT_STAGES_RUN_VERSION", None)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def as_loaders(files: dict[str, bytes]) -> dict[str, Callable[[], bytes]]:
    """The shape `raw_preferences` loads as: file name → function returning its bytes."""
    return {name: (lambda data=data: data) for name, data in files.items()}


@pytest.fixture
def tmp_project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def make_project(tmp_path: Path, tracking: bool = False) -> Path:
    """A project directory with this repo's pyproject and conf, and an empty raw data folder.

    Catalog paths are relative to the project path, so every artifact lands under tmp_path, and
    so does the MLflow store (`mlruns/`) when `tracking` is on. It is off unless asked for: a
    fresh store costs a database migration, and the runs that leave it off show that every
    pipeline works without it.
    """
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", project)
    shutil.copytree(REPO_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    if not tracking:
        set_tracking(project, enabled=False)
    (project / "data" / "01_raw" / "preferences").mkdir(parents=True)
    (project / "src").mkdir()  # the package itself is imported from the installed project
    return project


def set_parameters(project: Path, file_name: str, block: dict) -> None:
    """Overwrite one parameter file of a tmp_project's base environment."""
    (project / "conf" / "base" / file_name).write_text(yaml.safe_dump(block), encoding="utf-8")


def set_tracking(project: Path, **settings) -> None:
    """Change top-level settings of a tmp_project's conf/base/mlflow.yml."""
    path = project / "conf" / "base" / "mlflow.yml"
    conf = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**conf, **settings}), encoding="utf-8")
