"""Thin adapters from the catalog to `alignment_stages.probe`. The two short runs are
independent nodes, so ParallelRunner runs them concurrently. `probe_start_policy` is the model
`stage_probe.start` names (registered by `alignment_stages.session.ResolveProbeStart`)."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.curation.onpolicy import OnPolicyParams
from alignment_stages.dpo.pairs import dpo_pairs
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.probe.config import StageProbeParams
from alignment_stages.probe.evaluate import evaluate_probe
from alignment_stages.probe.report import render_recommendation, side_by_side, stage_recommendation
from alignment_stages.probe.short_runs import (
    plain_policy,
    run_short_dpo,
    run_short_ppo,
    runs_by_seed,
    seed_key,
)
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.stages.preference_sampling import sample_onpolicy_pairs

logger = logging.getLogger(__name__)


def run_probe_ppo(
    probe_start_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: StageProbeParams,
    judges: JudgesParams,
    safety_classifier: ModelArtifact,
) -> dict[str, Any]:
    start = plain_policy(probe_start_policy)
    protocol = EvalProtocol.from_config(start, reward_model, judges, eval_prompts,
                                        capability_probe, params.ppo.eval,
                                        safety_classifier=safety_classifier)  # fmt: skip
    runs = {
        seed: run_short_ppo(start, reward_model, reward_model_metrics, ppo_prompts, protocol,
                            params, seed)
        for seed in params.seeds
    }  # fmt: skip
    policies, records = runs_by_seed(runs)
    return {"probe_ppo_policies": policies, "probe_ppo_runs": records}


def run_probe_dpo(
    probe_start_policy: ModelArtifact,
    preference_train: pd.DataFrame,
    ppo_prompts: pd.DataFrame,
    params: StageProbeParams,
    reward_model: ModelArtifact,
    reward_ensemble: dict[str, Any],
    reward_model_metrics: dict[str, Any],
    sampling: OnPolicyParams,
    judges: JudgesParams,
    safety_classifier: ModelArtifact,
) -> dict[str, Any]:
    """Short DPO runs on `stage_probe.dpo.pairs`: with `onpolicy` or `mixed`, the start
    policy's own answers are sampled and paired first (preference_sampling)."""
    start = plain_policy(probe_start_policy)
    onpolicy = None
    if params.dpo.pairs != "curated":
        members = {name: load() for name, load in reward_ensemble.items()}
        ensemble = RewardEnsemble.from_metrics(reward_model, members, reward_model_metrics)
        onpolicy, report, _ = sample_onpolicy_pairs(
            start, "probe_start_policy", ppo_prompts, sampling, judges,
            safety_classifier=safety_classifier, ensemble=ensemble,
        )  # fmt: skip
        logger.info("probe/onpolicy pairs=%d no_pair=%s", report["pairs"], report["no_pair"])
    pairs = dpo_pairs(params.dpo.pairs, preference_train, onpolicy, start)
    runs = {seed: run_short_dpo(start, pairs, ppo_prompts, params, seed) for seed in params.seeds}
    policies, records = runs_by_seed(runs)
    for record in records.values():
        record["pairs"] = params.dpo.pairs  # which data the probe's DPO learned from
    return {"probe_dpo_policies": policies, "probe_dpo_runs": records}


def recommend_from_probe(
    probe_start_policy: ModelArtifact,
    probe_ppo_policies: dict[str, Any],
    probe_dpo_policies: dict[str, Any],
    probe_ppo_runs: dict[str, Any],
    probe_dpo_runs: dict[str, Any],
    reward_model: ModelArtifact,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: StageProbeParams,
    judges: JudgesParams,
    gate: StabilityGateParams,
    safety_classifier: ModelArtifact,
) -> dict[str, Any]:
    """The collections load lazily (`{seed_<n>: function returning the policy}`)."""
    protocol = EvalProtocol.from_config(
        plain_policy(probe_start_policy), reward_model, judges, eval_prompts, capability_probe,
        params.sampling, safety_classifier=safety_classifier,
    )  # fmt: skip
    evaluation = evaluate_probe(
        {seed: probe_ppo_policies[seed_key(seed)]() for seed in params.seeds},
        {seed: probe_dpo_policies[seed_key(seed)]() for seed in params.seeds},
        protocol,
    )
    result = stage_recommendation(evaluation, probe_ppo_runs, probe_dpo_runs, params, gate)
    return {
        "stage_recommendation": result,
        "stage_recommendation_report": render_recommendation(
            result, side_by_side(evaluation, params.side_by_side_prompts)
        ),
    }
