"""Reward-model quality on held-out pairs, and the floor below which it must not reach PPO."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.reward.scoring import score_responses

MARGIN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class RewardModelQualityError(ValueError):
    """Pairwise accuracy on preference_val is below `reward_model.accuracy_floor`."""


def _grouped_accuracy(frame: pd.DataFrame, column: str) -> dict[str, dict[str, float]]:
    grouped = frame.groupby(frame[column].fillna("(none)"), sort=True)["correct"]
    return {
        str(key): {"accuracy": float(group.mean()), "pairs": int(group.size)}
        for key, group in grouped
    }


def pair_scores(
    reward_model: ModelArtifact,
    pairs: pd.DataFrame,
    batch_size: int = 64,
    max_length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) scores of the chosen and (N,) of the rejected answers of `pairs`."""
    prompts = [as_messages(p) for p in pairs["prompt_messages"]]
    chosen, rejected = (
        score_responses(reward_model, prompts, list(pairs[side]), batch_size, max_length).numpy()
        for side in ("chosen", "rejected")
    )
    return chosen, rejected


def pairwise_accuracy(reward_model: ModelArtifact, pairs: pd.DataFrame) -> float:
    """The share of pairs whose chosen answer the reward model scores above the rejected one."""
    chosen, rejected = pair_scores(reward_model, pairs)
    return float(np.mean(chosen > rejected))


def evaluate_reward_model(
    reward_model: ModelArtifact, preference_val: pd.DataFrame, batch_size: int, max_length: int
) -> dict[str, Any]:
    """Pairwise accuracy (overall, per category, per source), margins, and the chosen-score
    statistics later stages normalise rewards with."""
    chosen, rejected = pair_scores(reward_model, preference_val, batch_size, max_length)
    margins = chosen - rejected
    scored = preference_val.assign(correct=margins > 0)
    histogram_counts, histogram_edges = np.histogram(margins, bins=10)
    return {
        "pairs": len(preference_val),
        "accuracy": float(np.mean(margins > 0)),
        "accuracy_by_category": _grouped_accuracy(scored, "category"),
        "accuracy_by_source": _grouped_accuracy(scored, "source"),
        "margin": {
            "mean": float(margins.mean()),
            "std": float(margins.std()),
            "quantiles": {
                f"p{int(q * 100):02d}": float(np.quantile(margins, q)) for q in MARGIN_QUANTILES
            },
            "histogram": {
                "counts": histogram_counts.tolist(),
                "edges": histogram_edges.round(4).tolist(),
            },
        },
        # Reward normalisation in PPO: (score - chosen_mean) / chosen_std.
        "score_chosen": {"mean": float(chosen.mean()), "std": float(chosen.std())},
        "score_rejected": {"mean": float(rejected.mean()), "std": float(rejected.std())},
    }


def check_accuracy_floor(metrics: dict[str, Any], floor: float) -> None:
    if metrics["accuracy"] < floor:
        worst = sorted(metrics["accuracy_by_category"].items(), key=lambda kv: kv[1]["accuracy"])[
            :3
        ]
        details = ", ".join(f"{name} {v['accuracy']:.2f}" for name, v in worst)
        raise RewardModelQualityError(
            f"reward model pairwise accuracy on preference_val is {metrics['accuracy']:.3f} over "
            f"{metrics['pairs']} pairs, below reward_model.accuracy_floor={floor} (weakest "
            f"categories: {details}). PPO would optimise noise; train longer, use more data, or "
            "lower the floor deliberately."
        )
