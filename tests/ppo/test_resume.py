"""A PPO run killed by SIGKILL in round 2 of 3 resumes from its round-1 checkpoint and ends where
the same run ends when nothing kills it: the same history and the same weights."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch
from kedro.io import Version

import alignment_stages.ppo.rounds as rounds
from alignment_stages.datasets import RoundCheckpointsDataset
from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.checkpoint import ResumeMismatchError, RoundCheckpoints
from alignment_stages.reward.train import reward_model_from_policy
from alignment_stages.stages.ppo_shaping import ShapingStageParams
from alignment_stages.staging import staging_name
from tests.conftest import REPO_ROOT
from tests.models.tiny import tiny_policy
from tests.ppo.round_inputs import shaping_inputs

# Absolute tolerance on every history figure and weight. CPU kernels are deterministic run to
# run, so a resume that restores everything matches exactly; 1e-6 leaves room for nothing else.
TOLERANCE = 1e-6
# Wall times differ between any two runs.
TIMINGS = {"seconds"}
SETTINGS = {
    "gae, every weight": {},
    "rloo, LoRA": {
        "ppo": {"advantage_estimator": "rloo", "samples_per_prompt": 2},
        "lora": {"enabled": True, "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    },
}


def shaping_params(**overrides) -> ShapingStageParams:
    base = {
        "rounds": 3, "updates_per_round": 2,
        "ppo": {"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 2, "learning_rate": 3e-3},
        "eval": {"max_new_tokens": 4, "batch_size": 8},
    }  # fmt: skip
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return ShapingStageParams(**base)


def run(checkpoints: RoundCheckpoints | None, **overrides) -> rounds.ShapingResult:
    seed_everything(0)
    policy = tiny_policy()
    reward_model = reward_model_from_policy(policy)
    params = shaping_params(**overrides)
    return rounds.run_shaping_rounds(
        shaping_inputs(policy, reward_model, params), params, checkpoints=checkpoints
    )


# Run in a child process: the same run, killed with SIGKILL after the first update of round 2.
KILLED_RUN = """
import json, os, signal, sys
import alignment_stages.ppo.rounds as rounds
from alignment_stages.ppo.checkpoint import RoundCheckpoints
from tests.ppo.test_resume import run

run_updates = rounds.run_updates

def killed_in_round_2(trainer, batches, params, count, **kwargs):
    if kwargs["label"] == "ppo round 2":
        trainer.step(next(batches))
        os.kill(os.getpid(), signal.SIGKILL)
    return run_updates(trainer, batches, params, count, **kwargs)

rounds.run_updates = killed_in_round_2
run(RoundCheckpoints(sys.argv[1]), **json.loads(sys.argv[2]))
"""


def _weights(result: rounds.ShapingResult) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: {k: v.detach().clone() for k, v in artifact.model.state_dict().items()}
        for name, artifact in result.round_policies.items()
    }


def _numeric(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=[c for c in TIMINGS if c in history]).select_dtypes("number")


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_run_killed_in_round_2_resumes_and_matches_the_unkilled_run(setting, tmp_path):
    overrides = SETTINGS[setting]
    unkilled = run(RoundCheckpoints(tmp_path / "unkilled"), **overrides)

    folder = tmp_path / "killed"
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(folder), json.dumps(overrides)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert child.returncode == -9, child.stderr[-2000:]  # SIGKILL, not a clean exit
    assert RoundCheckpoints(folder).completed_rounds() == [1]

    resumed = run(RoundCheckpoints(folder), **overrides)
    assert RoundCheckpoints(folder).completed_rounds() == [1, 2, 3]
    kept = {p.name for p in (folder / "round_001").iterdir()}
    assert "policy.safetensors" in kept and "optimizer.safetensors" not in kept  # pruned
    assert resumed.ppo_history["round"].tolist() == [0, 1, 2, 3]
    assert resumed.stop_reason == unkilled.stop_reason
    expected, actual = _numeric(unkilled.ppo_history), _numeric(resumed.ppo_history)
    assert list(actual.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, atol=TOLERANCE, rtol=0)
    expected_weights, actual_weights = _weights(unkilled), _weights(resumed)
    # Rounds 2 and 3 trained: a resume that restored round 1 and trained nothing would fail below.
    moved = max(
        (expected_weights["round_003"][k] - v).abs().max().item()
        for k, v in expected_weights["round_001"].items()
    )
    assert moved > 100 * TOLERANCE
    assert list(actual_weights) == ["round_001", "round_002", "round_003"]
    for name, tensors in expected_weights.items():
        for key, tensor in tensors.items():
            difference = (actual_weights[name][key] - tensor).abs().max().item()
            assert difference <= TOLERANCE, (name, key, difference)


def test_a_resume_with_other_parameters_is_refused_naming_the_keys(tmp_path):
    checkpoints = RoundCheckpoints(tmp_path / "run")
    run(checkpoints, rounds=1)
    with pytest.raises(ResumeMismatchError, match=r"ppo\.learning_rate, rounds differ"):
        run(checkpoints, rounds=3, ppo={"learning_rate": 1e-3})
    assert checkpoints.completed_rounds() == [1]  # the refused run wrote nothing


def test_a_completed_run_rerun_with_its_version_trains_nothing_more(tmp_path, monkeypatch):
    checkpoints = RoundCheckpoints(tmp_path / "run")
    first = run(checkpoints, rounds=2)

    def no_training(*args, **kwargs):
        raise AssertionError("a completed run trained again")

    monkeypatch.setattr(rounds, "run_updates", no_training)
    again = run(checkpoints, rounds=2)
    pd.testing.assert_frame_equal(_numeric(again.ppo_history), _numeric(first.ppo_history))
    assert list(again.round_policies) == ["round_001", "round_002"]


def test_a_torn_round_folder_is_never_read_and_is_cleaned_up(tmp_path, monkeypatch):
    checkpoints = RoundCheckpoints(tmp_path / "run")
    run_updates = rounds.run_updates

    def crash_in_round_2(trainer, batches, params, count, **kwargs):
        if kwargs["label"] == "ppo round 2":
            raise RuntimeError("killed")
        return run_updates(trainer, batches, params, count, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(rounds, "run_updates", crash_in_round_2)
        with pytest.raises(RuntimeError, match="killed"):
            run(checkpoints, rounds=2)
    # What a writer killed on this host leaves: its staging folder, owned by a pid now gone.
    torn = checkpoints.folder / staging_name("round_002").replace(f"-{os.getpid()}-", "-999999999-")
    torn.mkdir()
    (torn / "policy.safetensors").write_bytes(b"torn")
    assert checkpoints.completed_rounds() == [1]
    resumed = run(checkpoints, rounds=2)
    assert checkpoints.completed_rounds() == [1, 2]
    assert not torn.exists()
    assert math.isfinite(resumed.ppo_history["reward_mean"].iloc[-1])


def test_the_catalog_entry_is_the_run_versions_folder(tmp_path):
    version = "2000-01-01T00.00.00.000Z"
    dataset = RoundCheckpointsDataset(
        filepath=str(tmp_path / "ppo_checkpoints"), version=Version(None, version)
    )
    folder = dataset.load().folder
    assert folder == tmp_path / "ppo_checkpoints" / version / "ppo_checkpoints"
    assert RoundCheckpoints(folder).completed_rounds() == []  # a new run starts empty
    with pytest.raises(Exception, match="written round by round"):
        dataset.save({})
    with pytest.raises(Exception, match="must be a local path"):
        RoundCheckpointsDataset(filepath="s3://bucket/ppo_checkpoints")


def test_a_pinned_run_version_names_the_checkpoint_folder_in_the_project_catalog(
    tmp_project, monkeypatch
):
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    from alignment_stages.run_identity import RUN_VERSION_VARIABLE

    version = "2000-01-01T00.00.00.000Z"
    monkeypatch.setenv(RUN_VERSION_VARIABLE, version)
    bootstrap_project(tmp_project)
    with settings.SESSION_CLASS.create(project_path=tmp_project, env="test") as session:
        # The catalog as `session.run` builds it: saves at the session id, the run version.
        catalog = session.load_context()._get_catalog(save_version=session.session_id)
        checkpoints = catalog.load("ppo_checkpoints")
    expected = tmp_project / "data" / "06_models" / "ppo_checkpoints" / version / "ppo_checkpoints"
    assert checkpoints.folder.resolve() == expected.resolve()


def test_inputs_are_recorded_until_a_round_is_written_then_compared(tmp_path):
    checkpoints = RoundCheckpoints(tmp_path / "run")
    judges = {"behaviour_judges": {"rule": "any"}}
    checkpoints.check_inputs({"base_policy": "A"}, judges)
    checkpoints.check_inputs({"base_policy": "B"}, judges)  # killed before round 1: any inputs
    run(checkpoints, rounds=1)
    checkpoints.check_inputs({"base_policy": "B"}, judges)  # the same: resumes
    with pytest.raises(ResumeMismatchError, match=r"base_policy was B .* is C now.*base_policy:B"):
        checkpoints.check_inputs({"base_policy": "C"}, judges)
    with pytest.raises(ResumeMismatchError, match=r"parameters behaviour_judges\.rule differ"):
        checkpoints.check_inputs({"base_policy": "B"}, {"behaviour_judges": {"rule": "all"}})
