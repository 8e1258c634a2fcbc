"""The probe's two short runs from one start, at equal budgets.

PPO and DPO are only comparable when they got the same resources: the same number of
optimizer steps, or the same measured training time (`stage_probe.budget.match`). Each run
reports both, so a reader sees the budgets were equal in the unit chosen and what they were
in the other.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alignment_stages.dpo.refine import refine_with_dpo
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.prompt_cycles import cycle_prompts, within_prompt_budget
from alignment_stages.ppo.recorder import RoundRecorder, ShapingInputs
from alignment_stages.ppo.rounds import build_ppo_trainer
from alignment_stages.ppo.updates import run_updates
from alignment_stages.probe.config import StageProbeParams

logger = logging.getLogger(__name__)


@dataclass
class ShortRun:
    policy: ModelArtifact
    optimizer_steps: int
    seconds: float  # training wall time, evaluation excluded
    # PPO: one row per update (row 0 the start), evaluated on eval_prompts; DPO: dpo_history
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    def budget(self) -> dict[str, Any]:
        return {"optimizer_steps": self.optimizer_steps, "seconds": self.seconds}


def plain_policy(start: ModelArtifact) -> ModelArtifact:
    """A LoRA start (a saved `dpo_policy`) with its adapter merged into a copy, so both short
    runs and the KL to the start see the same weights (TRL refuses a PeftModel with a new
    adapter; PPO's LoRA reference would otherwise drop the start's adapter)."""
    if not start.is_lora:
        return start
    return ModelArtifact(copy.deepcopy(start.model).merge_and_unload(), start.tokenizer, start.kind)


def run_short_ppo(
    start: ModelArtifact,
    reward_model: ModelArtifact,
    reward_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    protocol: EvalProtocol,
    params: StageProbeParams,
    seed: int,
) -> ShortRun:
    """PPO updates until the budget is spent, each followed by an evaluation under `protocol`
    (the start as its base, `params.ppo.eval` as its sampling), so the spread across updates
    is measured (question 2). The updates go through the shaping rounds' own loop
    (`ppo.updates.run_updates`): a probe run stops where a shaping run would."""
    by_seconds = params.budget.match == "seconds"
    shaping = params.ppo.model_copy(
        update={"seed": seed, "rounds": params.updates, "updates_per_round": 1}
    )
    # 1. Seed, build the trainer and evaluate the start (row 0).
    seed_everything(seed)
    ppo_prompts = within_prompt_budget(ppo_prompts, start.tokenizer, shaping.ppo.max_prompt_tokens)
    inputs = ShapingInputs(start, reward_model, reward_metrics, ppo_prompts, protocol.judges,
                           protocol)  # fmt: skip
    trainer = build_ppo_trainer(inputs, shaping)
    recorder = RoundRecorder(protocol, start, shaping)
    batches = cycle_prompts(
        ppo_prompts,
        shaping.ppo.rollout_batch_size,
        seed,
        shaping.ppo.samples_per_prompt,
        shaping.ppo.category_mix,
    )
    # 2. Update until `updates` are done, or `budget.seconds` of training have passed.
    seconds, updates = 0.0, 0
    while (seconds < params.budget.seconds) if by_seconds else (updates < params.updates):
        run = run_updates(trainer, batches, shaping.ppo, 1, first_step=updates + 1,
                          label=f"probe ppo seed={seed}")  # fmt: skip
        seconds += run.seconds
        if run.diverged:
            recorder.record_diverged(updates + 1, run.row(), run.diverged)
            break
        updates += 1
        # 3. Evaluate the update's policy (its own snapshot; the live model keeps training).
        recorder.record_healthy(updates, trainer.unwrapped_policy, run.row())
    steps = updates * shaping.ppo.ppo_epochs * shaping.ppo.num_minibatches
    result = recorder.result()
    logger.info("probe/ppo seed=%d updates=%d steps=%d seconds=%.1f", seed, updates, steps, seconds)
    return ShortRun(result.ppo_policy, steps, seconds, result.ppo_history)


def sample_pairs_like(
    preference_train: pd.DataFrame, ppo_prompts: pd.DataFrame, n: int, seed: int
) -> pd.DataFrame:
    """Up to `n` pairs whose prompt categories come in the shares they have among
    `ppo_prompts` (a stratified sample), so DPO learns on the kind of prompts PPO is shaped on,
    not on the pairs' own mix. When a category has fewer pairs than its share asks for, every
    category shrinks alike: the mix is kept, the sample is smaller (DPO cycles over it)."""
    pair_category = preference_train["category"].fillna("uncategorised").astype(str)
    share = ppo_prompts["category"].fillna("uncategorised").astype(str).value_counts(normalize=True)
    available = pair_category.value_counts()
    shared = [c for c in share.index if c in available.index]
    if not shared:
        raise ValueError(
            "preference_train shares no prompt category with ppo_prompts "
            f"({sorted(available.index)} vs {sorted(share.index)}): DPO's pairs cannot "
            "follow PPO's prompts"
        )
    share = share[shared] / share[shared].sum()
    scale = min(1.0, *(available[c] / (share[c] * n) for c in shared))
    generator = np.random.default_rng(seed)
    picks = [
        generator.choice(np.flatnonzero(pair_category.to_numpy() == c),
                         size=max(1, int(share[c] * n * scale)), replace=False)
        for c in shared
    ]  # fmt: skip
    return preference_train.iloc[np.sort(np.concatenate(picks))]


def run_short_dpo(
    start: ModelArtifact,
    preference_train: pd.DataFrame,
    ppo_prompts: pd.DataFrame,
    params: StageProbeParams,
    seed: int,
) -> ShortRun:
    """DPO for PPO's number of optimizer steps (cycling over the pairs), or for the same
    training seconds, on pairs whose prompts follow PPO's."""
    by_seconds = params.budget.match == "seconds"
    steps = None if by_seconds else params.ppo_optimizer_steps
    wanted = len(preference_train) if by_seconds else steps * params.dpo.training.batch_size
    pairs = sample_pairs_like(preference_train, ppo_prompts, wanted, seed)
    policy, history = refine_with_dpo(
        start,
        pairs,
        params.dpo.model_copy(update={"seed": seed}),
        max_steps=steps,
        max_seconds=params.budget.seconds if by_seconds else None,
    )
    last = history.iloc[-1]
    logger.info(
        "probe/dpo seed=%d pairs=%d steps=%d seconds=%.1f",
        seed, len(pairs), int(last["optimizer_steps"]), last["seconds"],
    )  # fmt: skip
    return ShortRun(policy, int(last["optimizer_steps"]), float(last["seconds"]), history)


# Columns of a short PPO's per-update history that the recommendation and its readers use.
HISTORY_COLUMNS = ("round", "healthy", "reward_mean", "reward_mean_se", "violation_rate",
                   "violation_rate_se", "label_flip_rate", "samples", "kl_to_base", "ppo/kl",
                   "ppo/reward", "ppo/approx_kl")  # fmt: skip


def seed_key(seed: int) -> str:
    return f"seed_{seed}"


def runs_by_seed(runs: dict[int, ShortRun]) -> tuple[dict[str, ModelArtifact], dict[str, Any]]:
    """`{seed_<n>: policy}` for the catalog, and each run's budget and history as JSON."""
    policies = {seed_key(seed): run.policy for seed, run in runs.items()}
    records = {
        seed_key(seed): {
            **run.budget(),
            "history": run.history.reindex(
                columns=[c for c in HISTORY_COLUMNS if c in run.history.columns]
            ).to_dict(orient="records")
            if "healthy" in run.history.columns
            else run.history.to_dict(orient="records"),
        }
        for seed, run in runs.items()
    }
    return policies, records
