"""`base_model`: sft_examples → base_policy (a pretrained checkpoint, or the tiny model)."""

from alignment_stages.pipelines.base_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
