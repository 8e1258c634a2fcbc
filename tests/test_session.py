"""RunIdentitySession: tasks of one orchestrated run share one version, retries rewrite it.

Each "task" is its own Kedro session running a slice of `data_curation`, as an Airflow task does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, Version
from kedro.io.core import DatasetError
from kedro.pipeline import node

from alignment_stages.datasets import HFModelCollectionDataset, HFModelDataset
from alignment_stages.demo.generate import write_demo_files
from alignment_stages.run_identity import RUN_VERSION_VARIABLE, RunVersionError
from alignment_stages.session import RewritePinnedOutputs, RunIdentitySession
from tests.models.tiny import tiny_policy

RUN_VERSION = "2000-01-01T00.00.00.000Z"  # older than any unpinned run: never "latest" by accident
CURATE_TASK = ["curate_preferences", "enforce_max_bad_fraction"]  # joined by a MemoryDataset
SPLIT_TASK = ["split_curated_pairs"]
CURATED = "data/03_primary/curated_pairs.parquet"
SFT = "data/05_model_input/sft_examples.parquet"


def _run_task(project: Path, node_names: list[str] | None, run_version: str | None, **run_args):
    """One Airflow-style task: a fresh session running a slice of data_curation."""
    with pytest.MonkeyPatch.context() as env:
        if run_version is None:
            env.delenv(RUN_VERSION_VARIABLE, raising=False)
        else:
            env.setenv(RUN_VERSION_VARIABLE, run_version)
        bootstrap_project(project)
        with settings.SESSION_CLASS.create(project_path=project, env="test") as session:
            session.run(pipeline_names=["data_curation"], node_names=node_names, **run_args)
            return session.session_id


def _versions(project: Path, relative: str) -> list[str]:
    return sorted(p.name for p in (project / relative).iterdir())


def _table(project: Path, relative: str, version: str) -> pd.DataFrame:
    return pd.read_parquet(project / relative / version / Path(relative).name)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """The first task of a pinned run, then a complete newer run on different raw data."""
    from tests.conftest import make_project

    project = make_project(tmp_path_factory.mktemp("runs"))
    raw = project / "data" / "01_raw" / "preferences"
    write_demo_files(raw)
    _run_task(project, CURATE_TASK, RUN_VERSION)
    (raw / "demo_shp.csv").unlink()  # the newer run curates fewer pairs: its output is told apart
    _run_task(project, None, None)
    return project


def test_settings_register_the_run_identity_session(tmp_project):
    bootstrap_project(tmp_project)
    assert settings.SESSION_CLASS is RunIdentitySession
    assert any(isinstance(hook, RewritePinnedOutputs) for hook in settings.HOOKS)


def test_pinned_tasks_write_one_version_and_read_their_own_upstream(two_runs):
    latest = _versions(two_runs, CURATED)[-1]
    assert latest > RUN_VERSION
    assert _run_task(two_runs, SPLIT_TASK, RUN_VERSION) == RUN_VERSION

    pinned_pairs = set(_table(two_runs, CURATED, RUN_VERSION)["pair_id"])
    latest_pairs = set(_table(two_runs, CURATED, latest)["pair_id"])
    sft_pairs = set(_table(two_runs, SFT, RUN_VERSION)["pair_id"])
    assert sft_pairs <= pinned_pairs  # read from this run's curated_pairs ...
    assert sft_pairs - latest_pairs  # ... not from the newer "latest"
    for relative in (CURATED, SFT, "data/08_reporting/curation_report.json"):
        assert RUN_VERSION in _versions(two_runs, relative)  # both tasks wrote one version


def test_explicit_load_versions_win_over_the_pinned_version(two_runs):
    latest = _versions(two_runs, CURATED)[-1]
    _run_task(two_runs, SPLIT_TASK, RUN_VERSION, load_versions={"curated_pairs": latest})
    sft_pairs = set(_table(two_runs, SFT, RUN_VERSION)["pair_id"])
    assert sft_pairs <= set(_table(two_runs, CURATED, latest)["pair_id"])


def test_unpinned_session_keeps_kedro_behaviour(two_runs):
    before = _versions(two_runs, SFT)
    session_id = _run_task(two_runs, SPLIT_TASK, None)
    assert session_id not in before and session_id > RUN_VERSION  # a fresh timestamp
    latest_curated = _versions(two_runs, CURATED)[-1]
    sft_pairs = set(_table(two_runs, SFT, session_id)["pair_id"])
    assert sft_pairs <= set(_table(two_runs, CURATED, latest_curated)["pair_id"])  # reads latest


def test_retried_task_rewrites_its_outputs_at_the_run_version(two_runs):
    _run_task(two_runs, SPLIT_TASK, RUN_VERSION)
    half_written = two_runs / SFT / RUN_VERSION / "sft_examples.parquet"
    half_written.write_bytes(b"half a parquet file")  # as if the first attempt died mid-save
    _run_task(two_runs, SPLIT_TASK, RUN_VERSION)  # Kedro alone: a "must not exist" error
    sft_pairs = set(pd.read_parquet(half_written)["pair_id"])
    assert sft_pairs and sft_pairs <= set(_table(two_runs, CURATED, RUN_VERSION)["pair_id"])


def test_bad_run_version_stops_before_the_session_starts(tmp_project, monkeypatch):
    monkeypatch.setenv(RUN_VERSION_VARIABLE, "2026-11-23 23:30")
    bootstrap_project(tmp_project)
    with pytest.raises(RunVersionError, match=f"{RUN_VERSION_VARIABLE}.*YYYY-MM-DDTHH.MM.SS.mmmZ"):
        settings.SESSION_CLASS.create(project_path=tmp_project, env="test")


def test_resume_with_only_missing_outputs_keeps_what_the_run_already_wrote(two_runs):
    """A run whose split task never ran is finished without redoing its curation task."""
    for split in (two_runs / "data" / "05_model_input").iterdir():
        shutil.rmtree(split / RUN_VERSION, ignore_errors=True)
    curated = two_runs / CURATED / RUN_VERSION / "curated_pairs.parquet"
    written = curated.stat().st_mtime_ns
    _run_task(two_runs, None, RUN_VERSION, only_missing_outputs=True)
    assert curated.stat().st_mtime_ns == written  # the curation task is not run again
    sft_pairs = set(_table(two_runs, SFT, RUN_VERSION)["pair_id"])
    assert sft_pairs and sft_pairs <= set(_table(two_runs, CURATED, RUN_VERSION)["pair_id"])


@pytest.mark.parametrize(
    "dataset_class, artifact",
    [(HFModelDataset, tiny_policy), (HFModelCollectionDataset, lambda: {"round_1": tiny_policy()})],
)
def test_model_datasets_are_rewritten_on_retry(tmp_path, monkeypatch, dataset_class, artifact):
    """The atomic model saves refuse an existing version folder; the hook clears it, including
    the hidden staging folder a killed save leaves behind, but only for a pinned run."""

    def dataset():
        return dataset_class(filepath=str(tmp_path / "policy"), version=Version(None, RUN_VERSION))

    dataset().save(artifact())
    staging = tmp_path / "policy" / RUN_VERSION / ".policy.tmp-killed"
    staging.mkdir()
    catalog = DataCatalog({"policy": dataset()})
    train = node(lambda: None, inputs=None, outputs="policy", name="train")

    monkeypatch.delenv(RUN_VERSION_VARIABLE, raising=False)
    RewritePinnedOutputs().before_node_run(train, catalog)
    with pytest.raises(DatasetError, match="must not exist"):  # unpinned: Kedro's own rule
        catalog["policy"].save(artifact())

    monkeypatch.setenv(RUN_VERSION_VARIABLE, RUN_VERSION)
    RewritePinnedOutputs().before_node_run(train, catalog)
    assert not (tmp_path / "policy" / RUN_VERSION).exists()
    catalog["policy"].save(artifact())
    assert (tmp_path / "policy" / RUN_VERSION / "policy" / "COMPLETE").is_file()


def test_fsspec_datasets_are_rewritten_on_their_own_filesystem(monkeypatch):
    """kedro-datasets on a remote filesystem (memory:// stands in for s3://) are cleared there."""
    from kedro_datasets.pandas import ParquetDataset

    def dataset():
        path = f"memory://bucket-{id(monkeypatch)}/pairs.parquet"
        return ParquetDataset(filepath=path, version=Version(None, RUN_VERSION))

    dataset().save(pd.DataFrame({"pair_id": ["a"]}))
    catalog = DataCatalog({"pairs": dataset()})
    monkeypatch.setenv(RUN_VERSION_VARIABLE, RUN_VERSION)
    RewritePinnedOutputs().before_node_run(node(lambda: None, None, "pairs", name="n"), catalog)
    catalog["pairs"].save(pd.DataFrame({"pair_id": ["b"]}))
    assert list(dataset().load()["pair_id"]) == ["b"]
