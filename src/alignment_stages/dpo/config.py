"""Validated parameters of the `dpo_refinement` pipeline (conf/base/parameters_dpo_refinement.yml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignment_stages.evaluation.config import RoundEvalParams
from alignment_stages.models.config import LoraParams, TrainingParams
from alignment_stages.parameters import LauncherParams, StrictModel

# Which pairs DPO settles on (dpo.pairs): the curated ones, the start policy's own, or both.
PairSource = Literal["curated", "onpolicy", "mixed"]
PAIRS_MEANING = {
    "curated": "the curated published pairs",
    "onpolicy": "the selected round's own answers, paired by the judges and the reward ensemble",
    "mixed": "the curated pairs and the selected round's own answers",
}

# The loss types TRL 1.16's DPOTrainer implements (combine several with `loss_weights`).
DPOLossType = Literal[
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
    "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
]  # fmt: skip


class DPORefinementParams(StrictModel):
    launcher: LauncherParams = Field(default_factory=LauncherParams)
    seed: int = 0
    loss_type: list[DPOLossType] = Field(default_factory=lambda: ["sigmoid"], min_length=1)
    loss_weights: list[float] | None = Field(None, description="one weight per loss type")
    beta: float = Field(0.1, gt=0, description="β: strength of the implicit KL to the start policy")
    pairs: PairSource = Field(
        "curated", description="curated: the published pairs; onpolicy: the start policy's own "
        "answers (preference_sampling); mixed: both (dpo.pairs)",
    )  # fmt: skip
    training: TrainingParams = Field(
        default_factory=lambda: TrainingParams(epochs=1, learning_rate=5e-4)
    )
    lora: LoraParams = Field(default_factory=lambda: LoraParams(enabled=True))
    precompute_ref_log_probs: bool = Field(
        True, description="score the reference once before training instead of at every step"
    )
    kl_eval: RoundEvalParams = Field(
        default_factory=lambda: RoundEvalParams(max_prompts=64),
        description="sampling used to measure KL(DPO policy ‖ start policy) after training",
    )


class DPOPairsComparisonParams(StrictModel):
    """`dpo_pairs_comparison`: DPO once more, from the same start policy with the same settings
    (`dpo_refinement`), on another pair source, both evaluated on the same prompts. On-policy
    data helps most at some alignment stages and not at others (Sun et al. 2025, "Is on-policy
    data always the best choice for DPO?"): this measures it on the team's own model."""

    against: PairSource | None = Field(
        None, description="the second run's pairs; null: curated when dpo_refinement.pairs is "
        "onpolicy or mixed, onpolicy when it is curated",
    )  # fmt: skip

    def resolve(self, settled_on: PairSource) -> PairSource:
        """The second run's pair source, given the one `dpo_refinement` settled on."""
        against = self.against or ("onpolicy" if settled_on == "curated" else "curated")
        if against == settled_on:
            raise ValueError(
                f"dpo_pairs_comparison.against is {against!r}, the pairs dpo_refinement already "
                "settled on: name another source (curated, onpolicy or mixed) or leave it null"
            )
        return against
