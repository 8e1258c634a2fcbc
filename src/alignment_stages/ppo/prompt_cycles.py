"""Which prompts each PPO update rolls out: seeded passes over `ppo_prompts`, optionally with a
fixed share per prompt category. Their state is part of a round checkpoint."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from typing import Any

import pandas as pd

from alignment_stages.models.base import as_messages
from alignment_stages.parameters import category_counts

logger = logging.getLogger(__name__)


class PromptCycle:
    """Seeded shuffles of `ppo_prompts`, one pass after another, in batches of `batch_size`
    rollouts: batch_size / samples_per_prompt prompts, each repeated samples_per_prompt times in
    consecutive rows (the groups `leave_one_out_advantages` reads). Its position is part of a
    round checkpoint, so a resumed run draws the batches the killed one would have."""

    def __init__(
        self, prompts: pd.DataFrame, batch_size: int, seed: int, samples_per_prompt: int = 1
    ):
        self._messages = [as_messages(p) for p in prompts["prompt_messages"]]
        self._rng = random.Random(seed)
        self._per_batch = batch_size // samples_per_prompt
        self._samples = samples_per_prompt
        self._order: list[int] = []

    def __iter__(self) -> Iterator[list[list[dict]]]:
        return self

    def __next__(self) -> list[list[dict]]:
        if len(self._order) < self._per_batch:
            refill = list(range(len(self._messages)))
            self._rng.shuffle(refill)
            self._order += refill
        batch, self._order = self._order[: self._per_batch], self._order[self._per_batch :]
        return [self._messages[i] for i in batch for _ in range(self._samples)]

    def state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {"rng": [version, list(internal), gauss], "order": list(self._order)}

    def restore(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._order = list(state["order"])


class CategoryMixCycle:
    """Batches holding each prompt category in a fixed share (`ppo.category_mix`): one seeded
    `PromptCycle` per category, their prompt groups interleaved in a seeded order.

    Why: with a uniform draw the majority category decides which way the shared behaviour
    moves. On SmolLM2 (ppo_prompts 62% benign) 24 updates taught the policy to stop refusing
    altogether: over-refusal on benign eval prompts fell 16% -> 1% while compliance with unsafe
    ones rose 86% -> 93% (docs/performance.md, run H). RLHF for safety fixes the mix of harmful
    and helpful prompts it trains on for the same reason (Bai et al. 2022, "Training a Helpful
    and Harmless Assistant with RLHF"; Dai et al. 2024, "Safe RLHF").
    """

    def __init__(
        self,
        prompts: pd.DataFrame,
        batch_size: int,
        seed: int,
        samples_per_prompt: int,
        mix: dict[str, float],
    ):
        counts = category_counts(mix, batch_size // samples_per_prompt)
        categories = prompts["category"] if "category" in prompts else pd.Series(dtype=object)
        present = categories.value_counts().to_dict()
        missing = [c for c, n in counts.items() if n and not present.get(c)]
        if missing:
            raise ValueError(
                f"ppo.category_mix asks for {missing}, but ppo_prompts has no prompt of that "
                f"category (it has {present or 'no categories'})"
            )
        left_out = len(prompts) - sum(present.get(c, 0) for c, n in counts.items() if n)
        if left_out:
            logger.info("ppo/category_mix leaves out %d ppo_prompts of unlisted categories",
                        left_out)  # fmt: skip
        self._strata = {
            category: PromptCycle(
                prompts[categories == category],
                n * samples_per_prompt,
                seed + index,
                samples_per_prompt,
            )
            for index, (category, n) in enumerate(counts.items())
            if n
        }
        self._samples = samples_per_prompt
        self._rng = random.Random(seed)

    def __iter__(self) -> Iterator[list[list[dict]]]:
        return self

    def __next__(self) -> list[list[dict]]:
        groups = []
        for stratum in self._strata.values():
            rows = next(stratum)
            groups += [rows[i : i + self._samples] for i in range(0, len(rows), self._samples)]
        self._rng.shuffle(groups)  # minibatches mix categories, groups stay whole
        return [row for group in groups for row in group]

    def state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "strata": {category: s.state() for category, s in self._strata.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        for category, stratum in self._strata.items():
            stratum.restore(state["strata"][category])


def cycle_prompts(
    prompts: pd.DataFrame,
    batch_size: int,
    seed: int,
    samples_per_prompt: int = 1,
    category_mix: dict[str, float] | None = None,
) -> PromptCycle | CategoryMixCycle:
    if category_mix is None:
        return PromptCycle(prompts, batch_size, seed, samples_per_prompt)
    return CategoryMixCycle(prompts, batch_size, seed, samples_per_prompt, category_mix)


def within_prompt_budget(prompts: pd.DataFrame, tokenizer, max_tokens: int | None) -> pd.DataFrame:
    """`prompts` less those whose chat-formatted length passes `max_tokens`. They are left out,
    not cut: a truncated request is another request. The count is logged per category."""
    if max_tokens is None or prompts.empty:
        return prompts
    lengths = [
        len(tokenizer.apply_chat_template(as_messages(m), add_generation_prompt=True,
                                          tokenize=True, return_dict=True)["input_ids"])
        for m in prompts["prompt_messages"]
    ]  # fmt: skip
    fits = pd.Series(lengths, index=prompts.index) <= max_tokens
    if not fits.any():
        raise ValueError(
            f"no ppo_prompt fits ppo.max_prompt_tokens={max_tokens} (shortest: {min(lengths)} "
            "tokens): raise it, or add shorter prompts"
        )
    if not fits.all():
        dropped = prompts[~fits]
        by_category = dropped["category"].value_counts().to_dict() if "category" in dropped else {}
        logger.info("ppo/max_prompt_tokens=%d leaves out %d of %d ppo_prompts %s", max_tokens,
                    len(dropped), len(prompts), by_category)  # fmt: skip
    return prompts[fits].reset_index(drop=True)
