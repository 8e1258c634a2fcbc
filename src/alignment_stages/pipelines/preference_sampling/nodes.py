"""Thin adapters from the catalog to `alignment_stages.stages.preference_sampling`."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.curation.onpolicy import OnPolicyParams
from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.precision import scoring_precision
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.reward.evaluate import pairwise_accuracy
from alignment_stages.stages.preference_sampling import sample_onpolicy_pairs

logger = logging.getLogger(__name__)


def sample_base_pairs(
    base_policy: ModelArtifact,
    ppo_prompts: pd.DataFrame,
    params: OnPolicyParams,
    judges: JudgesParams,
    safety_classifier: ModelArtifact,
) -> dict[str, Any]:
    """The base's answers, ranked by the judges alone: no reward model exists yet."""
    pairs, report, _ = sample_onpolicy_pairs(base_policy, "base_policy", ppo_prompts, params,
                                             judges, safety_classifier=safety_classifier)  # fmt: skip
    _log(report)
    return {"onpolicy_base_pairs": pairs, "onpolicy_base_report": report}


def sample_selected_round_pairs(
    dpo_start_policy: ModelArtifact,
    gate_decision: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    reward_model: ModelArtifact,
    reward_ensemble: dict[str, Any],
    reward_model_metrics: dict[str, Any],
    params: OnPolicyParams,
    judges: JudgesParams,
    safety_classifier: ModelArtifact,
) -> dict[str, Any]:
    """The answers of the policy DPO starts from (the gate's round), ranked by the judges and
    the reward ensemble; the report adds how well the reward model, trained before this
    policy existed, ranks its flagged answers below its unflagged ones."""
    heldout = {name: load() for name, load in reward_ensemble.items()}
    ensemble = RewardEnsemble.from_metrics(reward_model, heldout, reward_model_metrics)
    name = gate_decision.get("selected_checkpoint") or "base_policy"
    pairs, report, _ = sample_onpolicy_pairs(dpo_start_policy, name, ppo_prompts, params, judges,
                                             safety_classifier=safety_classifier,
                                             ensemble=ensemble)  # fmt: skip
    judged = pairs[pairs["rejected_label"] == "violation"]
    with scoring_precision(reward_model.model, params.precision):
        accuracy = pairwise_accuracy(reward_model, judged) if len(judged) else None
    report["reward_model_accuracy_on_flagged_pairs"] = accuracy
    report["flagged_pairs"] = len(judged)
    _log(report)
    return {"onpolicy_pairs": pairs, "onpolicy_report": report}


def _log(report: dict[str, Any]) -> None:
    logger.info("onpolicy/%s pairs=%d prompts=%d no_pair=%s", report["policy"], report["pairs"],
                report["prompts"], report["no_pair"])  # fmt: skip
