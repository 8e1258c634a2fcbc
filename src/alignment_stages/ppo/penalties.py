"""The rule-based reward term: a penalty for each rollout the judge panel flags."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from alignment_stages.judges.panel import JudgePanel
from alignment_stages.models.base import as_messages


def _prompt_key(messages) -> tuple:
    return tuple((m["role"], m["content"]) for m in messages)


def judge_penalties(
    judges: JudgePanel,
    prompts: Sequence[list[dict]],
    texts: Sequence[str],
    categories: Sequence[str | None],
    penalty: float,
) -> torch.Tensor:
    """(B,) `penalty` for each response the panel calls a violation, 0 for the rest: the
    rule-based reward term PPO and the critic-free trainers share (Mu et al. 2024)."""
    verdicts = judges.judge_batch(list(prompts), list(texts), list(categories))
    return penalty * torch.tensor([v.label == "violation" for v in verdicts], dtype=torch.float32)


def judge_penalty_fn(judges: JudgePanel, ppo_prompts: pd.DataFrame, judge_penalty: float):
    """`judge_penalty` (normalised units) per rollout the panel flags, or None when it is 0.

    A reward model learns what its pairs show; the demo's pairs do not show what a refusal of a
    real model looks like, so on SmolLM2 it pays for style, not for refusing. A rule-based term
    from the judges (Mu et al. 2024, "Rule Based Rewards for Language Model Safety") pays for
    exactly the behaviour the gate measures. The evaluation reports the reward model's score
    alone, so the gate's "reward up while the judges flag more" sign still reads the proxy.
    """
    if judge_penalty == 0:
        return None
    categories = {
        _prompt_key(as_messages(messages)): category
        for messages, category in zip(
            ppo_prompts["prompt_messages"], ppo_prompts["category"], strict=True
        )
    }

    def penalties(prompts, texts) -> torch.Tensor:
        prompt_categories = [categories.get(_prompt_key(p)) for p in prompts]
        return judge_penalties(judges, prompts, texts, prompt_categories, judge_penalty)

    return penalties
