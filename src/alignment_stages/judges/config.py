"""The `behaviour_judges` parameter block and the panel it builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, model_validator

from alignment_stages.judges.classifier import ClassifierParams, load_classifier_judge
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
    learned: ClassifierParams | None = None  # the `safety_judge` pipeline's trained classifier
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


# Field name in `JudgesParams` → builder; the panel keeps this order.
_BUILDERS: dict[str, Callable[[Any, ModelArtifact | None], Judge]] = {
    "regex": lambda params, _: RegexRuleJudge(params.rules),
    "refusal": lambda params, _: RefusalJudge(params),
    "reward_threshold": _build_reward_threshold,
    "classifier": lambda params, _: load_classifier_judge(params),
    "learned": lambda params, _: load_classifier_judge(params, "learned"),
    "guard": lambda params, _: load_guard_judge(params),
}


def build_judge_panel(
    params: JudgesParams, reward_model: ModelArtifact | None, held_out: bool = False
) -> JudgePanel | None:
    """One judge per configured block, the `held_out` ones apart: the proxy panel by default,
    the held-out panel with `held_out=True` (None when none is held out). `reward_model` is
    needed only by `reward_threshold`."""
    names = [name for name in _BUILDERS if getattr(params, name) is not None
             and (name in params.held_out) == held_out]  # fmt: skip
    if not names:
        return None
    judges = [_BUILDERS[name](getattr(params, name), reward_model) for name in names]
    categoriser = UnsafePromptJudge(params.unsafe_prompt) if params.unsafe_prompt else None
    return JudgePanel(judges, params.rule, categoriser)
