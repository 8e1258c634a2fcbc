"""Read one published set's file into records, and one record into a `PublishedRecord`.

The formats the published sets ship in:
- PyRIT's seed files: YAML, records under `seeds:` (`value`, `harm_categories`);
- CSV, some with `#` comment lines before the header (PyRIT's `# dataset_version=1.2`);
- JSON (an array, or an object holding one) and JSON Lines.
Each record is read through the set's field paths (`turns.0` reaches into lists), so a new set
needs configuration, not code. A record that lacks a field is quarantined with the reason, as the
preference formats' records are; a file whose format changed is mostly quarantined and stops the
run through `max_bad_fraction`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from alignment_stages.curation.categories import DEFAULT_SYNONYMS
from alignment_stages.curation.normalise import normalise_text, render_prompt_text
from alignment_stages.curation.published_config import PublishedSetParams, ReaderName
from alignment_stages.curation.readers import (
    RawRecord,
    SourceFileError,
    _as_object,
    read_csv,
    read_json,
    read_jsonl,
)
from alignment_stages.curation.schema import Reason, RecordError

_SUFFIX_READERS: dict[str, ReaderName] = {
    ".prompt": "yaml_seeds",
    ".yaml": "yaml_seeds",
    ".yml": "yaml_seeds",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
}


def reader_of(params: PublishedSetParams) -> ReaderName:
    if params.reader:
        return params.reader
    suffix = PurePosixPath(params.source).suffix.lower()
    if suffix not in _SUFFIX_READERS:
        raise SourceFileError(
            f"{params.source}: cannot tell the format from {suffix!r}; set `reader` to one of "
            f"{sorted(set(_SUFFIX_READERS.values()))}"
        )
    return _SUFFIX_READERS[suffix]


def strip_leading_comments(data: bytes) -> tuple[bytes, list[str]]:
    """`#` lines before a CSV header are the publisher's notes (a dataset version), not rows.
    Only leading lines go: inside a quoted answer a line may well start with `#` (Markdown)."""
    comments = []
    rest = data
    while rest.startswith(b"#") or (comments and rest[:1] in (b"\n", b"\r")):
        line, _, rest = rest.partition(b"\n")
        if line.strip():
            comments.append(line.decode("utf-8", errors="replace").rstrip("\r, "))
    return rest, comments


def _records_under(value: Any, key: str | None, source: str) -> list[Any]:
    if key is not None:
        if not isinstance(value, dict) or key not in value:
            raise SourceFileError(f"{source}: no list under records_key {key!r}")
        value = value[key]
    if not isinstance(value, list):
        raise SourceFileError(f"{source}: expected a list of records, found {type(value).__name__}")
    return value


def read_set(params: PublishedSetParams, data: bytes) -> tuple[Iterator[RawRecord], list[str]]:
    """The set's records, and the comment lines its file opened with."""
    reader = reader_of(params)
    if reader == "csv":
        body, comments = strip_leading_comments(data)
        return read_csv(body), comments
    if reader == "jsonl":
        return read_jsonl(data), []
    if reader == "json" and params.records_key is None:
        return read_json(data), []
    try:  # YAML seeds, or JSON with its records under a key
        value = yaml.safe_load(data) if reader == "yaml_seeds" else json.loads(data.decode())
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # UnicodeDecodeError included
        raise SourceFileError(f"{params.source}: not readable as {reader}: {exc}") from exc
    items = _records_under(value, params.records_key, params.source)
    return (_as_object(index, item, None) for index, item in enumerate(items)), []


@dataclass(frozen=True, slots=True)
class PublishedRecord:
    """One record of a published set, normalised: a request, and perhaps an answer and labels."""

    record_index: int
    prompt_messages: list[dict[str, str]]
    prompt_text: str
    harm_category: str | None
    answer: str | None
    score: float | None
    category: str | None = None  # the record's own category, where the set has one per record


def field_value(record: dict[str, Any], path: str) -> Any:
    """`turns.0` is record["turns"][0]; a missing step is a missing field."""
    value: Any = record
    for step in path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise RecordError(Reason.MISSING_FIELD, f"field '{path}' is missing")
    if value is None:
        raise RecordError(Reason.MISSING_FIELD, f"field '{path}' is missing")
    return value


def _text(record: dict[str, Any], path: str, name: str) -> str:
    value = field_value(record, path)
    if not isinstance(value, str):
        raise RecordError(
            Reason.WRONG_TYPE, f"field '{path}' ({name}) is {type(value).__name__}, expected str"
        )
    text = normalise_text(value)
    if not text:
        raise RecordError(Reason.EMPTY_TEXT, f"{name} ('{path}') is empty after normalisation")
    return text


def _score(record: dict[str, Any], paths: list[str]) -> float | None:
    """The mean of the raters' labels that are present (PyRIT's multi-rater files leave some
    columns empty)."""
    values = []
    for path in paths:
        try:
            value = field_value(record, path)
        except RecordError:
            continue
        if isinstance(value, str):
            if not value.strip():
                continue
            try:
                value = float(value)
            except ValueError:
                raise RecordError(
                    Reason.WRONG_TYPE, f"field '{path}' is {value!r}, expected a number"
                ) from None
        if isinstance(value, bool):  # a yes/no label ("violation": true) is 1 or 0
            value = float(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise RecordError(Reason.WRONG_TYPE, f"field '{path}' is {value!r}, expected a number")
        values.append(float(value))
    if not values:
        raise RecordError(Reason.MISSING_FIELD, f"no label in {paths}")
    return sum(values) / len(values)


def _harm_category(record: dict[str, Any], path: str | None) -> str | None:
    if path is None:
        return None
    value = field_value(record, path)
    if isinstance(value, list):  # PyRIT's harm_categories: main category first
        value = "; ".join(str(v) for v in value)
    return normalise_text(str(value)) or None


def parse_published(raw: RawRecord, params: PublishedSetParams) -> PublishedRecord:
    if raw.error is not None:
        raise raw.error
    record = raw.record
    for path, held_out in params.exclude.items():
        if str(field_value(record, path)) in held_out:
            raise HeldOut(f"{path}={field_value(record, path)!r} is held out (exclude)")
    prompt = _text(record, params.prompt, "prompt")
    messages = [{"role": "user", "content": prompt}]
    answer = _text(record, params.answer, "answer") if params.answer else None
    score = _score(record, params.scores) if params.scores else None
    return PublishedRecord(
        raw.index,
        messages,
        render_prompt_text(messages),
        _harm_category(record, params.harm_category),
        answer,
        score,
        _record_category(record, params.category_field),
    )


def _record_category(record: dict[str, Any], path: str | None) -> str | None:
    """A per-record category through the usual synonyms (unsafe, harmful, benign, safe, …);
    None where the record has none, so the set's own `category` applies."""
    if path is None:
        return None
    try:
        value = field_value(record, path)
    except RecordError:
        return None
    return DEFAULT_SYNONYMS.get(normalise_text(str(value)).casefold())


class HeldOut(Exception):
    """A record the set's `exclude` holds out (a HarmBench row): counted, never used."""
