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
"""

from __future__ import annotations

import logging

import pandas as pd

from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.judges.panel_labels import sample_answers
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import base_checkpoint, train_base_policy
from alignment_stages.models.config import BaseModelParams, OwnRefusalParams

logger = logging.getLogger(__name__)

UNSAFE = "unsafe"


def build_base_policy_with_own_refusals(
    sft_examples: pd.DataFrame,
    refusal_prompts: pd.DataFrame,
    params: BaseModelParams,
    judges: JudgesParams,
) -> ModelArtifact:
    policy = base_checkpoint(sft_examples, params)
    own = None
    if params.sft.own_refusals is not None:
        own = sample_own_refusals(policy, refusal_prompts, params.sft.own_refusals, judges)
    return train_base_policy(policy, sft_examples, params, own)


def sample_own_refusals(
    policy: ModelArtifact,
    prompts: pd.DataFrame,
    params: OwnRefusalParams,
    judges: JudgesParams,
) -> pd.DataFrame:
    """(prompt_messages, answer): per drawn unsafe prompt, the first of its answers that the proxy
    panel reads as not a violation, i.e. a refusal that nothing after it undoes; a prompt with
    none gives nothing."""
    if "category" not in prompts:
        raise ValueError("base_model.sft.own_refusals reads the prompts' category; they have none")
    unsafe = prompts[prompts["category"].eq(UNSAFE)].reset_index(drop=True)
    if unsafe.empty:
        raise ValueError(
            f"base_model.sft.own_refusals needs unsafe prompts, and the {len(prompts)} "
            f"prompts have none (categories: {sorted(set(prompts['category']))})"
        )
    panel = build_judge_panel(judges, None)
    if panel is None:
        raise ValueError("base_model.sft.own_refusals needs a proxy judge in behaviour_judges")
    answers = sample_answers(policy, unsafe, params, answer_prefix=params.answer_prefix)
    verdicts = panel.judge_detailed(
        list(answers["prompt_messages"]), list(answers["answer"]), [UNSAFE] * len(answers)
    ).panel
    refused = answers[[v.label != "violation" for v in verdicts]]
    kept = refused.drop_duplicates("prompt_index")[["prompt_messages", "answer"]]
    logger.info(
        "base_model/own_refusals: %d prompts, %d answers, %d read as refusals, %d kept",
        answers["prompt_index"].nunique(), len(answers), len(refused), len(kept),
    )  # fmt: skip
    return kept.reset_index(drop=True)
