"""Thin adapters from the catalog to `alignment_stages.dpo`."""

from typing import Any

import pandas as pd

from alignment_stages.curation.onpolicy import SOURCE_FORMAT
from alignment_stages.dpo.config import DPORefinementParams
from alignment_stages.dpo.pairs import dpo_pairs
from alignment_stages.dpo.refine import refine_with_dpo_stage, select_start_policy
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.launcher import run_stage
from alignment_stages.models.artifacts import ModelArtifact


def select_dpo_start_policy(
    gate_decision: dict[str, Any],
    ppo_round_policies: dict[str, Any],
    base_policy: ModelArtifact,
    gate: StabilityGateParams,
) -> ModelArtifact:
    """Stops full_alignment with the gate's reasons unless it decided to switch, and refuses
    round policies the gate did not judge unless `--load-versions` pinned them."""
    return select_start_policy(
        gate_decision, ppo_round_policies, base_policy, on_unsettled=gate.on_unsettled
    )


def refine_policy_with_dpo(
    dpo_start_policy: ModelArtifact,
    preference_train: pd.DataFrame,
    onpolicy_pairs: pd.DataFrame,
    params: DPORefinementParams,
) -> dict[str, Any]:
    """DPO on `params.pairs`: the curated pairs, the start policy's own, or both."""
    pairs = dpo_pairs(params.pairs, preference_train, onpolicy_pairs, dpo_start_policy)
    inputs = {"dpo_start_policy": dpo_start_policy, "preference_train": pairs, "params": params}
    outputs = run_stage(refine_with_dpo_stage, inputs, params.launcher)
    # Which data DPO settled on, beside its curves: the evaluation report quotes it.
    onpolicy = int((pairs["source_format"] == SOURCE_FORMAT).sum())
    outputs["dpo_history"] = outputs["dpo_history"].assign(
        pairs=params.pairs, pairs_count=len(pairs), onpolicy_pairs_count=onpolicy
    )
    return outputs
