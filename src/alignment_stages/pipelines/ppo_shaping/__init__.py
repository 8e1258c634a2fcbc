"""`ppo_shaping`: base_policy + reward_model → ppo_policy, ppo_history, ppo_round_policies."""

from alignment_stages.pipelines.ppo_shaping.pipeline import create_pipeline

__all__ = ["create_pipeline"]
