"""The `reward_model` stage as `alignment_stages.launcher` runs it, inline or launched."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import RewardModelParams
from alignment_stages.models.precision import scoring_precision
from alignment_stages.reward.evaluate import evaluate_reward_model
from alignment_stages.reward.train import train_reward_model

logger = logging.getLogger(__name__)


def member_name(index: int) -> str:
    return f"member_{index:03d}"


def _member_pairs(pairs: pd.DataFrame, index: int, params: RewardModelParams) -> pd.DataFrame:
    """Member 0 sees every pair; a held-out member a bootstrap resample (Efron 1979), so the
    members differ in data as well as in seed, as in Coste et al. 2023's ensembles."""
    if index == 0 or not params.ensemble.bootstrap:
        return pairs
    return pairs.sample(len(pairs), replace=True, random_state=params.seed + index).reset_index(
        drop=True
    )


def train_reward_model_stage(
    preference_train: pd.DataFrame,
    preference_val: pd.DataFrame,
    base_policy: ModelArtifact,
    params: RewardModelParams,
) -> dict[str, Any]:
    members: dict[str, ModelArtifact] = {}
    member_metrics: dict[str, dict[str, Any]] = {}
    for index in range(params.ensemble.members):
        started = time.perf_counter()
        member_params = params.model_copy(update={"seed": params.seed + index})
        model = train_reward_model(
            _member_pairs(preference_train, index, params), base_policy, member_params
        )
        seconds = time.perf_counter() - started
        with scoring_precision(model.model, params.training.precision):
            metrics = evaluate_reward_model(
                model, preference_val, params.eval_batch_size, params.training.max_length
            )
        members[member_name(index)] = model
        member_metrics[member_name(index)] = {
            "accuracy": metrics["accuracy"],
            "margin_mean": metrics["margin"]["mean"],
            "score_chosen": metrics["score_chosen"],
            "train_seconds": seconds,
        }
        logger.info(
            "reward_model/member=%d accuracy=%.4f train_seconds=%.1f",
            index, metrics["accuracy"], seconds,
        )  # fmt: skip
        if index == 0:  # the proxy's full metrics; the held-out members' summary only
            proxy_metrics = metrics
    return {
        "reward_model_candidate": members.pop(member_name(0)),
        "reward_ensemble": members,
        "reward_model_metrics": {**proxy_metrics, "ensemble": member_metrics},
    }
