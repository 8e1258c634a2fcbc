"""`evaluation`: base, PPO and DPO policies on the same eval_prompts and seeds."""

from alignment_stages.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
