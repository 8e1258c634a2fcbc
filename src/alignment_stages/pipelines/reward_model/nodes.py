"""Thin adapters from the catalog to `alignment_stages.reward`; training runs inline or under
`accelerate launch` as `params.launcher` says."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.launcher import run_stage
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import RewardModelParams
from alignment_stages.reward.evaluate import check_accuracy_floor
from alignment_stages.reward.stage import train_reward_model_stage

logger = logging.getLogger(__name__)


def train_reward_model_node(
    preference_train: pd.DataFrame,
    preference_val: pd.DataFrame,
    onpolicy_base_pairs: pd.DataFrame,
    base_policy: ModelArtifact,
    params: RewardModelParams,
) -> dict[str, Any]:
    """With `params.onpolicy_pairs`, the base's own answers join the curated pairs."""
    if params.onpolicy_pairs:
        preference_train = pd.concat([preference_train, onpolicy_base_pairs], ignore_index=True)
    inputs = {"preference_train": preference_train, "preference_val": preference_val,
              "base_policy": base_policy, "params": params}  # fmt: skip
    outputs = run_stage(train_reward_model_stage, inputs, params.launcher)
    metrics = outputs["reward_model_metrics"]
    logger.info(
        "reward_model/accuracy=%.4f reward_model/margin_mean=%.3f reward_model/chosen_mean=%.3f "
        "reward_model/chosen_std=%.3f",
        metrics["accuracy"], metrics["margin"]["mean"],
        metrics["score_chosen"]["mean"], metrics["score_chosen"]["std"],
    )  # fmt: skip
    return outputs


def enforce_accuracy_floor(
    reward_model_candidate: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    params: RewardModelParams,
) -> ModelArtifact:
    """Its own node, so the metrics are saved even when the floor stops the run."""
    check_accuracy_floor(reward_model_metrics, params.accuracy_floor)
    return reward_model_candidate
