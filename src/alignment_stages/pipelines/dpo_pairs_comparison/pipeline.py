from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.dpo_pairs_comparison.nodes import (
    compare_dpo_pairs,
    refine_policy_with_other_pairs,
)

START = ["gate_decision", "ppo_round_policies", "base_policy", "params:stability_gate"]


def create_pipeline(**kwargs) -> Pipeline:
    """Reads `full_alignment`'s outputs; not part of it (a second DPO run costs as much as the
    first): `kedro run --pipeline=dpo_pairs_comparison` after it."""
    return Pipeline(
        [
            Node(
                refine_policy_with_other_pairs,
                inputs=[
                    *START,
                    "preference_train",
                    "onpolicy_pairs",
                    "params:dpo_refinement",
                    "params:dpo_pairs_comparison",
                ],  # fmt: skip
                outputs={
                    "dpo_comparison_policy": "dpo_comparison_policy",
                    "dpo_comparison_history": "dpo_comparison_history",
                },  # fmt: skip
                name="refine_policy_with_other_pairs",
            ),
            Node(
                compare_dpo_pairs,
                inputs=[
                    *START,
                    "dpo_policy",
                    "dpo_history",
                    "dpo_comparison_policy",
                    "dpo_comparison_history",
                    "reward_model",
                    "eval_prompts",
                    "capability_probe",
                    "ppo_history",
                    "params:evaluation",
                    "params:behaviour_judges",
                    "safety_classifier",
                ],  # fmt: skip
                outputs={
                    "dpo_pairs_comparison": "dpo_pairs_comparison",
                    "dpo_pairs_comparison_report": "dpo_pairs_comparison_report",
                },  # fmt: skip
                name="compare_dpo_pairs",
            ),
        ]
    )
