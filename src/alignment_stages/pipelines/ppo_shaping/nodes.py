"""Thin adapter from the catalog to `alignment_stages.ppo.rounds` (or the TRL alternatives)."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.ppo.alternatives import SHAPING_ALGORITHMS
from alignment_stages.ppo.config import PPOShapingParams

logger = logging.getLogger(__name__)


def shape_policy(
    base_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: PPOShapingParams,
    judges: JudgesParams,
) -> dict[str, Any]:
    judge_panel = build_judge_panel(judges, reward_model)
    run = SHAPING_ALGORITHMS[params.algorithm]
    result = run(
        base_policy,
        reward_model,
        reward_model_metrics,
        ppo_prompts,
        eval_prompts,
        capability_probe,
        judge_panel,
        params,
    )
    logger.info("ppo/stop_reason=%s", result.stop_reason)
    return {
        "ppo_policy": result.ppo_policy,
        "ppo_history": result.ppo_history,
        "ppo_round_policies": result.round_policies,
    }
