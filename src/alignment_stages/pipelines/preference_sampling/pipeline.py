from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.preference_sampling.nodes import (
    sample_base_pairs,
    sample_selected_round_pairs,
)

# The base's answers feed the reward model (`reward_model.onpolicy_pairs`): the reward_model
# pipeline holds this node too.
BASE_PAIRS = Node(
    sample_base_pairs,
    inputs=[
        "base_policy",
        "ppo_prompts",
        "params:preference_sampling",
        "params:behaviour_judges",
        "safety_classifier",
    ],  # fmt: skip
    outputs={
        "onpolicy_base_pairs": "onpolicy_base_pairs",
        "onpolicy_base_report": "onpolicy_base_report",
    },  # fmt: skip
    name="sample_base_pairs",
)
# The answers of the policy DPO starts from (the gate's round) feed DPO
# (`dpo_refinement.pairs`): the dpo_refinement pipeline holds this node too.
SELECTED_ROUND_PAIRS = Node(
    sample_selected_round_pairs,
    inputs=[
        "dpo_start_policy",
        "gate_decision",
        "ppo_prompts",
        "reward_model",
        "reward_ensemble",
        "reward_model_metrics",
        "params:preference_sampling",
        "params:behaviour_judges",
        "safety_classifier",
    ],  # fmt: skip
    outputs={"onpolicy_pairs": "onpolicy_pairs", "onpolicy_report": "onpolicy_report"},
    name="sample_selected_round_pairs",
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([BASE_PAIRS, SELECTED_ROUND_PAIRS])
