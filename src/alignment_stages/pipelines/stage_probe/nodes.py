"""Thin adapters from the catalog to `alignment_stages.probe`. The two short runs are
independent nodes, so ParallelRunner runs them concurrently."""

from typing import Any

import pandas as pd

from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.probe.config import StageProbeParams
from alignment_stages.probe.recommend import (
    probe_dpo,
    probe_ppo,
    recommend_stage,
    render_recommendation,
    run_probe_evaluation,
)


def run_probe_ppo(
    base_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: StageProbeParams,
    judges: JudgesParams,
) -> ModelArtifact:
    panel = build_judge_panel(judges, reward_model)
    return probe_ppo(
        base_policy,
        reward_model,
        reward_model_metrics,
        ppo_prompts,
        eval_prompts,
        capability_probe,
        panel,
        params,
    )


def run_probe_dpo(
    base_policy: ModelArtifact, preference_train: pd.DataFrame, params: StageProbeParams
) -> ModelArtifact:
    return probe_dpo(base_policy, preference_train, params)


def recommend_from_probe(
    base_policy: ModelArtifact,
    probe_ppo_policy: ModelArtifact,
    probe_dpo_policy: ModelArtifact,
    reward_model: ModelArtifact,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: StageProbeParams,
    judges: JudgesParams,
    gate: StabilityGateParams,
) -> dict[str, Any]:
    table, sides = run_probe_evaluation(
        base_policy, probe_ppo_policy, probe_dpo_policy, reward_model, build_judge_panel(judges, reward_model),
        eval_prompts, capability_probe, params,
    )  # fmt: skip
    result = recommend_stage(table, gate)
    result["comparison"] = table.to_dict(orient="records")
    return {
        "stage_recommendation": result,
        "stage_recommendation_report": render_recommendation(result, sides),
    }
