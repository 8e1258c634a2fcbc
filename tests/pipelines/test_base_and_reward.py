"""base_model → reward_model on the demo data with the tiny `test` environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.runner import SequentialRunner

from alignment_stages.demo.generate import write_demo_files
from alignment_stages.models.config import RewardModelParams
from alignment_stages.pipelines import reward_model
from alignment_stages.reward.evaluate import RewardModelQualityError


def _run(project: Path, pipelines: list[str]) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=pipelines)


def _latest(project: Path, relative: str) -> Path:
    return sorted((project / relative).iterdir())[-1] / Path(relative).name


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory) -> Path:
    from tests.conftest import make_project

    project = make_project(tmp_path_factory.mktemp("trained"))
    write_demo_files(project / "data" / "01_raw" / "preferences")
    _run(project, ["data_curation", "base_model", "safety_judge", "reward_model"])
    return project


def test_tiny_base_and_reward_models_are_saved_and_pass_the_floor(trained_project):
    metrics = json.loads(
        _latest(trained_project, "data/08_reporting/reward_model_metrics.json").read_text()
    )
    floor = yaml.safe_load((trained_project / "conf/test/parameters_reward_model.yml").read_text())
    assert metrics["accuracy"] >= floor["reward_model"]["accuracy_floor"]
    assert set(metrics["accuracy_by_category"]) == {"benign", "unsafe"}
    for name in ("base_policy", "reward_model"):
        artifact = _latest(trained_project, f"data/06_models/{name}")
        assert (artifact / "COMPLETE").is_file() and (
            artifact / "model" / "model.safetensors"
        ).is_file()


def test_same_seed_same_reward_metrics(trained_project, tmp_path):
    from tests.conftest import make_project

    again = make_project(tmp_path)
    write_demo_files(again / "data" / "01_raw" / "preferences")
    _run(again, ["data_curation", "base_model", "safety_judge", "reward_model"])
    first = json.loads(
        _latest(trained_project, "data/08_reporting/reward_model_metrics.json").read_text()
    )
    second = json.loads(_latest(again, "data/08_reporting/reward_model_metrics.json").read_text())
    # Every figure repeats except each member's wall time, which is there to be measured.
    for metrics in (first, second):
        for member in metrics["ensemble"].values():
            assert member.pop("train_seconds") > 0
    assert first == second


def test_reward_model_below_the_floor_stops_before_ppo_and_is_not_saved(trained_project):
    """A sliced run: preference_val with its labels swapped makes a good model look useless."""
    import pandas as pd

    from alignment_stages.datasets import HFModelDataset

    val = pd.read_parquet(_latest(trained_project, "data/05_model_input/preference_val.parquet"))
    swapped = val.rename(columns={"chosen": "rejected", "rejected": "chosen"})
    train = pd.read_parquet(
        _latest(trained_project, "data/05_model_input/preference_train.parquet")
    )
    params = yaml.safe_load((trained_project / "conf/test/parameters_reward_model.yml").read_text())
    latest = Version(None, None)
    saved = HFModelDataset(
        filepath=str(trained_project / "data/06_models/floor_test"), version=latest
    )
    catalog = DataCatalog(
        {
            "preference_train": MemoryDataset(train),
            "preference_val": MemoryDataset(swapped),
            "onpolicy_base_pairs": MemoryDataset(train.head(0)),
            "base_policy": HFModelDataset(
                filepath=str(trained_project / "data/06_models/base_policy"), version=latest
            ),
            "params:reward_model": MemoryDataset(RewardModelParams(**params["reward_model"])),
            "reward_model_candidate": MemoryDataset(copy_mode="assign"),
            "reward_model_metrics": MemoryDataset(),
            "reward_model": saved,
        }
    )
    with pytest.raises(RewardModelQualityError, match="below reward_model.accuracy_floor"):
        # The reward-model nodes alone: the base's on-policy pairs are given (none).
        pipeline = reward_model.create_pipeline().only_nodes(
            "train_reward_model", "enforce_reward_accuracy_floor"
        )
        SequentialRunner().run(pipeline, catalog)
    assert catalog["reward_model_metrics"].load()["accuracy"] < 0.5
    assert not (trained_project / "data/06_models/floor_test").exists()


def test_bad_base_model_parameter_stops_the_run_naming_the_key(tmp_path):
    from tests.conftest import make_project

    project = make_project(tmp_path)
    write_demo_files(project / "data" / "01_raw" / "preferences")
    params_file = project / "conf" / "test" / "parameters_base_model.yml"
    params = yaml.safe_load(params_file.read_text())
    params["base_model"]["sft"]["learning_rat"] = 0.1
    params_file.write_text(yaml.safe_dump(params))
    with pytest.raises(Exception, match="Parameter validation failed") as caught:
        _run(project, ["data_curation", "base_model"])
    assert "learning_rat" in str(caught.value)
    assert not (project / "data" / "05_model_input" / "sft_examples.parquet").exists()
