"""`preference_sampling`: a policy's own answers → on-policy pairs (the base's for the reward
model, the gate-selected round's for DPO)."""

from alignment_stages.pipelines.preference_sampling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
