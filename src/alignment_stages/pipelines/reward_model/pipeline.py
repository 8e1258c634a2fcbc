from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.preference_sampling.pipeline import BASE_PAIRS
from alignment_stages.pipelines.reward_model.nodes import (
    enforce_accuracy_floor,
    train_reward_model_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            BASE_PAIRS,
            Node(
                train_reward_model_node,
                inputs=[
                    "preference_train",
                    "preference_val",
                    "onpolicy_base_pairs",
                    "base_policy",
                    "params:reward_model",
                ],  # fmt: skip
                outputs={
                    "reward_model_candidate": "reward_model_candidate",
                    "reward_ensemble": "reward_ensemble",
                    "reward_model_metrics": "reward_model_metrics",
                },
                name="train_reward_model",
            ),
            Node(
                enforce_accuracy_floor,
                inputs=["reward_model_candidate", "reward_model_metrics", "params:reward_model"],
                outputs="reward_model",
                name="enforce_reward_accuracy_floor",
            ),
        ]
    )
