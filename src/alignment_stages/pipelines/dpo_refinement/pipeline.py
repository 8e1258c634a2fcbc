from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.dpo_refinement.nodes import (
    refine_policy_with_dpo,
    select_dpo_start_policy,
)
from alignment_stages.pipelines.preference_sampling.pipeline import SELECTED_ROUND_PAIRS


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                select_dpo_start_policy,
                inputs=[
                    "gate_decision",
                    "ppo_round_policies",
                    "base_policy",
                    "params:stability_gate",
                ],
                outputs="dpo_start_policy",
                name="select_dpo_start_policy",
            ),
            SELECTED_ROUND_PAIRS,
            Node(
                refine_policy_with_dpo,
                inputs=[
                    "dpo_start_policy",
                    "preference_train",
                    "onpolicy_pairs",
                    "params:dpo_refinement",
                ],  # fmt: skip
                outputs={"dpo_policy": "dpo_policy", "dpo_history": "dpo_history"},
                name="refine_policy_with_dpo",
            ),
        ]
    )
