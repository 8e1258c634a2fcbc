"""Audit any answers with a judge panel: `alignment-stages judge --env ENV INPUT OUTPUT`.

Input lines are JSON objects `{prompt, response, category?}` (`prompt` a string or a message
list). Each output line is the input plus `flagged` (bool), `judges` (each judge's verdict) and
`reason`. A line that cannot be judged (not JSON, not UTF-8, nested too deep, fields missing)
becomes an output line with `flagged: null` and an `error` reason; the rest go on.

The output is written to a hidden sibling and renamed into place when complete, and an output
path that is the input file is refused: a judge run never truncates the answers it reads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from alignment_stages.judges.panel import JudgePanel
from alignment_stages.staging import staging_name

logger = logging.getLogger(__name__)
BATCH = 32


class SameFileError(ValueError):
    """The output path names the input file: opening it for writing would erase the input."""


def refuse_overwriting_input(input_path: Path, output_path: Path) -> None:
    same = output_path.exists() and os.path.samefile(input_path, output_path)
    if same or output_path.resolve() == input_path.resolve():
        raise SameFileError(
            f"the output {output_path} is the input file {input_path}: judging would overwrite "
            "the answers it reads. Give another output path."
        )


def _decoded(line: bytes | str, first: bool) -> str:
    """A strict UTF-8 line: a Latin-1 byte is an error for this line, not a silent U+FFFD."""
    if isinstance(line, str):
        return line
    try:
        return line.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8: {exc}") from exc


def _parse(line: str) -> tuple[dict[str, Any], tuple[list[dict[str, str]], str, str | None]]:
    try:
        record = json.loads(line)
    except RecursionError as exc:  # the JSON parser's depth limit, not a crash of the run
        raise ValueError("not readable JSON: nested too deeply") from exc
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
    return record, (prompt, response, category)


def audit_lines(panel: JudgePanel, lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """One output record per non-blank input line, in order."""
    pending: list[tuple[int, dict[str, Any], tuple]] = []
    for number, line in enumerate(lines, start=1):
        try:
            text = _decoded(line, first=number == 1)
            if not text.strip():
                continue
            record, parsed = _parse(text)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            yield from _judge(panel, pending)
            pending = []
            yield {"line": number, "flagged": None, "judges": {}, "reason": f"error: {exc}"}
            continue
        pending.append((number, record, parsed))
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
                        | ({"stance": verdicts[row].stance} if verdicts[row].stance else {})
                  for name, verdicts in result.per_judge.items()}  # fmt: skip
        verdict = result.panel[row]
        yield {**record, "line": number, "category": result.categories[row], "flagged": verdict.label == "violation",
               "judges": judges, "reason": verdict.reason}  # fmt: skip


def audit_file(panel: JudgePanel, input_path: Path, output_path: Path) -> dict[str, int]:
    """Judge every line of `input_path` into `output_path`; returns the counts."""
    refuse_overwriting_input(input_path, output_path)
    counts = {"lines": 0, "flagged": 0, "errors": 0}
    target = output_path.resolve()  # a link's file, not the link, is replaced
    # A pipe or device (/dev/stdout) cannot be replaced by a rename: it is written directly.
    staging = None if target.exists() and not target.is_file() else (
        target.parent / staging_name(target.name))  # fmt: skip
    try:
        # backslashreplace: a lone surrogate (a `\ud800` escape in the input) is written back
        # as the same JSON escape instead of failing the whole file.
        with (
            open(input_path, "rb") as source,
            open(staging or target, "w", encoding="utf-8", errors="backslashreplace") as out,
        ):
            for record in audit_lines(panel, source):
                counts["lines"] += 1
                counts["flagged"] += bool(record["flagged"])
                counts["errors"] += record["flagged"] is None
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if staging is not None:
            os.replace(staging, target)
    finally:
        if staging is not None:
            staging.unlink(missing_ok=True)
    logger.info("judge: %(lines)d lines, %(flagged)d flagged, %(errors)d errors", counts)
    return counts
