"""Validated parameters of the `evaluation` pipeline (conf/base/parameters_evaluation.yml)."""

from __future__ import annotations

from pydantic import Field

from alignment_stages.parameters import StrictModel
from alignment_stages.ppo.config import RoundEvalParams


class EvaluationParams(StrictModel):
    sampling: RoundEvalParams = Field(
        default_factory=lambda: RoundEvalParams(samples_per_prompt=2),
        description="same prompts, seeds and n samples per prompt for every policy",
    )
    side_by_side_prompts: int = Field(
        20, gt=0, description="prompts shown side by side in eval_generations"
    )
