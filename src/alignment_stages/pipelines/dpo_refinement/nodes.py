"""Thin adapters from the catalog to `alignment_stages.dpo`."""

from typing import Any

import pandas as pd

from alignment_stages.dpo.config import DPORefinementParams
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
    dpo_start_policy: ModelArtifact, preference_train: pd.DataFrame, params: DPORefinementParams
) -> dict[str, Any]:
    inputs = {"dpo_start_policy": dpo_start_policy, "preference_train": preference_train,
              "params": params}  # fmt: skip
    return run_stage(refine_with_dpo_stage, inputs, params.launcher)
