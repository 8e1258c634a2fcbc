"""Deterministic splits by prompt group.

A prompt group is every pair that shares one normalised prompt text. Each group goes to exactly
one split, chosen by a salted hash of its prompt, so no prompt seen in training (SFT, reward model,
PPO) appears in evaluation (`eval_prompts`, `capability_probe`), and a split does not change when
unrelated records are added or files are reordered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alignment_stages.curation.config import SPLIT_NAMES, SplitFractions, SplitMinimums
from alignment_stages.curation.normalise import hash_position, identity_text, prompt_id

PROMPT_COLUMNS = (
    "prompt_id", "prompt_messages", "prompt_text", "category", "harm_category", "source", "n_pairs"
)  # fmt: skip
TRAINING_SPLITS = ("sft_examples", "preference_train", "preference_val", "ppo_prompts")
EVALUATION_SPLITS = ("eval_prompts", "capability_probe")
PROBE_COLUMNS = (
    "prompt_id", "prompt_messages", "prompt_text", "category", "source", "reference_response"
)  # fmt: skip


@dataclass
class PreferenceSplits:
    sft_examples: pd.DataFrame  # pairs; base_model picks its SFT mix of chosen/rejected from them
    preference_train: pd.DataFrame  # pairs for the reward model (and DPO)
    preference_val: pd.DataFrame  # pairs held out for reward-model accuracy
    ppo_prompts: pd.DataFrame  # one row per prompt
    eval_prompts: pd.DataFrame  # one row per prompt, never trained on
    capability_probe: pd.DataFrame  # held-out prompt + chosen answer, for perplexity


def _group_buckets(prompt_texts: pd.Series, seed: int) -> pd.Series:
    """Uniform [0, 1) position of each distinct prompt, from a salted 64-bit hash."""
    unique = prompt_texts.drop_duplicates()
    positions = [hash_position(seed, text) for text in unique]
    return pd.Series(positions, index=unique.to_numpy())


def _prompt_table(pairs: pd.DataFrame) -> pd.DataFrame:
    if "harm_category" not in pairs:  # the raw folder's formats carry no set-specific category
        pairs = pairs.assign(harm_category=None)
    grouped = pairs.groupby("prompt_id", sort=True, dropna=False)
    table = grouped.first()[
        ["prompt_messages", "prompt_text", "category", "harm_category", "source"]
    ]
    table["n_pairs"] = grouped.size()
    return table.reset_index()[list(PROMPT_COLUMNS)]


def _probe_table(pairs: pd.DataFrame) -> pd.DataFrame:
    probe = pairs.rename(columns={"chosen": "reference_response"})
    probe = probe.drop_duplicates(["prompt_id", "reference_response"])
    return probe[list(PROBE_COLUMNS)].reset_index(drop=True)


def split_by_prompt_group(
    pairs: pd.DataFrame, fractions: SplitFractions, seed: int
) -> PreferenceSplits:
    """Assign every prompt group to one split by cumulative fraction of its hash position."""
    with_ids = pairs.assign(prompt_id=[prompt_id(text) for text in pairs["prompt_text"]])
    position = with_ids["prompt_text"].map(_group_buckets(with_ids["prompt_text"], seed))
    edges = np.cumsum([getattr(fractions, name) for name in SPLIT_NAMES])
    edges[-1] = 1.0  # absorb float rounding so every position has a split
    split_index = np.searchsorted(edges, position.to_numpy(), side="right")
    parts = {
        name: with_ids[split_index == i].reset_index(drop=True)
        for i, name in enumerate(SPLIT_NAMES)
    }
    return PreferenceSplits(
        sft_examples=parts["sft_examples"],
        preference_train=parts["preference_train"],
        preference_val=parts["preference_val"],
        ppo_prompts=_prompt_table(parts["ppo_prompts"]),
        eval_prompts=_prompt_table(parts["eval_prompts"]),
        capability_probe=_probe_table(parts["capability_probe"]),
    )


class SplitTooSmallError(ValueError):
    """A split has fewer rows than `data_curation.min_split_rows` asks for."""


def check_split_sizes(
    splits: PreferenceSplits, minimums: SplitMinimums, fractions: SplitFractions, n_prompts: int
) -> None:
    """Name every split below its minimum and roughly how many distinct prompts would fill it.

    Splits are drawn by prompt group, so a split's expected size is its share of the prompts:
    `minimum / share` prompts in all give it `minimum` groups on average.
    """
    problems = []
    for name in SPLIT_NAMES:
        rows = len(getattr(splits, name))
        minimum, share = getattr(minimums, name), getattr(fractions, name)
        if rows >= minimum:
            continue
        if share == 0:
            hint = f"data_curation.splits.{name} is 0: give it a share"
        else:
            needed = math.ceil(minimum / share)
            hint = (
                f"add preference data: with share {share:g}, about {needed} distinct prompts "
                f"give it {minimum} (there are {n_prompts})"
            )
        problems.append(f"{name} has {rows} rows < min_split_rows.{name}={minimum} ({hint})")
    if problems:
        raise SplitTooSmallError(
            "Too little data after splitting by prompt group: "
            + "; ".join(problems)
            + ". Add pairs with new prompts under raw_preferences, or lower "
            "data_curation.min_split_rows."
        )


def add_published(splits: PreferenceSplits, published: pd.DataFrame) -> PreferenceSplits:
    """The published sets' rows join the splits their `use` sent them to. Pair splits keep the
    pair columns (an SFT example with a published answer and no rejected one has rejected null);
    prompt splits keep one row per distinct prompt."""
    if published.empty:
        return splits
    rows = published.assign(prompt_id=[prompt_id(text) for text in published["prompt_text"]])
    parts = {name: rows[rows["split"] == name].drop(columns="split") for name in SPLIT_NAMES}
    merged = {}
    for name in ("sft_examples", "preference_train", "preference_val"):
        mine = getattr(splits, name)
        frame = pd.concat([mine, parts[name][mine.columns.union(["harm_category"], sort=False)]],
                          ignore_index=True)  # fmt: skip
        merged[name] = frame
    both = lambda name, table: pd.concat(  # noqa: E731
        [getattr(splits, name), table(parts[name])], ignore_index=True
    ).drop_duplicates(
        "prompt_id" if name != "capability_probe" else ["prompt_id", "reference_response"]
    )
    return PreferenceSplits(
        **merged,
        ppo_prompts=both("ppo_prompts", _prompt_table),
        eval_prompts=both("eval_prompts", _prompt_table),
        capability_probe=both("capability_probe", _probe_table),
    )


class EvalOverlapError(ValueError):
    """A prompt is in a training split and in an evaluation split."""


def check_eval_disjoint(splits: PreferenceSplits) -> None:
    """No prompt, after normalisation and NFKC folding, is both trained on and evaluated on.
    Curation screens near-duplicates before this; this is the last guard on exact copies."""
    evaluated = {identity_text(t) for name in EVALUATION_SPLITS
                 for t in getattr(splits, name)["prompt_text"]}  # fmt: skip
    for name in TRAINING_SPLITS:
        shared = [t for t in getattr(splits, name)["prompt_text"] if identity_text(t) in evaluated]
        if shared:
            raise EvalOverlapError(
                f"{len(shared)} prompts of {name} are also evaluation prompts, e.g. "
                f"{shared[0][:120]!r}. Evaluation would measure memorisation."
            )
