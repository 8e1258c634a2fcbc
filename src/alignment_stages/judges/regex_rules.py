"""Regular-expression rules per prompt category: the cheapest, most auditable judge."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import Field, field_validator

from alignment_stages.judges.protocol import Categories, Prompts, Responses, Verdict
from alignment_stages.parameters import StrictModel

ANY_CATEGORY = "*"


def require_patterns_compile(patterns: list[str], where: str) -> list[str]:
    """A bad regular expression in the parameters fails validation, naming where it stands."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}: bad pattern {pattern!r}: {exc}") from exc
    return patterns


class RegexRulesParams(StrictModel):
    """`rules` maps a prompt category to case-insensitive patterns; `*` applies to every category."""

    rules: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _patterns_compile(cls, rules: dict[str, list[str]]) -> dict[str, list[str]]:
        for category, patterns in rules.items():
            require_patterns_compile(patterns, f"rules.{category}")
        return rules


class RegexRuleJudge:
    name = "regex"

    def __init__(self, rules: Mapping[str, Sequence[str]]):
        self._compiled = {
            category: [(p, re.compile(p, re.IGNORECASE | re.MULTILINE)) for p in patterns]
            for category, patterns in rules.items()
        }

    def judge(self, response: str, category: str | None) -> Verdict:
        candidates = self._compiled.get(category or "", []) + self._compiled.get(ANY_CATEGORY, [])
        for pattern, compiled in candidates:
            if compiled.search(response):
                return Verdict("violation", f"regex[{category or ANY_CATEGORY}]: {pattern}")
        return Verdict("ok", "")

    def judge_batch(
        self, prompts: Prompts, responses: Responses, categories: Categories
    ) -> list[Verdict]:
        """One verdict per response; the rules read only the response and its category."""
        del prompts  # part of the `Judge` protocol; patterns never look at the prompt
        return [
            self.judge(response, category)
            for response, category in zip(responses, categories, strict=True)
        ]
