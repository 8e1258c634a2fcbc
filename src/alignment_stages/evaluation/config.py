"""Validated parameters of the `evaluation` pipeline (conf/base/parameters_evaluation.yml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignment_stages.parameters import StrictModel


class RoundEvalParams(StrictModel):
    """Evaluation after every round: same prompts, same sampling seeds each time."""

    samples_per_prompt: int = Field(1, gt=0)
    max_new_tokens: int = Field(32, gt=0)
    temperature: float = Field(1.0, gt=0, description="1.0 measures unconstrained behaviour")
    seed: int = Field(1234, description="sampling seed, identical for every round and policy")
    batch_size: int = Field(64, gt=0)
    max_prompts: int | None = Field(None, gt=0, description="evaluate on the first N prompts only")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16 autocast for sampling and the KL log-probs (fp32 maths after them); "
        "auto as in models.precision. Scores and probe perplexity stay fp32",
    )


class EvaluationParams(StrictModel):
    sampling: RoundEvalParams = Field(
        default_factory=lambda: RoundEvalParams(samples_per_prompt=2),
        description="same prompts, seeds and n samples per prompt for every policy",
    )
    side_by_side_prompts: int = Field(
        20, gt=0, description="prompts shown side by side in eval_generations"
    )
    raw_checkpoint: bool = Field(
        False, description="also evaluate `base_model.pretrained` as loaded, before the "
        "pipeline's SFT, as `raw_checkpoint` beside the pipeline's base",
    )  # fmt: skip


def check_raw_checkpoint(evaluation: EvaluationParams, pretrained: str) -> None:
    """`raw_checkpoint` evaluates the checkpoint `base_model.pretrained` loads; the demo's tiny
    base has none. Checked before the first node (`session.RefuseContradictoryParameters`) and
    again where the evaluation loads it."""
    if evaluation.raw_checkpoint and not pretrained:
        raise ValueError(
            "evaluation.raw_checkpoint needs base_model.pretrained: the demo's tiny base has no "
            "checkpoint before its own training. Set evaluation.raw_checkpoint: false, or name "
            "a checkpoint in base_model.pretrained"
        )
