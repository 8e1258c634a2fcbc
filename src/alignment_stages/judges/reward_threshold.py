"""A reward floor: generations the reward model scores below `threshold` are violations.

Useful against reward hacking's degenerate outputs the regex rules do not name, but only as
good as the reward model itself, so it complements rather than replaces the other judges.
"""

from __future__ import annotations

from pydantic import Field

from alignment_stages.judges.protocol import Categories, Prompts, Responses, Verdict
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.parameters import StrictModel
from alignment_stages.reward.scoring import score_responses


class RewardThresholdParams(StrictModel):
    threshold: float  # scores strictly below this are violations (the reward model's raw scale)
    batch_size: int = Field(default=64, gt=0)  # conversations per reward-model forward pass


class RewardThresholdJudge:
    name = "reward_model"

    def __init__(self, reward_model: ModelArtifact, threshold: float, batch_size: int = 64):
        if reward_model.kind != "sequence_classification":
            raise ValueError(
                f"the reward threshold judge needs a sequence_classification model, "
                f"got kind {reward_model.kind!r}"
            )
        self.reward_model = reward_model
        self.threshold = threshold
        self.batch_size = batch_size

    def judge_batch(
        self, prompts: Prompts, responses: Responses, categories: Categories
    ) -> list[Verdict]:
        """(N,) verdicts, scored in the reward model's own training format (chat template + EOS)."""
        del categories  # the reward model has one scale for every category
        scores = score_responses(self.reward_model, prompts, responses, self.batch_size)
        return [self._verdict(float(score)) for score in scores]

    def _verdict(self, score: float) -> Verdict:
        if score < self.threshold:
            return Verdict("violation", f"{self.name}: score {score:.2f} < {self.threshold:g}")
        return Verdict("ok", "")
