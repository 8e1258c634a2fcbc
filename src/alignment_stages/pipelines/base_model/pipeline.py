from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.base_model.nodes import build_base_policy_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_base_policy_node,
                inputs=[
                    "sft_examples",
                    "ppo_prompts",
                    "params:base_model",
                    "params:behaviour_judges",
                ],
                outputs="base_policy",
                name="build_base_policy",
            )
        ]
    )
