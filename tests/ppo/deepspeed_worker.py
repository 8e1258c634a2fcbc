"""Run by `accelerate launch --config_file deploy/accelerate/zero{2,3}.yaml --num_processes 2`
from test_deepspeed.py: the PPO trainer under accelerate's DeepSpeed plugin on CPU (DeepSpeed's
CPU accelerator, gloo), two updates, then each rank writes what it saw.

Before the trainer, the worker makes the call the trainer used to make, `prepare(policy,
critic, optimizer)`, and records accelerate's AssertionError. A spy on `deepspeed.initialize`
records what accelerate hands DeepSpeed, then calls the real one.

One CPU-only setting: the accelerator names gloo. On a machine without CUDA, accelerate 1.15
finds no backend for DeepSpeed and reports one process of rank 0 on every rank, although
DeepSpeed's own init has already joined both ranks over gloo; on GPUs accelerate picks nccl.
"""

import json
import sys
from pathlib import Path

import deepspeed
import deepspeed.comm.torch
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs

from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.rollout import TokenValueModel
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy

# DeepSpeed's CPU backend compiles a shared-memory all-reduce kernel at start-up (about 60 s and
# a C++ compiler); it only speeds up inference collectives, so it is skipped: gloo does the rest.
deepspeed.comm.torch.build_shm_op = lambda: None
INITIALIZED: list[dict] = []
_initialize = deepspeed.initialize


def _recording_initialize(*args, **kwargs):
    config = kwargs["config_params"]
    INITIALIZED.append(
        {
            "model": type(kwargs["model"]).__name__,
            "submodules": sorted(name for name, _ in kwargs["model"].named_children()),
            "optimizer": type(kwargs.get("optimizer")).__name__,
            "zero_stage": config["zero_optimization"]["stage"],
            "train_micro_batch_size_per_gpu": config["train_micro_batch_size_per_gpu"],
            "gradient_clipping": config["gradient_clipping"],
        }
    )
    return _initialize(*args, **kwargs)


deepspeed.initialize = _recording_initialize


def two_model_prepare_error(accelerator: Accelerator, policy, reward) -> str:
    """The call PPOTrainer made before PolicyAndValue: accelerate refuses it under DeepSpeed
    before building anything, so the same accelerator can prepare the trainer afterwards."""
    value_model = TokenValueModel(reward.model)
    optimizer = torch.optim.Adam([*policy.model.parameters(), *value_model.parameters()])
    try:
        accelerator.prepare(policy.model, value_model, optimizer)
    except AssertionError as error:
        return str(error)
    return ""


def weight_checksum(model: torch.nn.Module) -> float:
    # ZeRO-3 keeps a shard of each weight per rank; gather the whole weights to compare ranks.
    with deepspeed.zero.GatheredParameters(list(model.parameters())):
        return sum(p.double().sum().item() for p in model.parameters())


def main(out_dir: Path, estimator: str) -> None:
    # Every model is built before the Accelerator, as the launcher loads them: once a ZeRO-3
    # accelerator exists, transformers builds new models already partitioned (zero.Init).
    seed_everything(0)  # same initial weights on every rank
    policy = tiny_policy()
    reward = reward_model_from_policy(policy)
    spare = tiny_policy()
    spare_reward = reward_model_from_policy(spare)
    accelerator = Accelerator(kwargs_handlers=[InitProcessGroupKwargs(backend="gloo")])
    rank = accelerator.process_index
    refused = two_model_prepare_error(accelerator, spare, spare_reward)
    samples = 2 if estimator == "rloo" else 1
    params = PPOParams(rollout_batch_size=4, response_length=6, num_minibatches=2,
                       learning_rate=1e-2, advantage_estimator=estimator,
                       samples_per_prompt=samples)  # fmt: skip
    # Rank 0 scores its rollouts 0, 1, 0, 1 and rank 1 scores 1, 2, 1, 2: the global mean is 1,
    # and each rloo group of two holds different scores, so its advantages are not all zero.
    trainer = PPOTrainer(
        policy, reward,
        lambda prompts, texts, ids: rank + torch.arange(len(texts)).remainder(2).float(),
        params, accelerator=accelerator,
    )  # fmt: skip
    before = weight_checksum(trainer.unwrapped_policy)
    torch.manual_seed(100 + rank)  # different rollouts per rank
    prompts = [[{"role": "user", "content": f"Question {rank}-{i // samples}?"}] for i in range(4)]
    stats = [trainer.step(prompts) for _ in range(2)]
    result = {
        "world": accelerator.num_processes,
        "deepspeed": accelerator.distributed_type == DistributedType.DEEPSPEED,
        "engine": type(trainer.model).__name__,
        "refused": refused,
        "initialized": INITIALIZED,
        "stats": stats,
        "checksum_before": before,
        "checksum": weight_checksum(trainer.unwrapped_policy),
    }
    (out_dir / f"rank{rank}.json").write_text(json.dumps(result))
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
