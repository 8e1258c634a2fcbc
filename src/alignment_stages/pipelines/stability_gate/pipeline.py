from kedro.pipeline import Node, Pipeline

from alignment_stages.pipelines.stability_gate.nodes import apply_stability_gate


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                apply_stability_gate,
                inputs=[
                    "ppo_history",
                    "ppo_round_policies",
                    "params:stability_gate",
                    "params:dpo_refinement",
                ],  # fmt: skip
                outputs={"gate_decision": "gate_decision", "gate_report": "gate_report"},
                name="apply_stability_gate",
            )
        ]
    )
