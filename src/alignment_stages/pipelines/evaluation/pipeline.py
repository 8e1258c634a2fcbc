from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.evaluation.nodes import evaluate_stages

OUTPUTS = (
    "stage_comparison", "eval_generations", "stage_rates_by_group", "evaluation_report",
    "stage_metrics_chart", "ppo_rounds_chart", "reward_kl_frontier_chart", "reward_sqrt_kl_chart",
)  # fmt: skip


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                evaluate_stages,
                inputs=[
                    "base_policy",
                    "ppo_policy",
                    "dpo_policy",
                    "reward_model",
                    "eval_prompts",
                    "capability_probe",
                    "ppo_history",
                    "gate_decision",
                    "params:evaluation",
                    "params:behaviour_judges",
                    "params:stability_gate",
                    "ppo_round_policies",
                    "safety_classifier",
                    "dpo_history",
                    "params:base_model",
                ],  # fmt: skip
                outputs={name: name for name in OUTPUTS},
                name="evaluate_stages",
            )
        ]
    )
