"""What every judge is: a batch of (prompt, response, category) in, one `Verdict` each out.

Judges, the panel that combines them, and everything that reads their verdicts (behaviour
metrics, PPO's judge penalty, the evaluation) agree on this contract and on nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Verdict:
    label: Literal["ok", "violation"]
    reason: str  # the rule that fired, or "" when ok
    # What the answer did, where a judge reads it (the refusal judge: refusal, compliance,
    # partial, unhelpful, unknown). Not part of equality: two judges agree on a label.
    stance: str | None = field(default=None, compare=False)


Messages = Sequence[Mapping[str, str]]  # a chat prompt: [{"role": ..., "content": ...}, ...]
Prompts = Sequence[Messages]  # (N,) the prompts of a batch
Responses = Sequence[str]  # (N,) the answers to judge, one per prompt
Categories = Sequence[str | None]  # (N,) each prompt's category: unsafe, benign, ... or unknown


@runtime_checkable
class Judge(Protocol):
    """Decides "clearly inappropriate" for a batch of generations, one verdict each."""

    name: str

    def judge_batch(
        self, prompts: Prompts, responses: Responses, categories: Categories
    ) -> list[Verdict]: ...


class PromptCategoriser(Protocol):
    def categorise(self, prompt_text: str) -> str: ...
