from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.ppo_shaping.nodes import shape_policy


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                shape_policy,
                inputs=[
                    "base_policy",
                    "reward_model",
                    "reward_model_metrics",
                    "ppo_prompts",
                    "eval_prompts",
                    "capability_probe",
                    "params:ppo_shaping",
                    "params:behaviour_judges",
                    "reward_ensemble",
                    "ppo_checkpoints",
                    "safety_classifier",
                ],
                outputs={
                    "ppo_policy": "ppo_policy",
                    "ppo_history": "ppo_history",
                    "ppo_round_policies": "ppo_round_policies",
                },
                name="shape_policy_with_ppo",
            )
        ]
    )
