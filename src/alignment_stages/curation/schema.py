"""The canonical pair schema and the quarantine reason codes (see docs/data_formats.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


class Reason(StrEnum):
    """Why a record did not become a pair. The values are stable: reports and tests key on them."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    EMPTY_TEXT = "empty_text"
    IDENTICAL_PAIR = "identical_pair"
    TIE_SCORE = "tie_score"
    TOO_LONG = "too_long"
    UNPARSEABLE_TRANSCRIPT = "unparseable_transcript"
    DUPLICATE = "duplicate"
    UNKNOWN_FORMAT = "unknown_format"


class RecordError(Exception):
    """A record cannot become a pair; carries the quarantine reason and a human-readable detail."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ParsedPair:
    """One preference pair as a format parser returns it, before normalisation."""

    prompt_messages: list[dict[str, str]]  # [{role, content}], multi-turn history kept
    chosen: str
    rejected: str
    chosen_score: float | None = None
    rejected_score: float | None = None
    chosen_safe: bool | None = None
    rejected_safe: bool | None = None
    category: str | None = None


MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))

PAIR_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("source", pa.string()),
        ("source_format", pa.string()),
        ("record_index", pa.int64()),
        ("prompt_messages", MESSAGE_TYPE),
        ("prompt_text", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("chosen_score", pa.float64()),
        ("rejected_score", pa.float64()),
        ("chosen_safe", pa.bool_()),
        ("rejected_safe", pa.bool_()),
        ("category", pa.string()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("record_index", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("original", pa.string()),
    ]
)
