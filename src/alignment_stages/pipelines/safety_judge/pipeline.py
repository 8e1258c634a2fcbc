from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.safety_judge.nodes import train_safety_judge_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_safety_judge_node,
                inputs=["curated_pairs", "labelled_answers", "params:safety_judge"],
                outputs={
                    "safety_classifier": "safety_classifier",
                    "safety_classifier_metrics": "safety_classifier_metrics",
                },
                name="train_safety_judge",
            )
        ]
    )
