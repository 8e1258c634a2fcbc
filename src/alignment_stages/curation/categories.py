"""A prompt category for every curated pair: `unsafe`, `benign` or `unknown`.

Taken from the source wherever it says so, in this order:
1. `data_curation.categories.by_source`: a per-file or per-subset mapping (a key matches when it
   is part of the file's path, e.g. HH-RLHF's `harmless-base` against `helpful-base`);
2. an explicit `category` field (HH-RLHF's subset name counts too), read through `synonyms`;
3. PKU-SafeRLHF's safety flags: a prompt with an unsafe response among its answers is a harmful
   request (the dataset's prompts were written to elicit harm);
4. otherwise the configurable unsafe-prompt judge reads the prompt text, or it stays `unknown`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignment_stages.curation.schema import ParsedPair
from alignment_stages.judges.prompt_category import UnsafePromptJudge, UnsafePromptParams
from alignment_stages.parameters import StrictModel

Category = Literal["unsafe", "benign", "unknown"]
CATEGORIES: tuple[Category, ...] = ("unsafe", "benign", "unknown")
DEFAULT_SYNONYMS: dict[str, Category] = {
    "unsafe": "unsafe", "harmful": "unsafe", "harmless-base": "unsafe", "red-team": "unsafe",
    "red_team_attempts": "unsafe", "benign": "benign", "safe": "benign", "helpful": "benign",
    "helpful-base": "benign", "helpful-online": "benign", "helpful-rejection-sampled": "benign",
}  # fmt: skip


class CategoryParams(StrictModel):
    by_source: dict[str, Category] = Field(
        default_factory=dict,
        description="part of a file path → category, e.g. harmless-base: unsafe",
    )
    synonyms: dict[str, Category] = Field(
        default_factory=lambda: dict(DEFAULT_SYNONYMS),
        description="explicit category values (case-insensitive) → category; others: unknown",
    )
    unsafe_prompt: UnsafePromptParams | None = Field(
        None, description="categorise the remaining prompts from their text"
    )


class CategoryDeriver:
    def __init__(self, params: CategoryParams):
        self.params = params
        self.synonyms = {key.casefold(): value for key, value in params.synonyms.items()}
        self.judge = UnsafePromptJudge(params.unsafe_prompt) if params.unsafe_prompt else None

    def derive(self, source: str, parsed: ParsedPair, prompt_text: str) -> Category:
        for key, category in self.params.by_source.items():
            if key in source:
                return category
        if parsed.category:
            explicit = self.synonyms.get(parsed.category.strip().casefold())
            if explicit:
                return explicit
        if parsed.chosen_safe is False or parsed.rejected_safe is False:
            return "unsafe"
        if self.judge is not None:
            return self.judge.categorise(prompt_text)  # type: ignore[return-value]
        return "unknown"
