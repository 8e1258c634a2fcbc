"""The `behaviour_judges` parameter block and the panel it builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import model_validator

from alignment_stages.judges.classifier import ClassifierParams, load_classifier_judge
from alignment_stages.judges.panel import Judge, JudgePanel
from alignment_stages.judges.regex_rules import RegexRuleJudge, RegexRulesParams
from alignment_stages.judges.reward_threshold import RewardThresholdJudge, RewardThresholdParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.parameters import StrictModel


class JudgesParams(StrictModel):
    """Each configured key adds one judge to the panel; leave a key out to drop that judge."""

    regex: RegexRulesParams | None = None  # per-category patterns
    reward_threshold: RewardThresholdParams | None = None  # reward-model score floor
    classifier: ClassifierParams | None = None  # any sequence-classification checkpoint

    @model_validator(mode="after")
    def _at_least_one_judge(self) -> JudgesParams:
        if all(getattr(self, name) is None for name in _BUILDERS):
            raise ValueError(f"configure at least one judge: {sorted(_BUILDERS)}")
        return self


def _build_regex(params: RegexRulesParams, reward_model: ModelArtifact | None) -> Judge:
    return RegexRuleJudge(params.rules)


def _build_reward_threshold(
    params: RewardThresholdParams, reward_model: ModelArtifact | None
) -> Judge:
    if reward_model is None:
        raise ValueError(
            "behaviour_judges.reward_threshold is configured, but no reward model was given "
            "to score the generations with"
        )
    return RewardThresholdJudge(reward_model, params.threshold, params.batch_size)


def _build_classifier(params: ClassifierParams, reward_model: ModelArtifact | None) -> Judge:
    return load_classifier_judge(params)


# Field name in `JudgesParams` → builder; the panel keeps this order.
_BUILDERS: dict[str, Callable[[Any, ModelArtifact | None], Judge]] = {
    "regex": _build_regex,
    "reward_threshold": _build_reward_threshold,
    "classifier": _build_classifier,
}


def build_judge_panel(params: JudgesParams, reward_model: ModelArtifact | None) -> JudgePanel:
    """One judge per configured block. `reward_model` is needed only by `reward_threshold`."""
    return JudgePanel(
        [
            build(getattr(params, name), reward_model)
            for name, build in _BUILDERS.items()
            if getattr(params, name) is not None
        ]
    )
