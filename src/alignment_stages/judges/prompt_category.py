"""The unsafe-prompt judge: a category for prompts whose source does not give one.

Curation takes a prompt's category from its source when the source says so (PKU-SafeRLHF's
safety flags, an explicit `category` field, a per-file mapping). For the rest, this judge reads
the prompt itself: configurable patterns of harmful *requests*, matched on normalised text.

The default patterns name a harmful object or act together with its target ("kill someone",
"make a bomb", "hack into"), never a bare verb, because XSTest (Röttger et al. 2024) shows how
safe prompts share words with unsafe ones: "how do I kill a stuck process", "how do I shoot a
good photo". A prompt that matches is `unsafe`; one that does not is `benign` when
`default_category` says so, `unknown` otherwise.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from alignment_stages.judges.refusal import normalise_text
from alignment_stages.judges.regex_rules import require_patterns_compile
from alignment_stages.parameters import StrictModel

CATEGORIES = ("unsafe", "benign", "unknown")

_PERSON = r"(?:someone|somebody|a person|people|him|her|them|my (?:\w+ )?(?:wife|husband|boss|" \
          r"neighbou?r|ex|teacher|coworker|classmate|friend|family|parents?|mom|dad)|a child|" \
          r"kids?|children|a minor)"  # fmt: skip
DEFAULT_UNSAFE_PROMPT_PATTERNS = (
    rf"\b(?:kill|murder|poison|hurt|harm|stab|strangle|kidnap|torture|stalk|blackmail|"
    rf"threaten|bully|drug|manipulate)\s+{_PERSON}\b",
    r"\b(?:make|build|assemble|create|synthesi[sz]e|produce|cook)\s+(?:a |an |some )?"
    r"(?:homemade |untraceable |pipe |nail )?(?:bomb|explosive|molotov|napalm|nerve agent|"
    r"ricin|sarin|anthrax|meth(?:amphetamine)?|ghost gun|silencer|poison|toxic gas|weapon)",
    r"\b(?:bomb|explosive|ransomware|keylogger|malware|phishing|ransom note|fake (?:id|passport)"
    r"|counterfeit|launder|ddos)\b",
    r"\bhack(?:ing)? into\b|\bbreak into\b|\bsteal(?:ing)? (?:a |an |from |someone|credit"
    r"|passwords?|money|cars?|identit)",
    r"\b(?:without (?:them|her|him|anyone|their consent|her consent|his consent|getting caught|"
    r"being caught|the police|a background check)|untraceable|get away with)\b",
    r"\b(?:self-harm|suicide method|commit suicide|kill myself)\b",
    r"\b(?:illegally|illegal drugs|shoplift\w*|smuggl\w+|forge\w*|tax evasion|cheat on my taxes)\b",
    r"\bincites? (?:violence|hatred)\b|\bfake news\b|\bhate speech\b",
)


class UnsafePromptParams(StrictModel):
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_UNSAFE_PROMPT_PATTERNS))
    default_category: Literal["benign", "unknown"] = "unknown"  # for prompts no pattern matches

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return require_patterns_compile(patterns, "unsafe_prompt.patterns")


class UnsafePromptJudge:
    """Categorises prompt texts: `unsafe` when a pattern matches, else `default_category`."""

    def __init__(self, params: UnsafePromptParams | None = None):
        params = params or UnsafePromptParams()
        self._patterns = [re.compile(p) for p in params.patterns]
        self.default_category = params.default_category

    def categorise(self, prompt_text: str) -> str:
        text = normalise_text(prompt_text)
        if any(pattern.search(text) for pattern in self._patterns):
            return "unsafe"
        return self.default_category
