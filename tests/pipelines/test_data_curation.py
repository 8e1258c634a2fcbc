"""The data_curation pipeline through a real Kedro session, on a throwaway copy of the project."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from alignment_stages.curation.config import SPLIT_NAMES
from alignment_stages.demo.generate import write_demo_files
from tests.conftest import REPO_ROOT

TRAINING = ("sft_examples", "preference_train", "preference_val", "ppo_prompts")
EVALUATION = ("eval_prompts", "capability_probe")


def _run(project: Path, pipeline: str = "data_curation", **session_args) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, **session_args) as session:
        session.run(pipeline_names=[pipeline])


def _latest(project: Path, relative: str) -> Path:
    versions = sorted((project / relative).iterdir())
    return versions[-1] / Path(relative).name


def _read_table(project: Path, relative: str) -> pd.DataFrame:
    return pd.read_parquet(_latest(project, relative))


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def demo_project(tmp_project: Path) -> Path:
    write_demo_files(tmp_project / "data" / "01_raw" / "preferences")
    return tmp_project


def test_demo_run_conserves_records_and_splits_disjointly(demo_project):
    raw = demo_project / "data" / "01_raw" / "preferences"
    before = _fingerprint(raw)
    _run(demo_project)
    assert _fingerprint(raw) == before  # raw data is never modified

    report = yaml.safe_load(
        _latest(demo_project, "data/08_reporting/curation_report.json").read_text()
    )
    assert set(report["files"]) == set(before)
    for counts in report["files"].values():
        assert counts["read"] == counts["accepted"] + sum(counts["quarantined"].values())
    curated = _read_table(demo_project, "data/03_primary/curated_pairs.parquet")
    quarantined = _read_table(demo_project, "data/02_intermediate/quarantined_records.parquet")
    assert len(curated) == report["totals"]["accepted"] > 2000
    assert len(quarantined) == sum(report["totals"]["quarantined"].values()) > 0

    splits = {n: _read_table(demo_project, f"data/05_model_input/{n}.parquet") for n in SPLIT_NAMES}
    training = set().union(*(set(splits[n]["prompt_text"]) for n in TRAINING))
    evaluation = set().union(*(set(splits[n]["prompt_text"]) for n in EVALUATION))
    assert training and evaluation and not training & evaluation
    pair_splits = sum(
        len(splits[n]) for n in ("sft_examples", "preference_train", "preference_val")
    )
    prompt_splits = pd.concat([splits["ppo_prompts"], splits["eval_prompts"]])
    probe_pairs = curated["prompt_text"].isin(splits["capability_probe"]["prompt_text"]).sum()
    assert pair_splits + prompt_splits["n_pairs"].sum() + probe_pairs == len(curated)


def test_same_seed_gives_the_same_splits(demo_project, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(demo_project, other)
    _run(demo_project)
    _run(other)
    for name in SPLIT_NAMES:
        relative = f"data/05_model_input/{name}.parquet"
        pd.testing.assert_frame_equal(
            _read_table(demo_project, relative), _read_table(other, relative)
        )


def test_empty_input_folder_says_where_to_put_data(tmp_project):
    with pytest.raises(Exception, match="No preference files found in .*data/01_raw/preferences"):
        _run(tmp_project)


def test_too_many_bad_records_stop_the_run_but_keep_the_quarantine(tmp_project):
    raw = tmp_project / "data" / "01_raw" / "preferences" / "messy.jsonl"
    raw.write_bytes(b'{"prompt": "p", "chosen": "c", "rejected": "r"}\n{oops\n{oops\n')
    with pytest.raises(Exception, match=r"messy\.jsonl: 2 of 3 records .*invalid_json \(2\)"):
        _run(tmp_project)
    quarantined = _read_table(tmp_project, "data/02_intermediate/quarantined_records.parquet")
    assert quarantined["reason"].tolist() == ["invalid_json", "invalid_json"]
    assert not (tmp_project / "data" / "03_primary" / "curated_pairs.parquet").exists()


@pytest.mark.parametrize(
    ("override", "named_key"),
    [
        ({"max_bad_fractoin": 0.1}, "max_bad_fractoin"),
        ({"max_bad_fraction": 1.5}, "max_bad_fraction"),
        ({"lengths": {"max_prompt_chars": 0}}, "max_prompt_chars"),
        ({"splits": {"eval_prompts": 0.5}}, "split fractions must sum to 1.0"),
        ({"formats": {"a.jsonl": "alpaca"}}, "formats.`a.jsonl`"),
    ],
)
def test_bad_parameters_stop_the_run_before_any_node_naming_the_key(
    demo_project, override, named_key
):
    params_file = demo_project / "conf" / "base" / "parameters_data_curation.yml"
    params = yaml.safe_load(params_file.read_text())
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(params["data_curation"].get(key), dict):
            params["data_curation"][key] = {**params["data_curation"][key], **value}
        else:
            params["data_curation"][key] = value
    params_file.write_text(yaml.safe_dump(params))
    with pytest.raises(Exception, match=r"Parameter validation failed") as caught:
        _run(demo_project)
    assert named_key in str(caught.value)
    assert not (demo_project / "data" / "08_reporting" / "curation_report.json").exists()


def test_pipelines_are_registered_with_full_alignment_as_default():
    bootstrap_project(REPO_ROOT)
    from kedro.framework.project import pipelines

    assert {"data_curation", "full_alignment", "__default__"} <= set(pipelines)
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    assert default_nodes == {n.name for n in pipelines["full_alignment"].nodes}
    assert {n.name for n in pipelines["data_curation"].nodes} <= default_nodes


def test_the_smollm2_environment_curates_the_published_sets_and_no_demo_pair(tmp_project):
    """`kedro run --env smollm2 --pipeline=data_curation`: every set from its installed
    package, no file from the demo's raw folder, and every record in the report."""
    labels = "data/01_raw/judge_labels"  # the project's own hand labels, beside the packages
    shutil.copytree(REPO_ROOT / labels, tmp_project / labels)
    _run(tmp_project, env="smollm2")
    report = yaml.safe_load(
        _latest(tmp_project, "data/08_reporting/curation_report.json").read_text()
    )
    assert report["files"] == {}  # the demo's templated pairs are not read
    conf = yaml.safe_load((tmp_project / "conf/smollm2/parameters_data_curation.yml").read_text())
    read = {name.split("/")[0] for name in report["published_sets"]}
    assert read == set(conf["data_curation"]["published_sets"])
    totals = report["published_totals"]
    assert totals["read"] == totals["used"] + totals["quarantined"] + totals["excluded"]
    evaluated = _read_table(tmp_project, "data/05_model_input/eval_prompts.parquet")
    assert {"strongreject", "jbb_benign"} <= set(evaluated["source"])
    for name in TRAINING:
        trained = _read_table(tmp_project, f"data/05_model_input/{name}.parquet")
        assert not set(trained["prompt_text"]) & set(evaluated["prompt_text"]), name
        assert "demo" not in " ".join(trained["source"].astype(str)), name
    labelled = _read_table(tmp_project, "data/03_primary/labelled_answers.parquet")
    assert set(labelled["label"]) == {"harm", "objective_achieved", "refusal", "violation"}
