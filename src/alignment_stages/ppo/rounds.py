"""PPO shaping as a sequence of rounds: train, evaluate on `eval_prompts`, checkpoint, guard.

One `ppo_history` row per round (round 0 is the starting policy), the stability gate reads
them. A round that diverges (non-finite loss, or approximate KL above the hard ceiling) is
recorded and ends the run; the output policy is the last healthy round.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from alignment_stages.evaluation.snapshot import evaluate_policy
from alignment_stages.judges.panel import JudgePanel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.config import PPOShapingParams
from alignment_stages.ppo.trainer import NonFiniteLossError, PPOTrainer, ScoreNormalisation
from alignment_stages.reward.scoring import score_responses

logger = logging.getLogger(__name__)


@dataclass
class ShapingResult:
    ppo_policy: ModelArtifact  # the last healthy round
    ppo_history: pd.DataFrame  # one row per round, round 0 = the starting policy
    round_policies: dict[str, ModelArtifact]  # "round_001" … for every healthy round
    stop_reason: str


def cycle_prompts(prompts: pd.DataFrame, batch_size: int, seed: int) -> Iterator[list[list[dict]]]:
    """Seeded shuffles of `ppo_prompts`, one pass after another, in batches."""
    messages = [as_messages(p) for p in prompts["prompt_messages"]]
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            refill = list(range(len(messages)))
            rng.shuffle(refill)
            order += refill
        batch, order = order[:batch_size], order[batch_size:]
        yield [messages[i] for i in batch]


def _train_round(
    trainer: PPOTrainer, batches, params: PPOShapingParams
) -> tuple[list[dict], str | None]:
    """Run one round's updates; returns their statistics and a divergence reason, if any."""
    updates: list[dict[str, float]] = []
    for _ in range(params.updates_per_round):
        try:
            stats = trainer.step(next(batches))
        except NonFiniteLossError as error:
            return updates, str(error)
        updates.append(stats)
        if stats["ppo/approx_kl"] > params.ppo.max_approx_kl:
            return (
                updates,
                f"approx KL {stats['ppo/approx_kl']:.3f} above max_approx_kl={params.ppo.max_approx_kl}",
            )
    return updates, None


def _mean_stats(updates: list[dict[str, float]]) -> dict[str, float]:
    return (
        {key: sum(u[key] for u in updates) / len(updates) for key in updates[0]} if updates else {}
    )


def run_shaping_rounds(
    base_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    judges: JudgePanel,
    params: PPOShapingParams,
) -> ShapingResult:
    seed_everything(params.seed)
    chosen = reward_model_metrics["score_chosen"]
    trainer = PPOTrainer(
        policy=base_policy,
        critic_init=reward_model,
        score_fn=lambda prompts, texts, ids: score_responses(reward_model, prompts, texts),
        params=params.ppo,
        lora=params.lora if params.lora.enabled else None,
        normalisation=ScoreNormalisation(chosen["mean"], max(chosen["std"], 1e-6)),
    )
    evaluate = lambda policy, previous: evaluate_policy(  # noqa: E731
        policy,
        base_policy,
        reward_model,
        judges,
        eval_prompts,
        capability_probe,
        params.eval,
        previous,
    )
    metrics, _, labels = evaluate(base_policy, None)
    history = [{"round": 0, "checkpoint": "base_policy", "healthy": True, "updates": 0, **metrics}]
    round_policies: dict[str, ModelArtifact] = {}
    healthy_policy, stop_reason = base_policy, f"completed {params.rounds} rounds"
    batches = cycle_prompts(ppo_prompts, params.ppo.rollout_batch_size, params.seed)
    for round_index in range(1, params.rounds + 1):
        started = time.perf_counter()
        updates, diverged = _train_round(trainer, batches, params)
        row = {"round": round_index, "updates": len(updates), **_mean_stats(updates)}
        if diverged:
            history.append({**row, "checkpoint": None, "healthy": False, "stop_reason": diverged})
            stop_reason = f"round {round_index} diverged: {diverged}; kept round {round_index - 1}"
            logger.warning("ppo/diverged round=%d %s", round_index, diverged)
            break
        snapshot = ModelArtifact(
            model=copy.deepcopy(trainer.unwrapped_policy).eval(), tokenizer=base_policy.tokenizer
        )
        metrics, _, labels = evaluate(snapshot, labels)
        name = f"round_{round_index:03d}"
        round_policies[name], healthy_policy = snapshot, snapshot
        history.append(
            {
                **row,
                "checkpoint": name,
                "healthy": True,
                **metrics,
                "seconds": time.perf_counter() - started,
            }
        )
        logger.info(
            "ppo/round=%d eval reward=%.3f violation_rate=%.3f kl_to_base=%.2f probe_perplexity=%.2f",
            round_index, metrics["reward_mean"], metrics["violation_rate"], metrics["kl_to_base"], metrics["probe_perplexity"],
        )  # fmt: skip
        gain = metrics["reward_mean"] - history[-2]["reward_mean"]
        if (
            params.early_stop_min_gain is not None
            and round_index > 1
            and gain < params.early_stop_min_gain
        ):
            stop_reason = f"round {round_index} gained {gain:.4f} < early_stop_min_gain={params.early_stop_min_gain}"
            break
    frame = pd.DataFrame(history)
    frame["reward_gain"] = frame["reward_mean"].diff()
    return ShapingResult(healthy_policy, frame, round_policies, stop_reason)
