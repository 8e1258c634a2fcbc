"""Thin adapter from the catalog to the `ppo_shaping` stage (PPO, or the TRL alternatives),
inline or under `accelerate launch` as `params.launcher` says."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.judges.config import JudgesParams
from alignment_stages.launcher import run_stage
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.ppo.checkpoint import RoundCheckpoints
from alignment_stages.stages.ppo_shaping import ShapingStageParams, shape_policy_stage

logger = logging.getLogger(__name__)


def shape_policy(
    base_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: ShapingStageParams,
    judges: JudgesParams,
    reward_ensemble: dict[str, Any],
    ppo_checkpoints: RoundCheckpoints,
    safety_classifier: ModelArtifact,
) -> dict[str, Any]:
    # The catalog loads a collection lazily (name -> loader); the stage takes the artifacts.
    heldout = {name: load() for name, load in reward_ensemble.items()}
    outputs = run_stage(
        shape_policy_stage,
        {
            "base_policy": base_policy,
            "reward_model": reward_model,
            "reward_model_metrics": reward_model_metrics,
            "ppo_prompts": ppo_prompts,
            "eval_prompts": eval_prompts,
            "capability_probe": capability_probe,
            "params": params,
            "judges": judges,
            "reward_ensemble": heldout,
            "checkpoints": ppo_checkpoints,
            "safety_classifier": safety_classifier,
        },
        params.launcher,
    )
    logger.info("ppo/stop_reason=%s", outputs.pop("stop_reason"))
    return outputs
