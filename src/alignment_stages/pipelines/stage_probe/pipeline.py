from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.stage_probe.nodes import (
    recommend_from_probe,
    run_probe_dpo,
    run_probe_ppo,
)


def create_pipeline(**kwargs) -> Pipeline:
    """`probe_start_policy` is whatever `stage_probe.start` names (docs/gate.md, "Stage probe")."""
    return Pipeline(
        [
            Node(
                run_probe_ppo,
                inputs=[
                    "probe_start_policy",
                    "reward_model",
                    "reward_model_metrics",
                    "ppo_prompts",
                    "eval_prompts",
                    "capability_probe",
                    "params:stage_probe",
                    "params:behaviour_judges",
                    "safety_classifier",
                ],  # fmt: skip
                outputs={
                    "probe_ppo_policies": "probe_ppo_policies",
                    "probe_ppo_runs": "probe_ppo_runs",
                },  # fmt: skip
                name="probe_with_short_ppo",
            ),
            Node(
                run_probe_dpo,
                inputs=[
                    "probe_start_policy",
                    "preference_train",
                    "ppo_prompts",
                    "params:stage_probe",
                    "reward_model",
                    "reward_ensemble",
                    "reward_model_metrics",
                    "params:preference_sampling",
                    "params:behaviour_judges",
                    "safety_classifier",
                ],  # fmt: skip
                outputs={
                    "probe_dpo_policies": "probe_dpo_policies",
                    "probe_dpo_runs": "probe_dpo_runs",
                },  # fmt: skip
                name="probe_with_short_dpo",
            ),
            Node(
                recommend_from_probe,
                inputs=[
                    "probe_start_policy",
                    "probe_ppo_policies",
                    "probe_dpo_policies",
                    "probe_ppo_runs",
                    "probe_dpo_runs",
                    "reward_model",
                    "eval_prompts",
                    "capability_probe",
                    "params:stage_probe",
                    "params:behaviour_judges",
                    "params:stability_gate",
                    "safety_classifier",
                ],  # fmt: skip
                outputs={
                    "stage_recommendation": "stage_recommendation",
                    "stage_recommendation_report": "stage_recommendation_report",
                },  # fmt: skip
                name="recommend_stage",
            ),
        ]
    )
