"""`launcher`: a training stage inline, or across two processes with `accelerate launch`."""

import functools
import json

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from alignment_stages.judges.config import JudgesParams
from alignment_stages.launcher import (
    LaunchError,
    accelerate_command,
    read_values,
    run_stage,
    stage_address,
    write_values,
)
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.parameters import LauncherParams
from alignment_stages.reward.train import reward_model_from_policy
from alignment_stages.stages.ppo_shaping import ShapingStageParams, shape_policy_stage
from tests.models.tiny import tiny_policy
from tests.ppo.round_inputs import METRICS, PROBE, TABLE

# Two processes over gloo on a CPU machine: see tests/ppo/test_distributed.py for why --multi_gpu.
TWO_PROCESSES = LauncherParams(kind="accelerate", num_processes=2, extra_args=[
    "--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
], timeout_seconds=240)  # fmt: skip
PARAMS = ShapingStageParams(
    rounds=1, updates_per_round=2,
    ppo={"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 2, "learning_rate": 1e-3},
    eval={"max_new_tokens": 4, "batch_size": 8},
)  # fmt: skip
JUDGES = JudgesParams(regex={"rules": {"benign": ["go away"]}})


def _ppo_inputs() -> dict:
    policy = tiny_policy()
    return {
        "base_policy": policy, "reward_model": reward_model_from_policy(policy),
        "reward_model_metrics": METRICS, "ppo_prompts": TABLE, "eval_prompts": TABLE,
        "capability_probe": PROBE, "params": PARAMS, "judges": JUDGES,
    }  # fmt: skip


def test_inline_is_the_default_and_takes_no_accelerate_settings():
    assert ShapingStageParams().launcher.kind == "inline"
    with pytest.raises(ValidationError, match="kind: accelerate only"):
        LauncherParams(num_processes=2)
    with pytest.raises(ValidationError):
        LauncherParams(kind="torchrun")


def test_values_cross_the_process_boundary_in_safe_formats(tmp_path):
    policy = tiny_policy()
    values = {
        "policy": policy, "rounds": {"round_001": policy}, "table": TABLE, "params": PARAMS,
        "metrics": METRICS,
    }  # fmt: skip
    write_values(values, tmp_path / "values")
    assert not list((tmp_path / "values").rglob("*.bin")) and not list(
        (tmp_path / "values").rglob("*.pt")
    )
    back = read_values(tmp_path / "values")
    assert isinstance(back["policy"], ModelArtifact) and isinstance(
        back["rounds"]["round_001"], ModelArtifact
    )
    for name, tensor in policy.model.state_dict().items():
        assert torch.equal(back["policy"].model.state_dict()[name], tensor)
    pd.testing.assert_frame_equal(back["table"], TABLE)
    assert back["params"] == PARAMS and back["metrics"] == METRICS


def test_a_manifest_naming_foreign_code_is_refused(tmp_path):
    write_values({"params": PARAMS}, tmp_path / "values")
    manifest = tmp_path / "values" / "MANIFEST.json"
    manifest.write_text(json.dumps({"params": {"type": "params", "class": "os:system"}}))
    with pytest.raises(ValueError, match="refusing"):
        read_values(tmp_path / "values")


def _nested_stage(**inputs):
    def stage(**inputs):
        return inputs

    return stage


class _Stages:
    def method(self, **inputs):
        return inputs


def _renamed(**inputs):
    return inputs


_renamed.__qualname__ = "_Stages"  # its name leads a worker to another object


@pytest.mark.parametrize(
    "stage",
    [lambda **inputs: inputs, _nested_stage(), _Stages().method, functools.partial(dict), _renamed],
    ids=["lambda", "nested", "bound_method", "partial", "renamed"],
)
@pytest.mark.parametrize("kind", ["inline", "accelerate"])
def test_a_stage_a_worker_could_not_import_by_name_is_refused_before_it_runs(stage, kind):
    with pytest.raises(ValueError, match="cannot be launched"):
        run_stage(stage, {}, LauncherParams(kind=kind))


def test_the_worker_is_told_the_stage_functions_module_and_name(tmp_path):
    assert (
        stage_address(shape_policy_stage)
        == "alignment_stages.stages.ppo_shaping:shape_policy_stage"
    )
    command = accelerate_command(shape_policy_stage, tmp_path, TWO_PROCESSES)
    address = "alignment_stages.stages.ppo_shaping:shape_policy_stage"
    assert command[-4:] == ["-m", "alignment_stages.launcher", address, str(tmp_path)]


def test_a_missing_accelerate_config_is_a_clear_error(tmp_path):
    missing = LauncherParams(kind="accelerate", config_file=str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match="accelerate config"):
        run_stage(shape_policy_stage, {}, missing)


def test_a_failed_launch_raises_with_the_log_and_returns_nothing():
    broken = LauncherParams(kind="accelerate", num_processes=1, extra_args=["--no_such_flag"])
    with pytest.raises(LaunchError, match="nothing was saved") as error:
        run_stage(shape_policy_stage, _ppo_inputs(), broken)
    assert "no_such_flag" in str(error.value)


def test_ppo_shaping_launched_on_two_processes_fills_the_same_contract_as_inline():
    launched = run_stage(shape_policy_stage, _ppo_inputs(), TWO_PROCESSES)
    inline = run_stage(shape_policy_stage, _ppo_inputs(), LauncherParams())
    assert set(launched) == set(inline) == {
        "ppo_policy", "ppo_history", "ppo_round_policies", "stop_reason",
    }  # fmt: skip
    history = launched["ppo_history"]
    assert history["round"].tolist() == inline["ppo_history"]["round"].tolist() == [0, 1]
    # each update saw both processes' episodes: 2 × rollout_batch_size
    assert history.loc[1, "ppo/episodes"] == 8 and inline["ppo_history"].loc[1, "ppo/episodes"] == 4
    assert list(launched["ppo_round_policies"]) == ["round_001"]
    trained = launched["ppo_policy"].model.state_dict()
    start = tiny_policy().model.state_dict()
    assert any(not torch.equal(trained[name], start[name]) for name in start)


@pytest.mark.parametrize(
    ("block", "launcher", "key"),
    [
        ("ppo", {"kind": "torchrun"}, "kind"),
        ("reward", {"kind": "accelerate", "num_processes": 0}, "num_processes"),
        ("dpo", {"kind": "accelerate", "timeout_seconds": -1}, "timeout_seconds"),
        ("dpo", {"kind": "accelerate", "gpus": 2}, "gpus"),
    ],
)
def test_every_training_block_validates_its_launcher_naming_the_key(block, launcher, key):
    from alignment_stages.dpo.config import DPORefinementParams
    from alignment_stages.models.config import RewardModelParams

    model = {"ppo": ShapingStageParams, "reward": RewardModelParams, "dpo": DPORefinementParams}
    with pytest.raises(ValidationError, match=key):
        model[block](launcher=launcher)


def test_each_single_machine_launch_rendezvous_on_its_own_free_port(tmp_path):
    def port(launcher):
        command = accelerate_command(shape_policy_stage, tmp_path, launcher)
        flags = [i for i, arg in enumerate(command) if arg == "--main_process_port"]
        return [command[i + 1] for i in flags]

    assert len(port(TWO_PROCESSES)) == 1 and port(TWO_PROCESSES)[0] != "29500"
    own = LauncherParams(kind="accelerate", extra_args=["--main_process_port", "29612"])
    assert port(own) == ["29612"]  # the user's choice, once
    config = tmp_path / "accelerate.yaml"
    config.write_text("num_machines: 2\nmachine_rank: 0\nmain_process_ip: 10.0.0.1\n")
    assert port(LauncherParams(kind="accelerate", config_file=str(config))) == []  # multi-node
