from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.dpo_refinement.nodes import (
    refine_policy_with_dpo,
    select_dpo_start_policy,
)


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
            Node(
                refine_policy_with_dpo,
                inputs=["dpo_start_policy", "preference_train", "params:dpo_refinement"],
                outputs={"dpo_policy": "dpo_policy", "dpo_history": "dpo_history"},
                name="refine_policy_with_dpo",
            ),
        ]
    )
