"""Audit any answers with a judge panel: `alignment-stages judge --env ENV INPUT OUTPUT`.

Input lines are JSON objects `{prompt, response, category?}` (`prompt` a string or a message
list). Each output line is the input plus `flagged` (bool), `judges` (each judge's verdict) and
`reason`. A line that cannot be judged becomes an output line with `flagged: null` and an
`error` reason; the rest go on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from alignment_stages.judges.panel import JudgePanel

logger = logging.getLogger(__name__)
BATCH = 32


def _parse(line: str) -> tuple[list[dict[str, str]], str, str | None]:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("a line must be a JSON object")
    for key in ("prompt", "response"):
        if key not in record:
            raise ValueError(f"missing field {key!r}")
    prompt, response, category = record["prompt"], record["response"], record.get("category")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not (isinstance(prompt, list) and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt)):  # fmt: skip
        raise ValueError("prompt must be a string or a list of {role, content} messages")
    if not isinstance(response, str):
        raise ValueError("response must be a string")
    if category is not None and not isinstance(category, str):
        raise ValueError("category must be a string when given")
    return prompt, response, category


def audit_lines(panel: JudgePanel, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """One output record per non-blank input line, in order."""
    pending: list[tuple[int, dict[str, Any], tuple]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = _parse(line)
        except (ValueError, json.JSONDecodeError) as exc:
            yield from _judge(panel, pending)
            pending = []
            yield {"line": number, "flagged": None, "judges": {}, "reason": f"error: {exc}"}
            continue
        pending.append((number, json.loads(line), parsed))
        if len(pending) == BATCH:
            yield from _judge(panel, pending)
            pending = []
    yield from _judge(panel, pending)


def _judge(panel: JudgePanel, pending: list) -> Iterator[dict[str, Any]]:
    if not pending:
        return
    prompts, responses, categories = (list(column) for column in zip(*(p for _, _, p in pending), strict=True))  # fmt: skip
    result = panel.judge_detailed(prompts, responses, categories)
    for row, (number, record, _) in enumerate(pending):
        judges = {name: {"label": verdicts[row].label, "reason": verdicts[row].reason}
                  for name, verdicts in result.per_judge.items()}  # fmt: skip
        verdict = result.panel[row]
        yield {**record, "line": number, "category": result.categories[row], "flagged": verdict.label == "violation",
               "judges": judges, "reason": verdict.reason}  # fmt: skip


def audit_file(panel: JudgePanel, input_path: Path, output_path: Path) -> dict[str, int]:
    """Judge every line of `input_path` into `output_path`; returns the counts."""
    counts = {"lines": 0, "flagged": 0, "errors": 0}
    with (
        open(input_path, encoding="utf-8-sig", errors="replace") as source,
        open(output_path, "w", encoding="utf-8") as out,
    ):
        for record in audit_lines(panel, source):
            counts["lines"] += 1
            counts["flagged"] += bool(record["flagged"])
            counts["errors"] += record["flagged"] is None
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    logger.info("judge: %(lines)d lines, %(flagged)d flagged, %(errors)d errors", counts)
    return counts
