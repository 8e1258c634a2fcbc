"""Validated parameters of the `data_curation` pipeline (conf/base/parameters_data_curation.yml)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from alignment_stages.curation.categories import CategoryParams
from alignment_stages.curation.published_config import PublishedSetParams
from alignment_stages.parameters import StrictModel

FormatName = Literal[
    "prompt_chosen_rejected", "hh_rlhf", "ultrafeedback_binarized", "pku_saferlhf", "shp"
]

SPLIT_NAMES = (
    "sft_examples",
    "preference_train",
    "preference_val",
    "ppo_prompts",
    "eval_prompts",
    "capability_probe",
)


class LengthLimits(StrictModel):
    max_prompt_chars: int = Field(4000, gt=0, description="longest prompt kept, after normalising")
    max_response_chars: int = Field(4000, gt=0, description="longest chosen/rejected answer kept")


class SplitFractions(StrictModel):
    """Share of prompt groups per split. Every prompt group lands in exactly one split."""

    sft_examples: float = Field(0.30, ge=0, le=1)
    preference_train: float = Field(0.35, ge=0, le=1)
    preference_val: float = Field(0.07, ge=0, le=1)
    ppo_prompts: float = Field(0.13, ge=0, le=1)
    eval_prompts: float = Field(0.10, ge=0, le=1)
    capability_probe: float = Field(0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = sum(getattr(self, name) for name in SPLIT_NAMES)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"split fractions must sum to 1.0, got {total:.6f}")
        return self


class SplitMinimums(StrictModel):
    """Fewest rows each split may have after splitting. An empty `preference_val` or
    `eval_prompts` would otherwise fail much later, deep inside training or evaluation."""

    sft_examples: int = Field(1, ge=0, description="pairs")
    preference_train: int = Field(1, ge=0, description="pairs")
    preference_val: int = Field(1, ge=0, description="pairs")
    ppo_prompts: int = Field(1, ge=0, description="prompts")
    eval_prompts: int = Field(1, ge=0, description="prompts")
    capability_probe: int = Field(1, ge=0, description="prompt + reference answer rows")


class DataCurationParams(StrictModel):
    seed: int = Field(0, description="salt of the prompt-group split hash")
    max_bad_fraction: float = Field(
        0.2, ge=0, le=1, description="a file with a larger quarantined share stops the run"
    )
    formats: dict[str, FormatName] = Field(
        default_factory=dict, description="per-file format override: file name → format"
    )
    detection_sample_size: int = Field(200, gt=0, description="records sampled to detect a format")
    follow_links_outside_raw: bool = Field(
        False,
        description="read files that links in the raw folder lead to outside it; off, such a "
        "link stops the run, naming it",
    )
    lengths: LengthLimits = Field(default_factory=LengthLimits)
    splits: SplitFractions = Field(default_factory=SplitFractions)
    min_split_rows: SplitMinimums = Field(default_factory=SplitMinimums)
    categories: CategoryParams = Field(
        default_factory=CategoryParams, description="how each pair's prompt category is derived"
    )
    published_sets: dict[str, PublishedSetParams] = Field(
        default_factory=dict,
        description="published prompt and answer sets, read beside raw_preferences (smollm2)",
    )
    near_duplicate_jaccard: float = Field(
        0.5,
        gt=0,
        le=1,
        description="word-trigram Jaccard at which a training prompt counts as a copy of an "
        "evaluation prompt and is held out of training",
    )
