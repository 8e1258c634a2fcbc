"""The `base_model` stage: the pretrained checkpoint (or the tiny model), SFT'd on `sft_examples`
and, where `sft.own_refusals` asks, on the checkpoint's own refusals of unsafe training prompts.

Why its own refusals. SmolLM2-135M-Instruct answers nearly every harmful request. The published
answers people scored harmless are 87 of the smollm2 run's 509 SFT examples, and after SFT on
them the base still complied with 0.98 of the held-out harmful requests: PPO then samples no
refusal to reinforce, and DPO has none on its chosen side. So the checkpoint answers unsafe
training prompts continuing a refusal opening, and the answers the proxy judges read as a
refusal join the SFT examples: the model learns to refuse in its own words. This is context
distillation (Askell et al. 2021), with the opening as the context, and rejection sampling by a
judge as in Constitutional AI's supervised stage (Bai et al. 2022), which trains on the model's
own revised answers. The benign SFT examples (AlpacaEval answers) stay beside them, so the base
learns when to refuse as well as how.

Why its own answers too (`sft.own_answers`). With own refusals alone, every answer in the model's
own words that the SFT shows is a refusal, and the published benign answers are in another
style (GPT-4's, cut at `max_length`): the base learned to refuse in its own style whatever was
asked. Its own answers to benign training prompts, kept where the proxy judges read them as
helpful, put its own style on both sides of the line, so the prompt is what tells them apart.
"""

from __future__ import annotations

import logging

import pandas as pd

from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.judges.panel_labels import sample_answers
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import base_checkpoint, train_base_policy
from alignment_stages.models.config import (
    AnswerSampleParams,
    BaseModelParams,
    OwnAnswerParams,
    OwnRefusalParams,
)

logger = logging.getLogger(__name__)

UNSAFE = "unsafe"
BENIGN = "benign"


def build_base_policy_with_own_samples(
    sft_examples: pd.DataFrame,
    training_prompts: pd.DataFrame,
    params: BaseModelParams,
    judges: JudgesParams,
) -> ModelArtifact:
    policy = base_checkpoint(sft_examples, params)
    own = []
    if params.sft.own_refusals is not None:
        own.append(sample_own_refusals(policy, training_prompts, params.sft.own_refusals, judges))
    if params.sft.own_answers is not None:
        own.append(sample_own_answers(policy, training_prompts, params.sft.own_answers, judges))
    return train_base_policy(policy, sft_examples, params, pd.concat(own) if own else None)


def sample_own_refusals(
    policy: ModelArtifact,
    prompts: pd.DataFrame,
    params: OwnRefusalParams,
    judges: JudgesParams,
) -> pd.DataFrame:
    """(prompt_messages, answer): per drawn unsafe prompt, the first of its answers that the proxy
    panel reads as not a violation, i.e. a refusal that nothing after it undoes; a prompt with
    none gives nothing."""
    return _sample_passing(policy, prompts, UNSAFE, params, judges, params.answer_prefix)


def sample_own_answers(
    policy: ModelArtifact,
    prompts: pd.DataFrame,
    params: OwnAnswerParams,
    judges: JudgesParams,
) -> pd.DataFrame:
    """(prompt_messages, answer): per drawn benign prompt, the first of its answers that the proxy
    panel reads as not a violation, i.e. neither a refusal nor unhelpful; a prompt with none
    gives nothing."""
    return _sample_passing(policy, prompts, BENIGN, params, judges, None)


def _sample_passing(
    policy: ModelArtifact,
    prompts: pd.DataFrame,
    category: str,
    params: AnswerSampleParams,
    judges: JudgesParams,
    answer_prefix: str | None,
) -> pd.DataFrame:
    option = "own_refusals" if category == UNSAFE else "own_answers"
    if "category" not in prompts:
        raise ValueError(f"base_model.sft.{option} reads the prompts' category; they have none")
    drawn = prompts[prompts["category"].eq(category)].reset_index(drop=True)
    if drawn.empty:
        raise ValueError(
            f"base_model.sft.{option} needs {category} prompts, and the {len(prompts)} "
            f"prompts have none (categories: {sorted(set(prompts['category']))})"
        )
    panel = build_judge_panel(judges, None)
    if panel is None:
        raise ValueError(f"base_model.sft.{option} needs a proxy judge in behaviour_judges")
    answers = sample_answers(policy, drawn, params, answer_prefix=answer_prefix)
    verdicts = panel.judge_detailed(
        list(answers["prompt_messages"]), list(answers["answer"]), [category] * len(answers)
    ).panel
    passing = answers[[v.label != "violation" for v in verdicts]]
    kept = passing.drop_duplicates("prompt_index")[["prompt_messages", "answer"]]
    logger.info(
        "base_model/%s: %d prompts, %d answers, %d passed the judges, %d kept",
        option, answers["prompt_index"].nunique(), len(answers), len(passing), len(kept),
    )  # fmt: skip
    return kept.reset_index(drop=True)
