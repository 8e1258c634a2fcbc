"""The `reward_model` stage as `alignment_stages.launcher` runs it, inline or launched."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import RewardModelParams
from alignment_stages.reward.evaluate import evaluate_reward_model
from alignment_stages.reward.train import train_reward_model


def train_reward_model_stage(
    preference_train: pd.DataFrame,
    preference_val: pd.DataFrame,
    base_policy: ModelArtifact,
    params: RewardModelParams,
) -> dict[str, Any]:
    candidate = train_reward_model(preference_train, base_policy, params)
    metrics = evaluate_reward_model(
        candidate, preference_val, params.eval_batch_size, params.training.max_length
    )
    return {"reward_model_candidate": candidate, "reward_model_metrics": metrics}
