"""The `behaviour_judges` parameter block and the panel it builds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from alignment_stages.judges.classifier import (
    ClassifierJudge,
    ClassifierParams,
    LearnedJudgeParams,
    load_classifier_judge,
)
from alignment_stages.judges.guard import GuardParams, load_guard_judge
from alignment_stages.judges.panel import CombineRule, JudgePanel
from alignment_stages.judges.prompt_category import UnsafePromptJudge, UnsafePromptParams
from alignment_stages.judges.protocol import Judge
from alignment_stages.judges.refusal import RefusalJudge, RefusalParams
from alignment_stages.judges.regex_rules import RegexRuleJudge, RegexRulesParams
from alignment_stages.judges.reward_threshold import RewardThresholdJudge, RewardThresholdParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.parameters import StrictModel


class JudgesParams(StrictModel):
    """Each configured judge key adds one judge to the panel; leave a key out to drop it."""

    rule: CombineRule = "any"  # how the judges' verdicts combine: any one, or a majority
    unsafe_prompt: UnsafePromptParams | None = None  # categorises prompts of unknown category
    regex: RegexRulesParams | None = None  # per-category patterns
    refusal: RefusalParams | None = None  # refusal/compliance by prompt category
    reward_threshold: RewardThresholdParams | None = None  # reward-model score floor
    classifier: ClassifierParams | None = None  # any sequence-classification checkpoint
    learned: LearnedJudgeParams | None = None  # the `safety_judge` pipeline's trained classifier
    guard: GuardParams | None = None  # a causal LM asked a Llama-Guard-style question
    held_out: list[str] = Field(
        default_factory=list,
        description="configured judges that PPO never sees: left out of the panel (the "
        "violation rate, PPO's judge penalty) and reported beside it as the held-out judges, "
        "whose disagreement with the panel the gate reads as judge hacking",
    )

    @model_validator(mode="after")
    def _at_least_one_judge(self) -> JudgesParams:
        configured = [name for name in _BUILDERS if getattr(self, name) is not None]
        if not configured:
            raise ValueError(f"configure at least one judge: {sorted(_BUILDERS)}")
        unknown = [name for name in self.held_out if name not in configured]
        if unknown:
            raise ValueError(
                f"held_out names {unknown}, which are not configured judges ({configured})"
            )
        if not set(configured) - set(self.held_out):
            raise ValueError("held_out leaves no judge in the panel PPO is penalised by")
        return self


def _build_reward_threshold(
    params: RewardThresholdParams, reward_model: ModelArtifact | None
) -> Judge:
    if reward_model is None:
        raise ValueError(
            "behaviour_judges.reward_threshold is configured, but no reward model was given "
            "to score the generations with"
        )
    return RewardThresholdJudge(reward_model, params.threshold, params.batch_size)


@dataclass(frozen=True)
class PanelModels:
    """The run's models that judges score with, where configured: the reward model
    (`reward_threshold`) and the `safety_judge` pipeline's classifier (`learned` with no path)."""

    reward: ModelArtifact | None = None
    safety_classifier: ModelArtifact | None = None


def _build_learned(params: LearnedJudgeParams, classifier: ModelArtifact | None) -> Judge:
    if params.path is not None:
        return load_classifier_judge(params, "learned")
    if classifier is None:
        raise ValueError(
            "behaviour_judges.learned has no `path`, so it is this run's `safety_classifier`, "
            "but none was given: run the safety_judge pipeline first (full_alignment runs it), "
            "or set behaviour_judges.learned.path to a saved safety_classifier directory"
        )
    return ClassifierJudge(classifier, params.violation_label, params.threshold,
                           params.batch_size, params.max_length, "learned")  # fmt: skip


# Field name in `JudgesParams` → builder(params, models); the panel keeps this order.
_BUILDERS: dict[str, Callable[[Any, PanelModels], Judge]] = {
    "regex": lambda params, _: RegexRuleJudge(params.rules),
    "refusal": lambda params, _: RefusalJudge(params),
    "reward_threshold": lambda params, models: _build_reward_threshold(params, models.reward),
    "classifier": lambda params, _: load_classifier_judge(params),
    "learned": lambda params, models: _build_learned(params, models.safety_classifier),
    "guard": lambda params, _: load_guard_judge(params),
}


def build_judge_panel(
    params: JudgesParams,
    reward_model: ModelArtifact | None,
    held_out: bool = False,
    safety_classifier: ModelArtifact | None = None,
    leave_out: tuple[str, ...] = (),
) -> JudgePanel | None:
    """One judge per configured block, the `held_out` ones apart: the proxy panel by default,
    the held-out panel with `held_out=True` (None when none is held out). `reward_model` is
    needed only by `reward_threshold`, `safety_classifier` only by a `learned` judge without a
    path; `leave_out` names judges not to build (the learned judge, while it is being trained)."""
    names = [name for name in _BUILDERS if getattr(params, name) is not None
             and (name in params.held_out) == held_out and name not in leave_out]  # fmt: skip
    if not names:
        return None
    models = PanelModels(reward_model, safety_classifier)
    judges = [_BUILDERS[name](getattr(params, name), models) for name in names]
    categoriser = UnsafePromptJudge(params.unsafe_prompt) if params.unsafe_prompt else None
    return JudgePanel(judges, params.rule, categoriser)
