"""Thin adapter from the catalog to `alignment_stages.evaluation.compare`."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.evaluation.compare import (
    compare_stages,
    render_evaluation_report,
    stage_charts,
)
from alignment_stages.evaluation.config import EvaluationParams, check_raw_checkpoint
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import load_pretrained_policy
from alignment_stages.models.config import BaseModelParams

logger = logging.getLogger(__name__)


def evaluate_stages(
    base_policy: ModelArtifact,
    ppo_policy: ModelArtifact,
    dpo_policy: ModelArtifact,
    reward_model: ModelArtifact,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    ppo_history: pd.DataFrame,
    gate_decision: dict[str, Any],
    params: EvaluationParams,
    judges: JudgesParams,
    gate: StabilityGateParams,
    ppo_round_policies: dict[str, Any],
    safety_classifier: ModelArtifact,
    dpo_history: pd.DataFrame,
    base_model: BaseModelParams,
) -> dict[str, Any]:
    policies = {"base": base_policy}
    if params.raw_checkpoint:
        # The checkpoint as shipped, before the pipeline's SFT: what the stages started from.
        check_raw_checkpoint(params, base_model.pretrained)
        policies["raw_checkpoint"] = load_pretrained_policy(base_model)
    policies["ppo"] = ppo_policy
    # After a rollback, the round the gate went back to is compared too: beside the hacked last
    # round (`ppo`), it shows what the rollback saved.
    selected = gate_decision.get("selected_checkpoint")
    if gate_decision.get("decision") == "rollback_and_switch" and selected in ppo_round_policies:
        policies["rollback"] = ppo_round_policies[selected]()
    policies["dpo"] = dpo_policy
    # PPO's evaluations of the base and of its rounds, where they followed this same protocol.
    protocol = EvalProtocol.from_config(base_policy, reward_model, judges, eval_prompts,
                                        capability_probe, params.sampling,
                                        safety_classifier=safety_classifier)  # fmt: skip
    table, sides, by_group = compare_stages(
        policies, protocol, params.side_by_side_prompts, protocol.reusable(ppo_history)
    )
    for _, row in table.iterrows():
        logger.info(
            "eval/%s reward=%.3f win_rate_vs_base=%.3f violation_rate=%.3f kl_to_base=%.2f",
            row["policy"], row["reward_mean"], row["win_rate_vs_base"], row["violation_rate"], row["kl_to_base"],
        )  # fmt: skip
    return {
        "stage_comparison": table,
        "eval_generations": sides,
        "stage_rates_by_group": by_group,
        "evaluation_report": render_evaluation_report(
            table, gate_decision, sides, ppo_history, by_group, dpo_history
        ),
        **stage_charts(table, ppo_history, gate_decision, gate.chaos_threshold),
    }
