"""`dpo_refinement`: gate_decision + the selected policy + preference_train → dpo_policy, dpo_history."""

from alignment_stages.pipelines.dpo_refinement.pipeline import create_pipeline

__all__ = ["create_pipeline"]
