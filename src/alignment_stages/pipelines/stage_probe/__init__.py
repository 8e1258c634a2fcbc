"""`stage_probe`: which stage is a policy in? Short PPO and DPO from one start, side by side."""

from alignment_stages.pipelines.stage_probe.pipeline import create_pipeline

__all__ = ["create_pipeline"]
