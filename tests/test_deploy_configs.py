"""The accelerate configs in deploy/accelerate/ are read the way `accelerate launch` reads them.

Each file goes through accelerate's own loader and launch validation, then through the function
that turns it into the workers' environment (`prepare_deepspeed_cmd_env` for DeepSpeed,
`prepare_multi_gpu_env` for DDP and FSDP); the plugin a worker's `Accelerator` builds is then
constructed from that environment. Nothing here needs a GPU or DeepSpeed itself; running the
configs is `tests/ppo/test_deepspeed.py` (ZeRO-2 and ZeRO-3, on CPU) and docs/deployment.md
says which need a GPU to verify.
"""

from __future__ import annotations

import os

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

from alignment_stages.launcher import accelerate_command
from alignment_stages.parameters import LauncherParams
from alignment_stages.stages.ppo_shaping import shape_policy_stage
from tests.conftest import REPO_ROOT

CONFIGS = REPO_ROOT / "deploy" / "accelerate"
EXPECTED = {
    "ddp.yaml": DistributedType.MULTI_GPU,
    "zero2.yaml": DistributedType.DEEPSPEED,
    "zero3.yaml": DistributedType.DEEPSPEED,
    "fsdp.yaml": DistributedType.FSDP,
}


def worker_environment(config_file) -> dict[str, str]:
    """What `accelerate launch --config_file F --num_processes 2` exports to each worker."""
    args = launch_command_parser().parse_args(
        ["--config_file", str(config_file), "--num_processes", "2", "train.py"]
    )
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        # as `launch_command` does before it calls the DeepSpeed launcher
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        return prepare_deepspeed_cmd_env(args)[1]
    return prepare_multi_gpu_env(args)


def test_deploy_ships_exactly_the_four_configs():
    assert sorted(path.name for path in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_config_loads_with_accelerates_own_config_classes(name):
    config = load_config_from_file(str(CONFIGS / name))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type == EXPECTED[name]
    assert (config.num_machines, config.use_cpu) == (1, False)
    # PPO refuses an accelerator that autocasts every forward (it applies ppo.precision itself).
    assert config.mixed_precision == "no"
    environment = worker_environment(CONFIGS / name)
    assert environment["ACCELERATE_MIXED_PRECISION"] == "no"


@pytest.mark.parametrize(("name", "stage"), [("zero2.yaml", 2), ("zero3.yaml", 3)])
def test_the_deepspeed_configs_build_their_plugin_with_auto_clipping(name, stage, monkeypatch):
    for key, value in worker_environment(CONFIGS / name).items():
        monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == stage
    assert plugin.deepspeed_config["zero_optimization"]["stage"] == stage
    # Left "auto" on purpose: PPOTrainer fills them with ppo.max_grad_norm and its minibatch.
    assert plugin.deepspeed_config["gradient_clipping"] == "auto"
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"
    assert plugin.deepspeed_config["zero_optimization"]["offload_optimizer"]["device"] == "none"
    assert plugin.zero3_init_flag is False


def test_the_fsdp_config_builds_an_fsdp2_plugin_that_shards_by_decoder_layer(monkeypatch):
    for key, value in worker_environment(CONFIGS / "fsdp.yaml").items():
        monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True
    # TRANSFORMER_BASED_WRAP reads the layer classes from the prepared model's
    # `_no_split_modules`, which PolicyAndValue forwards from the policy and the critic.
    assert os.environ["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    assert plugin.auto_wrap_policy is not None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_launcher_passes_each_config_file_and_picks_a_free_port(name):
    launcher = LauncherParams(kind="accelerate", config_file=str(CONFIGS / name), num_processes=2)
    command = accelerate_command(shape_policy_stage, REPO_ROOT, launcher)
    assert command[command.index("--config_file") + 1] == str(CONFIGS / name)
    assert "--main_process_port" in command  # num_machines: 1 and no port named in the file
