"""`stability_gate`: ppo_history → gate_decision, gate_report."""

from alignment_stages.pipelines.stability_gate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
