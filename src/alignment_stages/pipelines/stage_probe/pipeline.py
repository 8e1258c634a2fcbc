from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.stage_probe.nodes import (
    recommend_from_probe,
    run_probe_dpo,
    run_probe_ppo,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                run_probe_ppo,
                inputs=[
                    "base_policy",
                    "reward_model",
                    "reward_model_metrics",
                    "ppo_prompts",
                    "eval_prompts",
                    "capability_probe",
                    "params:stage_probe",
                    "params:behaviour_judges",
                ],  # fmt: skip
                outputs="probe_ppo_policy",
                name="probe_with_short_ppo",
            ),
            Node(
                run_probe_dpo,
                inputs=["base_policy", "preference_train", "params:stage_probe"],
                outputs="probe_dpo_policy",
                name="probe_with_short_dpo",
            ),
            Node(
                recommend_from_probe,
                inputs=[
                    "base_policy",
                    "probe_ppo_policy",
                    "probe_dpo_policy",
                    "reward_model",
                    "eval_prompts",
                    "capability_probe",
                    "params:stage_probe",
                    "params:behaviour_judges",
                    "params:stability_gate",
                ],  # fmt: skip
                outputs={
                    "stage_recommendation": "stage_recommendation",
                    "stage_recommendation_report": "stage_recommendation_report",
                },  # fmt: skip
                name="recommend_stage",
            ),
        ]
    )
