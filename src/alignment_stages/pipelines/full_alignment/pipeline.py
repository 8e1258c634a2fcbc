"""The stages in order. A stage is listed here once its package exists."""

from kedro.pipeline import Pipeline

from alignment_stages.pipelines import (
    base_model,
    data_curation,
    dpo_refinement,
    evaluation,
    ppo_shaping,
    reward_model,
    safety_judge,
    stability_gate,
)

STAGES = (
    data_curation,
    base_model,
    safety_judge,
    reward_model,
    ppo_shaping,
    stability_gate,
    dpo_refinement,
    evaluation,
)


def create_pipeline(**kwargs) -> Pipeline:
    return sum((stage.create_pipeline() for stage in STAGES), Pipeline([]))
