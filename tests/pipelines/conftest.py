"""The smoke `full_alignment` run on the demo data, shared by every pipeline test module that
reads its outputs (the run takes about a minute on a 2-core CPU, so it runs once per session;
the reproducibility test in test_full_alignment.py starts its stages from PPO on once more)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from alignment_stages.demo.generate import write_demo_files
from tests.conftest import make_project


def latest(project: Path, relative: str) -> Path:
    """The newest version of a versioned dataset's file or directory."""
    return sorted((project / relative).iterdir())[-1] / Path(relative).name


def run_smoke(project: Path, from_nodes: list[str] | None = None) -> None:
    """The smoke `full_alignment` run in `project`, whole or from `from_nodes` on."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke") as session:
        session.run(pipeline_names=["full_alignment"], from_nodes=from_nodes)


def run_smoke_alignment(directory: Path) -> Path:
    """A new project under `directory`, with the demo data, after the smoke `full_alignment` run."""
    project = make_project(directory)
    write_demo_files(project / "data" / "01_raw" / "preferences")
    run_smoke(project)
    return project


@pytest.fixture(scope="session")
def shaped_project(tmp_path_factory) -> Path:
    return run_smoke_alignment(tmp_path_factory.mktemp("shaped"))
