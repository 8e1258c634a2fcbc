"""PPO throughput: the project's PPO against TRL 1.12's PPOTrainer, on the same models and config.

    python benchmarks/ppo_throughput.py [--size smoke|default] [--batch-size 16] [--response-length 32]

Both start from the same untrained tiny Llama policy at the project's default size and the same
reward/value initialisation (`benchmarks/trl112/make_models.py`), roll out from the same demo
prompts, and run full PPO updates: generation, reward scoring, reference and value passes,
`ppo_epochs` × `num_mini_batches` optimisation steps. One untimed warm-up update comes first.
TRL 1.12 (the last release with PPO) runs in its own virtual environment, built on first use by
`benchmarks/trl112/setup_venv.sh` (about 90 s). Rollout tokens are counted as the fixed budget
batch × response_length per update for both. The last line is
`ratio_vs_trl112=<ours / theirs, rollout tokens per second>`, the median over `--repeats` pairs
of runs. GRPO and RLOO (TRL 1.16, through the project's `ppo_shaping` path) are reported beside them.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "trl112"))

from make_models import write_benchmark_models  # noqa: E402

from alignment_stages.models.artifacts import ModelArtifact, load_pretrained_model, load_tokenizer  # noqa: E402
from alignment_stages.models.training import seed_everything  # noqa: E402
from alignment_stages.ppo.config import CriticFreeParams, PPOParams, PPOShapingParams  # noqa: E402
from alignment_stages.ppo.critic_free import TRAINERS, make_reward_function, trainer_config  # noqa: E402
from alignment_stages.ppo.trainer import PPOTrainer  # noqa: E402
from alignment_stages.reward.scoring import score_responses  # noqa: E402


def seeded_models(models: Path, seed: int) -> tuple[ModelArtifact, ModelArtifact]:
    """The benchmark's policy and reward model (fp32, sharing one tokenizer), after seeding."""
    seed_everything(seed)
    tokenizer = load_tokenizer(models / "policy")
    policy = ModelArtifact(
        load_pretrained_model(models / "policy", "causal_lm", dtype=torch.float32), tokenizer
    )
    reward = ModelArtifact(
        load_pretrained_model(models / "reward", "sequence_classification", dtype=torch.float32), tokenizer,
        kind="sequence_classification",
    )  # fmt: skip
    return policy, reward


def run_ours(models: Path, args: argparse.Namespace) -> dict:
    """The real `ppo_shaping` update path: `PPOTrainer.step` with reward-model scoring."""
    policy, reward = seeded_models(models, args.seed)
    params = PPOParams(
        rollout_batch_size=args.batch_size, response_length=args.response_length, ppo_epochs=args.ppo_epochs,
        num_minibatches=args.num_mini_batches, temperature=1.0, missing_eos_penalty=1.0,
    )  # fmt: skip
    trainer = PPOTrainer(
        policy, reward, lambda p, texts, ids: score_responses(reward, p, texts), params
    )
    prompts = json.loads((models / "prompts.json").read_text())[: args.prompts]
    batches = [
        [
            [{"role": "user", "content": prompts[(u * args.batch_size + i) % len(prompts)]}]
            for i in range(args.batch_size)
        ]
        for u in range(args.warmup_updates + args.updates)
    ]
    for batch in batches[: args.warmup_updates]:
        trainer.step(batch)
    trainer.timings.clear()
    generated = 0
    started = time.perf_counter()
    for batch in batches[args.warmup_updates :]:
        rollout = trainer.collect_rollout(batch)
        generated += rollout.responses.numel()
        trainer.update(rollout)
    seconds = time.perf_counter() - started
    tokens = args.updates * args.batch_size * args.response_length
    return {
        "impl": "alignment_stages",
        "rollout_tokens_per_second": round(tokens / seconds, 2),
        "seconds_per_update": round(seconds / args.updates, 4),
        "generated_tokens": generated,
        "time_split_seconds_per_update": {
            k: round(v / args.updates, 4) for k, v in trainer.timings.items()
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
    }


def run_critic_free(models: Path, args: argparse.Namespace, algorithm: str) -> dict:
    """GRPO or RLOO through the `ppo_shaping` path (`trainer_config`, `make_reward_function`),
    matched to PPO's work per update: one generation batch of `batch_size` completions
    (`num_generations` per prompt), then `ppo_epochs` passes (`num_iterations`) over
    `num_mini_batches` minibatches (`steps_per_generation`). No critic, so less work per token."""
    from transformers import TrainerCallback

    from datasets import Dataset

    policy, reward = seeded_models(models, args.seed)
    params = PPOShapingParams(
        algorithm=algorithm, seed=args.seed, critic_free=CriticFreeParams(num_generations=4),
        ppo=PPOParams(rollout_batch_size=args.batch_size, response_length=args.response_length,
                      num_minibatches=args.num_mini_batches, ppo_epochs=args.ppo_epochs, temperature=1.0),
    )  # fmt: skip
    steps_per_update = args.num_mini_batches * args.ppo_epochs
    config = trainer_config(
        algorithm, params, (args.warmup_updates + args.updates) * steps_per_update,
        per_device_train_batch_size=args.batch_size // args.num_mini_batches,
        steps_per_generation=args.num_mini_batches, num_iterations=args.ppo_epochs, logging_steps=1000,
    )  # fmt: skip
    prompts = json.loads((models / "prompts.json").read_text())[: args.prompts]
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in prompts])
    step_ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *_, **__):
            step_ends.append(time.perf_counter())

    trainer = TRAINERS[algorithm][0](
        model=policy.model, reward_funcs=[make_reward_function(reward, 0.0, 1.0, None, 0.0)], args=config,
        train_dataset=dataset, processing_class=policy.tokenizer, callbacks=[StepClock()],
    )  # fmt: skip
    trainer.train()
    seconds = step_ends[-1] - step_ends[args.warmup_updates * steps_per_update - 1]
    tokens = args.updates * args.batch_size * args.response_length
    return {
        "impl": f"alignment_stages.{algorithm} (TRL {__import__('trl').__version__})",
        "rollout_tokens_per_second": round(tokens / seconds, 2),
        "seconds_per_update": round(seconds / args.updates, 4),
    }


def run_trl112(models: Path, args: argparse.Namespace) -> dict:
    python = (
        subprocess.run(
            ["bash", str(HERE / "trl112" / "setup_venv.sh")],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    command = [
        python, str(HERE / "trl112" / "run_trl112_ppo.py"), "--models", str(models),
        "--prompts", str(args.prompts), "--batch-size", str(args.batch_size),
        "--response-length", str(args.response_length), "--ppo-epochs", str(args.ppo_epochs),
        "--num-mini-batches", str(args.num_mini_batches), "--updates", str(args.updates),
        "--warmup-updates", str(args.warmup_updates), "--seed", str(args.seed),
    ]  # fmt: skip
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--response-length", type=int, default=32)
    parser.add_argument("--ppo-epochs", type=int, default=4)
    parser.add_argument("--num-mini-batches", type=int, default=2)
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--warmup-updates", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=["smoke", "default"], default="smoke",
                        help="model size: the smoke environment's (the fixed tiny config) or the demo default")  # fmt: skip
    parser.add_argument(
        "--repeats", type=int, default=3, help="ours/TRL pairs; the median ratio is reported"
    )
    parser.add_argument("--skip-critic-free", action="store_true", help="PPO against TRL 1.12 only")
    args = parser.parse_args()
    if min(args.repeats, args.updates, args.batch_size, args.response_length) < 1:
        parser.error("--repeats, --updates, --batch-size and --response-length must be >= 1")
    if args.batch_size % args.num_mini_batches:
        parser.error("--batch-size must be a multiple of --num-mini-batches")
    with tempfile.TemporaryDirectory(prefix="ppo-bench-") as tmp:
        models = Path(tmp)
        write_benchmark_models(models, args.seed, args.size)
        # Ours in this process, TRL's in a fresh one right after, `repeats` times: each ratio
        # compares two runs a few seconds apart, so a slow spell of a shared machine hits both.
        pairs = [(run_ours(models, args), run_trl112(models, args)) for _ in range(args.repeats)]
        critic_free = [] if args.skip_critic_free else [
            run_critic_free(models, args, algorithm) for algorithm in ("grpo", "rloo")
        ]  # fmt: skip
    ratios = [o["rollout_tokens_per_second"] / t["rollout_tokens_per_second"] for o, t in pairs]
    for (ours, theirs), ratio in zip(pairs, ratios, strict=True):
        print(json.dumps(ours))
        print(json.dumps(theirs))
        print(f"pair ratio {ratio:.2f}")
    for result in critic_free:
        print(json.dumps(result))
        print(f"{result['impl']}: {result['rollout_tokens_per_second']:.0f} tok/s, "
              f"{result['seconds_per_update']:.3f} s/update")  # fmt: skip
    ours, theirs = pairs[sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]]
    split = ours["time_split_seconds_per_update"]
    print(f"median pair of {len(pairs)}:")
    print(f"ours: {ours['rollout_tokens_per_second']:.0f} tok/s, {ours['seconds_per_update']:.3f} s/update, "
          f"peak RSS {ours['peak_rss_mb']:.0f} MB, split {split}")  # fmt: skip
    print(f"trl 1.12: {theirs['rollout_tokens_per_second']:.0f} tok/s, {theirs['seconds_per_update']:.3f} s/update, "
          f"peak RSS {theirs['peak_rss_mb']:.0f} MB")  # fmt: skip
    print(f"ratio_vs_trl112={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
