"""Thin adapters from the catalog to `alignment_stages.dpo` and
`alignment_stages.evaluation.pairs_comparison`."""

from typing import Any

import pandas as pd

from alignment_stages.dpo.config import DPOPairsComparisonParams, DPORefinementParams
from alignment_stages.evaluation.compare import compare_stages
from alignment_stages.evaluation.config import EvaluationParams
from alignment_stages.evaluation.pairs_comparison import (
    pairs_comparison_table,
    render_pairs_comparison,
)
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.pipelines.dpo_refinement.nodes import (
    refine_policy_with_dpo,
    select_dpo_start_policy,
)


def refine_policy_with_other_pairs(
    gate_decision: dict[str, Any],
    ppo_round_policies: dict[str, Any],
    base_policy: ModelArtifact,
    gate: StabilityGateParams,
    preference_train: pd.DataFrame,
    onpolicy_pairs: pd.DataFrame,
    dpo: DPORefinementParams,
    comparison: DPOPairsComparisonParams,
) -> dict[str, Any]:
    """DPO as `dpo_refinement` ran it, from the same start, on `comparison`'s pair source."""
    other = comparison.resolve(dpo.pairs)  # before any loading or training
    start = select_dpo_start_policy(gate_decision, ppo_round_policies, base_policy, gate)
    outputs = refine_policy_with_dpo(
        start, preference_train, onpolicy_pairs, dpo.model_copy(update={"pairs": other})
    )
    return {
        "dpo_comparison_policy": outputs["dpo_policy"],
        "dpo_comparison_history": outputs["dpo_history"],
    }


def compare_dpo_pairs(
    gate_decision: dict[str, Any],
    ppo_round_policies: dict[str, Any],
    base_policy: ModelArtifact,
    gate: StabilityGateParams,
    dpo_policy: ModelArtifact,
    dpo_history: pd.DataFrame,
    dpo_comparison_policy: ModelArtifact,
    dpo_comparison_history: pd.DataFrame,
    reward_model: ModelArtifact,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    ppo_history: pd.DataFrame,
    params: EvaluationParams,
    judges: JudgesParams,
    safety_classifier: ModelArtifact,
) -> dict[str, Any]:
    """base, the start policy and both DPO policies under the evaluation's protocol."""
    settled, other = dpo_history["pairs"].iloc[-1], dpo_comparison_history["pairs"].iloc[-1]
    if settled == other:
        raise ValueError(
            f"dpo_policy and dpo_comparison_policy both settled on {settled!r} pairs: rerun "
            "this pipeline after the dpo_refinement run it is compared with"
        )
    start = select_dpo_start_policy(gate_decision, ppo_round_policies, base_policy, gate)
    policies = {"base": base_policy, "start": start, f"dpo_{settled}": dpo_policy,
                f"dpo_{other}": dpo_comparison_policy}  # fmt: skip
    protocol = EvalProtocol.from_config(base_policy, reward_model, judges, eval_prompts,
                                        capability_probe, params.sampling,
                                        safety_classifier=safety_classifier)  # fmt: skip
    table, _, by_group = compare_stages(policies, protocol, 0, protocol.reusable(ppo_history))
    comparison = pairs_comparison_table(
        table, by_group, {f"dpo_{settled}": settled, f"dpo_{other}": other}
    )
    report = render_pairs_comparison(comparison, gate_decision["selected_checkpoint"])
    return {"dpo_pairs_comparison": comparison, "dpo_pairs_comparison_report": report}
