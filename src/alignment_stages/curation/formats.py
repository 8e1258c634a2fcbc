"""Source formats: one detector and one parser per format, dispatched through `FORMATS`.

Every parser takes one decoded record (a dict) and returns a `ParsedPair`, or raises `RecordError`
with the quarantine reason. Parsers do not normalise text; `curate.py` does that once for all
formats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alignment_stages.curation.schema import ParsedPair, Reason, RecordError

Record = dict[str, Any]


# --- field access shared by every parser -------------------------------------------------------


def _field(record: Record, key: str) -> Any:
    if key not in record or record[key] is None:
        raise RecordError(Reason.MISSING_FIELD, f"field '{key}' is missing")
    return record[key]


def _wrong_type(key: str, value: Any, expected: str) -> RecordError:
    return RecordError(
        Reason.WRONG_TYPE, f"field '{key}' is {type(value).__name__}, expected {expected}"
    )


def _text(record: Record, key: str) -> str:
    value = _field(record, key)
    if not isinstance(value, str):
        raise _wrong_type(key, value, "str")
    return value


def _number(record: Record, key: str) -> float:
    value = _field(record, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(key, value, "a number")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer of hundreds of digits
        raise RecordError(
            Reason.WRONG_TYPE, f"field '{key}' is an integer too large for a float (over 1e308)"
        ) from None
    if not math.isfinite(number):  # 1e400 reads as inf; NaN would never compare as a tie
        raise RecordError(Reason.WRONG_TYPE, f"field '{key}' is {number}, expected a finite number")
    return number


def _optional_number(record: Record, key: str) -> float | None:
    value = record.get(key)
    # pandas writes a missing score as NaN: missing, as null is.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return _number(record, key)


def _optional_flag(record: Record, key: str) -> bool | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _wrong_type(key, value, "a boolean")
    return value


def _binary_choice(record: Record, key: str) -> int:
    value = _field(record, key)
    if isinstance(value, bool) or value not in (0, 1):
        raise RecordError(Reason.WRONG_TYPE, f"field '{key}' is {value!r}, expected 0 or 1")
    return int(value)


def _category(record: Record, key: str = "category") -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) and value else None


def _messages(value: Any, key: str) -> list[dict[str, str]]:
    """Validate a TRL-style conversation: a list of {role, content} with string values."""
    if not isinstance(value, list):
        raise _wrong_type(key, value, "str or messages")
    messages = []
    for position, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise RecordError(
                Reason.WRONG_TYPE, f"{key}[{position}] is not a {{role, content}} message"
            )
        role, content = message["role"], message["content"]
        if not isinstance(role, str) or not isinstance(content, str):
            raise RecordError(Reason.WRONG_TYPE, f"{key}[{position}] role/content are not strings")
        messages.append({"role": role.strip().lower(), "content": content})
    return messages


def _as_prompt(value: Any, key: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return _messages(value, key)


def _as_response(value: Any, key: str) -> str:
    """A response is a string, or a conversation whose last message is the assistant's answer."""
    if isinstance(value, str):
        return value
    messages = _messages(value, key)
    if not messages or messages[-1]["role"] != "assistant":
        raise RecordError(Reason.WRONG_TYPE, f"field '{key}' does not end with an assistant turn")
    return messages[-1]["content"]


def _split_shared_history(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]]
) -> list[dict[str, str]]:
    """TRL's implicit-prompt format: the prompt is the history both conversations share."""
    if chosen[:-1] != rejected[:-1]:
        raise RecordError(
            Reason.UNPARSEABLE_TRANSCRIPT, "chosen and rejected do not share the same history"
        )
    if not chosen[:-1]:
        raise RecordError(Reason.MISSING_FIELD, "field 'prompt' is missing and there is no history")
    return chosen[:-1]


# --- the formats ----------------------------------------------------------------------------


def parse_prompt_chosen_rejected(record: Record) -> ParsedPair:
    """Explicit prompt/chosen/rejected, as strings or as TRL conversations.

    Without `prompt`, chosen and rejected are full conversations and the shared history is the
    prompt (TRL's implicit-prompt preference format).
    """
    chosen_value, rejected_value = _field(record, "chosen"), _field(record, "rejected")
    if "prompt" in record and record["prompt"] is not None:
        prompt = _as_prompt(record["prompt"], "prompt")
    else:
        prompt = _split_shared_history(
            _messages(chosen_value, "chosen"), _messages(rejected_value, "rejected")
        )
    return ParsedPair(
        prompt_messages=prompt,
        chosen=_as_response(chosen_value, "chosen"),
        rejected=_as_response(rejected_value, "rejected"),
        chosen_score=_optional_number(record, "score_chosen"),
        rejected_score=_optional_number(record, "score_rejected"),
        category=_category(record),
    )


def parse_ultrafeedback_binarized(record: Record) -> ParsedPair:
    """HuggingFaceH4/ultrafeedback_binarized: prompt string, chosen/rejected conversations, scores."""
    return ParsedPair(
        prompt_messages=_as_prompt(_field(record, "prompt"), "prompt"),
        chosen=_as_response(_field(record, "chosen"), "chosen"),
        rejected=_as_response(_field(record, "rejected"), "rejected"),
        chosen_score=_number(record, "score_chosen"),
        rejected_score=_number(record, "score_rejected"),
        category=_category(record) or _category(record, "source"),
    )


# HH-RLHF turns are introduced by a blank line and the speaker (Bai et al. 2022, the released data).
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def _hh_turns(transcript: str, key: str) -> list[dict[str, str]]:
    pieces = _HH_TURN.split(transcript if transcript.startswith("\n\n") else "\n\n" + transcript)
    if pieces[0].strip() or len(pieces) < 5:
        raise RecordError(
            Reason.UNPARSEABLE_TRANSCRIPT,
            f"field '{key}' is not a '\\n\\nHuman: … \\n\\nAssistant: …' transcript",
        )
    turns = [
        {"role": _HH_ROLES[speaker], "content": content}
        for speaker, content in zip(pieces[1::2], pieces[2::2], strict=True)
    ]
    if turns[-1]["role"] != "assistant":
        raise RecordError(
            Reason.UNPARSEABLE_TRANSCRIPT, f"field '{key}' does not end with an Assistant turn"
        )
    return turns


def parse_hh_rlhf(record: Record) -> ParsedPair:
    """Anthropic HH-RLHF: two full transcripts; their shared prefix is the (multi-turn) prompt."""
    chosen = _hh_turns(_text(record, "chosen"), "chosen")
    rejected = _hh_turns(_text(record, "rejected"), "rejected")
    return ParsedPair(
        prompt_messages=_split_shared_history(chosen, rejected),
        chosen=chosen[-1]["content"],
        rejected=rejected[-1]["content"],
        category=_category(record),
    )


def parse_pku_saferlhf(record: Record) -> ParsedPair:
    """PKU-Alignment/PKU-SafeRLHF: two responses, the better one by id, per-response safety flags."""
    responses = (_text(record, "response_0"), _text(record, "response_1"))
    safe = (
        _optional_flag(record, "is_response_0_safe"),
        _optional_flag(record, "is_response_1_safe"),
    )
    better = _binary_choice(record, "better_response_id")
    return _preferred(record, "prompt", responses, better, _category(record), safe=safe)


def parse_shp(record: Record) -> ParsedPair:
    """stanfordnlp/SHP: `labels == 1` means human_ref_A is preferred; scores are upvotes."""
    refs = (_text(record, "human_ref_A"), _text(record, "human_ref_B"))
    scores = (_optional_number(record, "score_A"), _optional_number(record, "score_B"))
    preferred = 0 if _binary_choice(record, "labels") == 1 else 1
    category = _category(record) or _category(record, "domain")
    return _preferred(record, "history", refs, preferred, category, score=scores)


def _preferred(
    record: Record, prompt_key: str, answers: tuple, better: int, category: str | None, **paired
) -> ParsedPair:
    """Two answers to `record[prompt_key]`, `answers[better]` the chosen one. Each `paired`
    tuple follows the answers' order: `score=(a, b)` fills chosen_score and rejected_score."""
    per_answer = {}
    for name, values in paired.items():
        per_answer[f"chosen_{name}"], per_answer[f"rejected_{name}"] = (
            values[better],
            values[1 - better],
        )
    return ParsedPair(
        prompt_messages=_as_prompt(_text(record, prompt_key), prompt_key),
        chosen=answers[better],
        rejected=answers[1 - better],
        category=category,
        **per_answer,
    )


# --- detection ---------------------------------------------------------------------------------


def _has(record: Record, *keys: str) -> bool:
    return all(key in record for key in keys)


def _looks_like_hh(record: Record) -> bool:
    chosen = record.get("chosen")
    return (
        _has(record, "chosen", "rejected")
        and "prompt" not in record
        and isinstance(chosen, str)
        and "Human:" in chosen
    )


def _looks_like_explicit(record: Record) -> bool:
    return _has(record, "prompt", "chosen", "rejected") or (
        _has(record, "chosen", "rejected") and isinstance(record.get("chosen"), list)
    )


# --- fields read from text (CSV) ----------------------------------------------------------------

# Arrow's null markers: an empty or "NaN" cell in a score column is a missing score, as it was
# when Arrow typed the column.
_NULL_CELLS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                         "1.#IND", "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"})  # fmt: skip


def _number_cell(text: str) -> Any:
    """An int or float from a cell; anything else stays text, and the parser names it."""
    text = text.strip()
    if text in _NULL_CELLS:
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def _flag_cell(text: str) -> Any:
    flags = {"true": True, "false": False}
    return None if text.strip() in _NULL_CELLS else flags.get(text.strip().lower(), text)


@dataclass(frozen=True)
class SourceFormat:
    """A format's signature (does this record look like me?), its parser, and the fields it
    reads as numbers or flags (parsed from the text of a CSV cell; every other field stays the
    exact text)."""

    looks_like: Callable[[Record], bool]
    parse: Callable[[Record], ParsedPair]
    typed_fields: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)


def from_text(record: Record, format_name: str) -> Record:
    """A record whose every value is text (a CSV row), with the format's typed fields parsed."""
    typed = FORMATS[format_name].typed_fields
    parsed = {key: typed[key](value) for key, value in record.items()
              if key in typed and isinstance(value, str)}  # fmt: skip
    return {**record, **parsed} if parsed else record


_SCORES = {"score_chosen": _number_cell, "score_rejected": _number_cell}


# Order matters: the most specific signatures come first, so that UltraFeedback (which also has
# prompt/chosen/rejected) is not taken for the generic format.
FORMATS: dict[str, SourceFormat] = {
    "pku_saferlhf": SourceFormat(
        lambda r: _has(r, "prompt", "response_0", "response_1", "better_response_id"),
        parse_pku_saferlhf,
        {
            "better_response_id": _number_cell,
            "is_response_0_safe": _flag_cell,
            "is_response_1_safe": _flag_cell,
        },
    ),
    "shp": SourceFormat(
        lambda r: _has(r, "history", "human_ref_A", "human_ref_B", "labels"),
        parse_shp,
        {"labels": _number_cell, "score_A": _number_cell, "score_B": _number_cell},
    ),
    "ultrafeedback_binarized": SourceFormat(
        lambda r: (
            _has(r, "prompt", "chosen", "rejected", "score_chosen", "score_rejected")
            and isinstance(r.get("chosen"), list)
        ),
        parse_ultrafeedback_binarized,
        _SCORES,
    ),
    "hh_rlhf": SourceFormat(_looks_like_hh, parse_hh_rlhf),
    "prompt_chosen_rejected": SourceFormat(
        _looks_like_explicit, parse_prompt_chosen_rejected, _SCORES
    ),
}


def detect_format(sample: list[Record]) -> str | None:
    """The format that most sampled records match; ties go to the more specific format."""
    best_name, best_votes = None, 0
    for name, source_format in FORMATS.items():
        votes = sum(1 for record in sample if source_format.looks_like(record))
        if votes > best_votes:
            best_name, best_votes = name, votes
    return best_name
