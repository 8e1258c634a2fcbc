"""`safety_judge`: curated_pairs → safety_classifier, safety_classifier_metrics (the learned judge)."""

from alignment_stages.pipelines.safety_judge.pipeline import create_pipeline

__all__ = ["create_pipeline"]
