"""`reward_model`: preference_train + base_policy → reward_model, reward_model_metrics."""

from alignment_stages.pipelines.reward_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
