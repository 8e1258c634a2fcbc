"""Thin adapters from the catalog to `alignment_stages.reward`."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import RewardModelParams
from alignment_stages.reward.evaluate import check_accuracy_floor, evaluate_reward_model
from alignment_stages.reward.train import train_reward_model

logger = logging.getLogger(__name__)


def train_reward_model_node(
    preference_train: pd.DataFrame,
    preference_val: pd.DataFrame,
    base_policy: ModelArtifact,
    params: RewardModelParams,
) -> dict[str, Any]:
    candidate = train_reward_model(preference_train, base_policy, params)
    metrics = evaluate_reward_model(
        candidate, preference_val, params.eval_batch_size, params.training.max_length
    )
    logger.info(
        "reward_model/accuracy=%.4f reward_model/margin_mean=%.3f reward_model/chosen_mean=%.3f "
        "reward_model/chosen_std=%.3f",
        metrics["accuracy"], metrics["margin"]["mean"],
        metrics["score_chosen"]["mean"], metrics["score_chosen"]["std"],
    )  # fmt: skip
    return {"reward_model_candidate": candidate, "reward_model_metrics": metrics}


def enforce_accuracy_floor(
    reward_model_candidate: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    params: RewardModelParams,
) -> ModelArtifact:
    """Its own node, so the metrics are saved even when the floor stops the run."""
    check_accuracy_floor(reward_model_metrics, params.accuracy_floor)
    return reward_model_candidate
