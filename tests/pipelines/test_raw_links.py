"""A link in data/01_raw/preferences/ to a file outside the project is not read into
curated_pairs unless `data_curation.follow_links_outside_raw` allows it (issue 28, case 5)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project

from alignment_stages.curation.curate import OutsideLinkError
from alignment_stages.demo.generate import write_demo_files
from tests.conftest import make_project


def _run(project, **params):
    bootstrap_project(project)
    runtime = {"data_curation": params} if params else None
    with settings.SESSION_CLASS.create(project_path=project, env="test", runtime_params=runtime) as session:  # fmt: skip
        session.run(pipeline_names=["data_curation"])


@pytest.fixture
def linked_project(tmp_path):
    project = make_project(tmp_path)
    raw = project / "data" / "01_raw" / "preferences"
    write_demo_files(raw)
    secret = tmp_path / "home" / "private.jsonl"
    secret.parent.mkdir()
    row = {"prompt": "What is my password?", "chosen": "I cannot know.", "rejected": "hunter2"}
    secret.write_text(json.dumps(row) + "\n")
    (raw / "private.jsonl").symlink_to(secret)
    return project, secret


def test_a_link_outside_the_raw_folder_stops_the_run_naming_it(linked_project):
    project, secret = linked_project
    with pytest.raises(OutsideLinkError, match=f"private.jsonl -> {secret.resolve()}.*follow_links_outside_raw"):  # fmt: skip
        _run(project)
    assert not (project / "data" / "03_primary" / "curated_pairs.parquet").exists()


def test_the_parameter_lets_the_link_be_read(linked_project):
    project, _ = linked_project
    _run(project, follow_links_outside_raw=True)
    (version,) = (project / "data" / "03_primary" / "curated_pairs.parquet").iterdir()
    pairs = pd.read_parquet(version / "curated_pairs.parquet")
    assert "private.jsonl" in set(pairs["source"])
