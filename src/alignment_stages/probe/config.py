"""Validated parameters of the `stage_probe` pipeline (conf/base/parameters_stage_probe.yml)."""

from __future__ import annotations

from pydantic import Field

from alignment_stages.dpo.config import DPORefinementParams
from alignment_stages.parameters import StrictModel
from alignment_stages.ppo.config import PPOShapingParams, RoundEvalParams


class StageProbeParams(StrictModel):
    """Equal budgets: PPO sees `updates × rollout_batch_size` prompts, DPO the same number of
    preference pairs (one epoch over a seeded sample of `preference_train`)."""

    seed: int = 0
    updates: int = Field(4, gt=0, description="PPO updates; fixes the budget of both runs")
    # The defaults are conf/base's: the probe evaluates on fewer prompts than the full stages.
    ppo: PPOShapingParams = Field(
        default_factory=lambda: PPOShapingParams(eval=RoundEvalParams(max_prompts=60))
    )
    dpo: DPORefinementParams = Field(
        default_factory=lambda: DPORefinementParams(kl_eval=RoundEvalParams(max_prompts=32))
    )
    sampling: RoundEvalParams = Field(
        default_factory=lambda: RoundEvalParams(samples_per_prompt=2, max_prompts=120)
    )
    side_by_side_prompts: int = Field(8, gt=0)
