"""`stage_probe.start` and `stage_probe.seeds`: every accepted form, and clear early errors."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from alignment_stages.probe.config import StageProbeParams
from alignment_stages.probe.start import (
    StartPolicyError,
    StartSpec,
    check_round,
    check_start_path,
    parse_start,
)


@pytest.mark.parametrize(
    ("start", "spec"),
    [
        ("base_policy", StartSpec("dataset", "base_policy")),
        ("ppo_policy", StartSpec("dataset", "ppo_policy")),
        ("dpo_policy", StartSpec("dataset", "dpo_policy")),
        ("ppo_round_policies:round_002", StartSpec("round", "ppo_round_policies", "round_002")),
        ("data/06_models/ppo_policy/V/ppo_policy", StartSpec("path", "data/06_models/ppo_policy/V/ppo_policy")),
        ("./saved", StartSpec("path", "./saved")),
        ("/abs/saved", StartSpec("path", "/abs/saved")),
    ],
)  # fmt: skip
def test_each_accepted_form(start, spec):
    assert parse_start(start) == spec


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("reward_model", "neither a model dataset"),
        ("ppo_polcy", "neither a model dataset"),
        ("ppo_round_policies:2", "three digits"),
        ("ppo_round_policies:round_2", "three digits"),
    ],
)
def test_a_start_that_names_no_model_is_refused_by_the_parameters(start, message):
    with pytest.raises(StartPolicyError, match=message):
        parse_start(start)
    with pytest.raises(ValidationError, match=message):
        StageProbeParams(start=start)


def test_a_path_must_be_a_finished_artifact(tmp_path: Path):
    with pytest.raises(StartPolicyError, match="is not a directory"):
        check_start_path("missing/artifact", tmp_path)
    (tmp_path / "half").mkdir()
    with pytest.raises(StartPolicyError, match="no COMPLETE marker"):
        check_start_path("half/", tmp_path)
    (tmp_path / "half" / "COMPLETE").write_text("")
    assert check_start_path("half/", tmp_path) == tmp_path / "half"
    assert check_start_path(str(tmp_path / "half"), Path("/elsewhere")) == tmp_path / "half"


def test_a_round_the_version_lacks_is_named_with_those_it_has():
    check_round("round_001", ["round_001", "round_002"], "V")
    with pytest.raises(
        StartPolicyError, match=r"version V has no round_009; it has \['round_001'\]"
    ):
        check_round("round_009", ["round_001"], "V")


@pytest.mark.parametrize(
    ("seeds", "message"), [([], "at least one"), ([0, 1, 0], r"repeated: \[0\]")]
)
def test_bad_seed_lists_are_refused(seeds, message):
    with pytest.raises(ValidationError, match=message):
        StageProbeParams(seeds=seeds)


def test_the_default_probe_runs_three_seeds_at_equal_optimizer_steps():
    params = StageProbeParams()
    assert params.seeds == [0, 1, 2] and params.budget.match == "optimizer_steps"
    assert params.ppo_optimizer_steps == 4 * 4 * 4  # updates × ppo_epochs × num_minibatches
    with pytest.raises(ValidationError):
        StageProbeParams(budget={"match": "flops"})
