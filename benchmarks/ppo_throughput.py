"""PPO throughput: the project's PPO against TRL 1.12's PPOTrainer, on the same models and config.

    python benchmarks/ppo_throughput.py [--size smoke|default] [--batch-size 16] [--response-length 32]

Both start from the same untrained tiny Llama policy at the project's default size and the same
reward/value initialisation (`benchmarks/trl112/make_models.py`), roll out from the same demo
prompts, and run full PPO updates: generation, reward scoring, reference and value passes,
`ppo_epochs` × `num_mini_batches` optimisation steps. One untimed warm-up update comes first.
TRL 1.12 (the last release with PPO) runs in its own virtual environment, built on first use by
`benchmarks/trl112/setup_venv.sh` (about 90 s). Rollout tokens are counted as the fixed budget
batch × response_length per update for both. The last line is
`ratio_vs_trl112=<ours / theirs, rollout tokens per second>`.
"""

from __future__ import annotations

import argparse
import json
import resource
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
from alignment_stages.ppo.config import PPOParams  # noqa: E402
from alignment_stages.ppo.trainer import PPOTrainer  # noqa: E402
from alignment_stages.reward.scoring import score_responses  # noqa: E402


def run_ours(models: Path, args: argparse.Namespace) -> dict:
    """The real `ppo_shaping` update path: `PPOTrainer.step` with reward-model scoring."""
    seed_everything(args.seed)
    tokenizer = load_tokenizer(models / "policy")
    policy = ModelArtifact(
        load_pretrained_model(models / "policy", "causal_lm", dtype=torch.float32), tokenizer
    )
    reward = ModelArtifact(
        load_pretrained_model(models / "reward", "sequence_classification", dtype=torch.float32), tokenizer,
        kind="sequence_classification",
    )  # fmt: skip
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ppo-bench-") as tmp:
        models = Path(tmp)
        write_benchmark_models(models, args.seed, args.size)
        ours = run_ours(models, args)  # ours in this process, TRL's in a fresh one afterwards
        theirs = run_trl112(models, args)
    print(json.dumps(ours))
    print(json.dumps(theirs))
    split = ours["time_split_seconds_per_update"]
    print(f"ours: {ours['rollout_tokens_per_second']:.0f} tok/s, {ours['seconds_per_update']:.3f} s/update, "
          f"peak RSS {ours['peak_rss_mb']:.0f} MB, split {split}")  # fmt: skip
    print(f"trl 1.12: {theirs['rollout_tokens_per_second']:.0f} tok/s, {theirs['seconds_per_update']:.3f} s/update, "
          f"peak RSS {theirs['peak_rss_mb']:.0f} MB")  # fmt: skip
    print(
        f"ratio_vs_trl112={ours['rollout_tokens_per_second'] / theirs['rollout_tokens_per_second']:.2f}"
    )


if __name__ == "__main__":
    main()
