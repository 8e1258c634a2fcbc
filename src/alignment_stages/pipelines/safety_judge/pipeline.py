from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.safety_judge.nodes import (
    label_policy_answers,
    train_safety_judge_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                label_policy_answers,
                inputs=[
                    "base_policy",
                    "ppo_prompts",
                    "params:safety_judge",
                    "params:behaviour_judges",
                ],  # fmt: skip
                outputs="panel_labelled_answers",
                name="label_policy_answers",
            ),
            Node(
                train_safety_judge_node,
                inputs=[
                    "curated_pairs",
                    "labelled_answers",
                    "panel_labelled_answers",
                    "params:safety_judge",
                ],  # fmt: skip
                outputs={
                    "safety_classifier": "safety_classifier",
                    "safety_classifier_metrics": "safety_classifier_metrics",
                },
                name="train_safety_judge",
            ),
        ]
    )
