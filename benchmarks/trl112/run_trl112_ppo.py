"""Baseline PPO throughput: TRL 1.12.0's `trl.experimental.ppo.PPOTrainer` on a fixed tiny config.

Run with the TRL 1.12 venv (`bash benchmarks/trl112/setup_venv.sh` prints its python), on model
directories written by `benchmarks/trl112/make_models.py`:

    benchmarks/.venv-trl112/bin/python benchmarks/trl112/run_trl112_ppo.py --models DIR

DIR holds `policy/` and `reward/` (`save_pretrained` model + tokenizer each) and optionally
`prompts.json` (a list of prompt strings; without it the demo prompts are generated here).
The models are built as in TRL's own `examples/scripts/ppo/ppo.py`: the policy and a second copy
as the frozen reference, the value model initialised from the reward model, and the reward model.
Prompts are user turns through the chat template with `add_generation_prompt`, left-padded.

Timing: one PPO update = one rollout batch (generate, reference/value/reward forwards, GAE) plus
`ppo_epochs` x `num_mini_batches` optimizer steps, exactly as `PPOTrainer.train()` runs it. A
callback stamps the end of each update; the measured window runs from the end of the warm-up
updates to the end of the last update, so it excludes model loading, trainer construction and
warm-up, and includes TRL's per-update metric logging (which is part of its loop). Rollout tokens
are counted as the fixed budget, `batch_size x response_length` per update, the same way as for
our own implementation. Stdout carries one JSON line; TRL's own prints go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    TrainerCallback,
)
from trl.experimental.ppo import PPOConfig, PPOTrainer  # noqa: E402

from datasets import Dataset  # noqa: E402

REPO_SRC = Path(__file__).resolve().parents[2] / "src"


class UpdateClock(TrainerCallback):
    """Wall-clock stamps at the start of training and at the end of every PPO update."""

    def __init__(self) -> None:
        self.train_begin: float | None = None
        self.update_ends: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.train_begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.update_ends.append(time.perf_counter())


def own_peak_rss_mb() -> float:
    """VmHWM, the high-water mark of this process's memory map (reset by exec); ru_maxrss where
    /proc is missing."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="dir with policy/ and reward/")
    parser.add_argument("--prompts", type=int, default=64, help="prompts in the train dataset")
    parser.add_argument("--batch-size", type=int, default=16, help="rollouts per PPO update")
    parser.add_argument("--response-length", type=int, default=32)
    parser.add_argument("--ppo-epochs", type=int, default=4)
    parser.add_argument("--num-mini-batches", type=int, default=2)
    parser.add_argument("--updates", type=int, default=4, help="measured PPO updates")
    parser.add_argument("--warmup-updates", type=int, default=1, help="untimed updates first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lora-r", type=int, default=0,
                        help="LoRA rank on the attention projections (0: full fine-tune)")  # fmt: skip
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    if args.updates < 1 or args.warmup_updates < 0:
        parser.error("--updates must be >= 1 and --warmup-updates >= 0")
    if args.batch_size % args.num_mini_batches:
        parser.error("--batch-size must be a multiple of --num-mini-batches")
    return args


def load_prompts(models_dir: Path, count: int) -> list[str]:
    """`count` prompts from DIR/prompts.json, else the demo prompts; cycled when too few."""
    path = models_dir / "prompts.json"
    if path.is_file():
        prompts = json.loads(path.read_text())
    else:  # same list as make_models.benchmark_prompts(0); pyarrow comes with `datasets`
        sys.path.insert(0, str(REPO_SRC))
        from alignment_stages.demo.generate import generate_demo_pairs

        prompts = list(dict.fromkeys(pair.prompt for pair in generate_demo_pairs(0)))
    if not prompts:
        raise ValueError(f"no prompts in {path}")
    return [prompts[i % len(prompts)] for i in range(count)]


def prompt_dataset(tokenizer, prompts: list[str]) -> Dataset:
    """Token ids of each prompt as a user turn followed by the assistant header."""
    input_ids = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        for prompt in prompts
    ]
    return Dataset.from_dict({"input_ids": input_ids})


def main() -> None:
    args = parse_args()
    transformers.set_seed(args.seed)
    policy_dir, reward_dir = args.models / "policy", args.models / "reward"

    # Untimed: loading. Left padding for the prompts as in TRL's example script; the pad token is
    # distinct from EOS, so TRL's pad-based masks never hide an EOS.
    tokenizer = AutoTokenizer.from_pretrained(policy_dir, padding_side="left")
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise ValueError("the tokenizer needs a pad token distinct from EOS")
    load = {"dtype": torch.float32, "use_safetensors": True}
    policy = AutoModelForCausalLM.from_pretrained(policy_dir, **load)
    # With LoRA the reference is the policy with its adapter disabled, TRL's own peft path.
    ref_policy = None if args.lora_r else AutoModelForCausalLM.from_pretrained(policy_dir, **load)
    peft_config = None
    if args.lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0,
                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                 task_type="CAUSAL_LM")  # fmt: skip
    value_model = AutoModelForSequenceClassification.from_pretrained(
        reward_dir, num_labels=1, **load
    )
    reward_model = AutoModelForSequenceClassification.from_pretrained(
        reward_dir, num_labels=1, **load
    )
    train_dataset = prompt_dataset(tokenizer, load_prompts(args.models, args.prompts))
    total_updates = args.warmup_updates + args.updates

    clock = UpdateClock()
    with tempfile.TemporaryDirectory(prefix="trl112-ppo-") as output_dir:
        config = PPOConfig(
            output_dir=output_dir,
            seed=args.seed,
            # TRL's config turns bf16 on unless told otherwise; here it is the asked-for precision
            # (bf16 is accelerate's autocast; TRL also casts the LoRA modules to bf16).
            use_cpu=args.device == "cpu",
            bf16=args.precision == "bf16",
            fp16=False,
            report_to="none",
            save_strategy="no",
            eval_strategy="no",
            push_to_hub=False,
            # PPOTrainer never enables gradient checkpointing itself; set off for clarity.
            gradient_checkpointing=False,
            # One update = one batch of `batch_size` rollouts, all generated in one call, then
            # `num_ppo_epochs` passes over `num_mini_batches` minibatches (one optimizer step
            # each, no gradient accumulation).
            per_device_train_batch_size=args.batch_size,
            gradient_accumulation_steps=1,
            local_rollout_forward_batch_size=args.batch_size,
            num_mini_batches=args.num_mini_batches,
            num_ppo_epochs=args.ppo_epochs,
            total_episodes=total_updates * args.batch_size,
            response_length=args.response_length,
            stop_token_id=tokenizer.eos_token_id,
            temperature=1.0,
            missing_eos_penalty=1.0,
            # Sample tables need an eval set and only print; they are not part of PPO.
            num_sample_generations=0,
            logging_steps=1,
            disable_tqdm=True,
        )
        trainer = PPOTrainer(
            args=config,
            processing_class=tokenizer,
            model=policy,
            ref_model=ref_policy,
            reward_model=reward_model,
            value_model=value_model,
            train_dataset=train_dataset,
            peft_config=peft_config,
            callbacks=[clock],
        )
        with contextlib.redirect_stdout(sys.stderr):
            trainer.train()

    if len(clock.update_ends) != total_updates:
        raise RuntimeError(f"expected {total_updates} updates, timed {len(clock.update_ends)}")
    start = clock.update_ends[args.warmup_updates - 1] if args.warmup_updates else clock.train_begin
    seconds = clock.update_ends[-1] - start
    ends = [start, *clock.update_ends[args.warmup_updates :]]
    update_seconds = [round(b - a, 4) for a, b in zip(ends, ends[1:], strict=False)]
    rollout_tokens = args.updates * args.batch_size * args.response_length
    last_log = trainer.state.log_history[-1] if trainer.state.log_history else {}
    result = {
        "impl": "trl112",
        "rollout_tokens_per_second": round(rollout_tokens / seconds, 2),
        "seconds_per_update": round(seconds / args.updates, 4),
        "updates": args.updates,
        "update_seconds": update_seconds,
        "warmup_updates": args.warmup_updates,
        "batch_size": args.batch_size,
        "response_length": args.response_length,
        "ppo_epochs": args.ppo_epochs,
        "num_mini_batches": args.num_mini_batches,
        "prompts": args.prompts,
        "lora_r": args.lora_r,
        "precision": args.precision,
        "device": args.device,
        # This process's own peak, model loading included. Not ru_maxrss: Linux carries the
        # parent's high-water mark across fork and exec, so it reported the benchmark's own peak.
        "peak_rss_mb": own_peak_rss_mb(),
        "torch_threads": torch.get_num_threads(),
        "last_update_eos_tokens": last_log.get("val/num_eos_tokens"),
        "versions": {
            "trl": trl.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
