"""`dpo_pairs_comparison`: after `full_alignment`, DPO once more from the gate's start policy on
the other pair source, and both DPO policies evaluated side by side on the same prompts."""

from alignment_stages.pipelines.dpo_pairs_comparison.pipeline import create_pipeline

__all__ = ["create_pipeline"]
