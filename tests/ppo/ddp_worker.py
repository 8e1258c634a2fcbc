"""Run by `accelerate launch --cpu --num_processes 2` from test_distributed.py: two PPO updates
in DDP over gloo, each rank on its own prompts, then each rank writes what it saw."""

import faulthandler
import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy


def main(out_dir: Path) -> None:
    faulthandler.dump_traceback_later(180, exit=True)  # a hang fails with every thread's stack
    accelerator = Accelerator(cpu=True)
    seed_everything(0)  # same initial weights on every rank
    policy = tiny_policy()
    params = PPOParams(
        rollout_batch_size=4, response_length=6, num_minibatches=2, learning_rate=1e-2
    )
    rank = accelerator.process_index
    trainer = PPOTrainer(
        policy, reward_model_from_policy(policy),
        lambda prompts, texts, ids: torch.full((len(texts),), float(rank)),  # rank 0 scores 0, rank 1 scores 1
        params, accelerator=accelerator,
    )  # fmt: skip
    torch.manual_seed(100 + rank)  # different rollouts per rank
    prompts = [[{"role": "user", "content": f"Question {rank}-{i}?"}] for i in range(4)]
    stats = [trainer.step(prompts) for _ in range(2)]
    checksum = sum(p.double().sum().item() for p in trainer.unwrapped_policy.parameters())
    result = {
        "rank": rank,
        "world": accelerator.num_processes,
        "stats": stats,
        "checksum": checksum,
    }
    (out_dir / f"rank{rank}.json").write_text(json.dumps(result))
    # The DDP wrapper goes first, while its process group still lives: freed at interpreter exit,
    # after the group was destroyed, its reducer hung one rank in about one launch in ten on a
    # loaded 2-core machine (both ranks had written their results). `free_memory` drops the
    # accelerator's references to the prepared model and optimizer and collects them.
    del trainer
    accelerator.free_memory()
    # Both ranks reach the teardown together, then destroy the process group: gloo threads still
    # alive at interpreter exit can abort a rank ("terminate called without an active exception").
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
