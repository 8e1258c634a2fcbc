"""Curate every source file into canonical pairs; quarantine, with a reason, everything else.

Conservation is the invariant: for every file, records read == pairs accepted + records
quarantined (duplicates included). `tests/curation/test_curate.py` holds it to that.
"""

from __future__ import annotations

import difflib
import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from alignment_stages.curation.categories import CATEGORIES, CategoryDeriver
from alignment_stages.curation.config import DataCurationParams, LengthLimits
from alignment_stages.curation.formats import FORMATS, detect_format, from_text
from alignment_stages.curation.normalise import (
    identity_text,
    normalise_text,
    pair_id,
    render_prompt_text,
)
from alignment_stages.curation.readers import (
    SUPPORTED_SUFFIXES,
    RawRecord,
    SourceFileError,
    read_records,
)
from alignment_stages.curation.schema import ParsedPair, Reason, RecordError

logger = logging.getLogger(__name__)

PAIR_COLUMNS = (
    "pair_id",
    "source",
    "source_format",
    "record_index",
    "prompt_messages",
    "prompt_text",
    "chosen",
    "rejected",
    "chosen_score",
    "rejected_score",
    "chosen_safe",
    "rejected_safe",
    "category",
)
QUARANTINE_COLUMNS = ("source", "record_index", "reason", "detail", "original")
PAIR_DTYPES = {
    "record_index": "int64",
    "chosen_score": "float64",
    "rejected_score": "float64",
    "chosen_safe": "boolean",
    "rejected_safe": "boolean",
}


class CurationQualityError(ValueError):
    """A source file has more quarantined records than `max_bad_fraction` allows."""


class CurationError(RuntimeError):
    """A record failed in a way no quarantine reason covers; names the file and the record."""


class OutsideLinkError(ValueError):
    """A raw preference file is a link to a file outside the raw folder."""


class FormatOverrideError(ValueError):
    """`data_curation.formats` names a file that is not among the raw preference files."""


@dataclass
class CurationResult:
    curated_pairs: pd.DataFrame
    quarantined_records: pd.DataFrame
    curation_report: dict[str, Any]


@dataclass
class _Rows:
    """Row tuples: a million tuples are far lighter (and faster to append) than a million dicts."""

    names: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)

    def append(self, *values: Any) -> None:
        self.rows.append(values)

    def to_frame(self, dtypes: Mapping[str, str]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(self.rows, columns=list(self.names), nrows=len(self.rows))
        return frame.astype(dict(dtypes))


@dataclass
class _FileCounts:
    format: str | None
    format_source: str
    read: int = 0
    accepted: int = 0
    quarantined: Counter = field(default_factory=Counter)

    def as_report(self) -> dict[str, Any]:
        total_bad = sum(self.quarantined.values())
        return {
            "format": self.format,
            "format_source": self.format_source,
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": dict(sorted(self.quarantined.items())),
            "quarantined_total": total_bad,
            "bad_fraction": round(total_bad / self.read, 6) if self.read else 0.0,
        }


def _normalised_pair(parsed: ParsedPair, limits: LengthLimits) -> tuple[list[dict], str, str, str]:
    """Normalise every text, then apply the content checks in a fixed order."""
    messages = [
        {"role": m["role"], "content": normalise_text(m["content"])} for m in parsed.prompt_messages
    ]
    chosen, rejected = normalise_text(parsed.chosen), normalise_text(parsed.rejected)
    prompt_last = messages[-1]["content"] if messages else ""
    for name, text in (("prompt", prompt_last), ("chosen", chosen), ("rejected", rejected)):
        if not text:
            raise RecordError(Reason.EMPTY_TEXT, f"{name} is empty after normalisation")
    if chosen == rejected:
        raise RecordError(Reason.IDENTICAL_PAIR, "chosen and rejected are the same text")
    if identity_text(chosen) == identity_text(rejected):
        raise RecordError(
            Reason.IDENTICAL_PAIR,
            "chosen and rejected differ only by invisible or compatibility characters "
            "(zero-width, soft hyphen, full-width forms: equal under NFKC)",
        )
    if parsed.chosen_score is not None and parsed.chosen_score == parsed.rejected_score:
        raise RecordError(Reason.TIE_SCORE, f"both answers score {parsed.chosen_score:g}")
    prompt_text = render_prompt_text(messages)
    check_lengths((
        ("prompt", prompt_text, limits.max_prompt_chars, "max_prompt_chars"),
        ("chosen", chosen, limits.max_response_chars, "max_response_chars"),
        ("rejected", rejected, limits.max_response_chars, "max_response_chars"),
    ))  # fmt: skip
    return messages, prompt_text, chosen, rejected


def check_lengths(checks: tuple[tuple[str, str, int, str], ...]) -> None:
    """(name, text, limit, parameter key) each: the first text over its limit is `too_long`."""
    for name, text, limit, key in checks:
        if len(text) > limit:
            raise RecordError(Reason.TOO_LONG, f"{name} has {len(text)} characters > {key}={limit}")


def _sample_for_detection(
    records: Iterator[RawRecord], size: int
) -> tuple[list[RawRecord], Iterator[RawRecord]]:
    head = list(itertools.islice(records, size))
    return head, itertools.chain(head, records)


class _Curator:
    """Holds the state shared across files: accumulated columns and the dedup index."""

    def __init__(self, params: DataCurationParams):
        self.params = params
        self.pairs = _Rows(PAIR_COLUMNS)
        self.quarantine = _Rows(QUARANTINE_COLUMNS)
        self.seen: dict[str, tuple[str, int, int]] = {}  # pair_id → (source, index, raw hash)
        self.categoriser = CategoryDeriver(params.categories)
        self.categories: Counter[str] = Counter()  # accepted pairs per prompt category

    def curate_file(self, source: str, data: bytes) -> _FileCounts:
        head, records = _sample_for_detection(
            read_records(source, data), self.params.detection_sample_size
        )
        override = self.params.formats.get(source)
        format_name = override or detect_format([r.record for r in head if r.record is not None])
        counts = _FileCounts(format_name, "override" if override else "detected")
        for raw in records:
            counts.read += 1
            try:
                self._accept(source, format_name, raw)
                counts.accepted += 1
            except RecordError as error:
                counts.quarantined[error.reason.value] += 1
                original = raw.original
                if original is None:
                    original = json.dumps(raw.record, ensure_ascii=False, default=str)
                self.quarantine.append(
                    source, raw.index, error.reason.value, error.detail, original
                )
            except Exception as exc:  # not a quarantine reason but a fault: stop, saying where
                raise CurationError(
                    f"{source}, record {raw.index}: {type(exc).__name__}: {exc}"
                ) from exc
        return counts

    def _accept(self, source: str, format_name: str | None, raw: RawRecord) -> None:
        if raw.error is not None:
            raise raw.error
        if format_name is None:
            fields = ", ".join(sorted(raw.record)[:12])
            raise RecordError(Reason.UNKNOWN_FORMAT, f"no known format has the fields: {fields}")
        record = from_text(raw.record, format_name) if raw.textual else raw.record
        parsed = FORMATS[format_name].parse(record)
        messages, prompt_text, chosen, rejected = _normalised_pair(parsed, self.params.lengths)
        identity = pair_id(prompt_text, chosen, rejected)
        raw_hash = hash(
            (parsed.chosen, parsed.rejected, *(m["content"] for m in parsed.prompt_messages))
        )
        if identity in self.seen:
            first_source, first_index, first_raw_hash = self.seen[identity]
            kind = (
                "exact duplicate" if raw_hash == first_raw_hash else "duplicate after normalising"
            )
            raise RecordError(Reason.DUPLICATE, f"{kind} of {first_source} record {first_index}")
        self.seen[identity] = (source, raw.index, raw_hash)
        category = self.categoriser.derive(source, parsed, prompt_text)
        self.pairs.append(
            identity,
            source,
            format_name,
            raw.index,
            messages,
            prompt_text,
            chosen,
            rejected,
            parsed.chosen_score,
            parsed.rejected_score,
            parsed.chosen_safe,
            parsed.rejected_safe,
            category,
        )
        self.categories[category] += 1


def curate_files(
    files: Mapping[str, Callable[[], bytes]],
    params: DataCurationParams,
    outside_links: Mapping[str, str] | None = None,
) -> CurationResult:
    """Curate each file in name order (so results never depend on listing order).

    `outside_links` names the files that are links to files outside the raw folder (with the
    file each reaches); they are read only if `params.follow_links_outside_raw`.
    """
    check_format_overrides(params.formats, sorted(files))
    check_outside_links(outside_links or {}, params.follow_links_outside_raw)
    curator = _Curator(params)
    report_files: dict[str, Any] = {}
    ignored: dict[str, str] = {}
    for source in sorted(files):
        if PurePosixPath(source).suffix.lower() not in SUPPORTED_SUFFIXES:
            ignored[source] = f"unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}"
            logger.warning("Ignoring %s: %s", source, ignored[source])
            continue
        try:
            counts = curator.curate_file(source, files[source]())
        except (SourceFileError, OSError) as exc:  # the readers' message lacks the file's name
            logger.error("Cannot read %s: %s", source, exc)
            raise SourceFileError(f"{source}: {exc}") from exc
        report_files[source] = counts.as_report()
        logger.info(
            "Curated %s (%s): read %d, accepted %d, quarantined %d",
            source,
            counts.format,
            counts.read,
            counts.accepted,
            sum(counts.quarantined.values()),
        )
    return CurationResult(
        curated_pairs=curator.pairs.to_frame(PAIR_DTYPES),
        quarantined_records=curator.quarantine.to_frame({"record_index": "int64"}),
        curation_report={
            **_build_report(report_files, ignored, params),
            "categories": {name: curator.categories[name] for name in CATEGORIES},
        },  # fmt: skip
    )


def check_format_overrides(formats: Mapping[str, str], sources: list[str]) -> None:
    """An override for a file that is not there would be silently ignored: a typo in the file
    name, or a file moved, and its format would be detected after all."""
    problems = []
    for name in sorted(set(formats) - set(sources)):
        close = difflib.get_close_matches(name, sources, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the files are {sources}"
        problems.append(f"{name!r} ({hint})")
    if problems:
        raise FormatOverrideError(
            "data_curation.formats names files that are not under raw_preferences: "
            + "; ".join(problems)
            + ". Keys are paths relative to the raw preferences folder."
        )


def check_outside_links(outside_links: Mapping[str, str], allowed: bool) -> None:
    """Raw data is what the user put in the raw folder. A link out of it (to a home folder, to
    another project's data) would be read into the curated pairs without a word."""
    if allowed or not outside_links:
        if outside_links:
            logger.info("Reading links outside the raw folder: %s", dict(outside_links))
        return
    links = "; ".join(f"{name} -> {target}" for name, target in sorted(outside_links.items()))
    raise OutsideLinkError(
        f"raw_preferences holds links to files outside the raw folder: {links}. Copy the "
        "files in, remove the links, or set data_curation.follow_links_outside_raw: true to "
        "read them."
    )


def _build_report(
    report_files: dict[str, Any], ignored: dict[str, str], params: DataCurationParams
) -> dict[str, Any]:
    totals = Counter()
    for counts in report_files.values():
        totals.update(counts["quarantined"])
    return {
        "files": report_files,
        "totals": {
            "read": sum(c["read"] for c in report_files.values()),
            "accepted": sum(c["accepted"] for c in report_files.values()),
            "quarantined": dict(sorted(totals.items())),
        },
        "ignored_files": ignored,
        "max_bad_fraction": params.max_bad_fraction,
    }


def check_bad_fraction(report: Mapping[str, Any], max_bad_fraction: float) -> None:
    """Stop when any file's quarantined share passes the bar, naming the file and top reasons."""
    failures = []
    sources = itertools.chain(report["files"].items(), report.get("published_sets", {}).items())
    for source, counts in sources:
        if counts["read"] and counts["bad_fraction"] > max_bad_fraction:
            top = Counter(counts["quarantined"]).most_common(3)
            reasons = ", ".join(f"{reason} ({n})" for reason, n in top)
            failures.append(
                f"{source}: {counts['quarantined_total']} of {counts['read']} records quarantined "
                f"({counts['bad_fraction']:.1%} > max_bad_fraction={max_bad_fraction}); "
                f"top reasons: {reasons}"
            )
    if failures:
        raise CurationQualityError(
            "Too many unusable records. "
            + "; ".join(failures)
            + ". The originals and reasons are in quarantined_records; fix the file, name its "
            "format under data_curation.formats, or raise data_curation.max_bad_fraction."
        )
    if report["files"] and not any(c["accepted"] for c in report["files"].values()):
        read = "; ".join(f"{source}: read {c['read']}" for source, c in report["files"].items())
        raise CurationQualityError(
            f"No preference pair was accepted ({read}). Check that the files under "
            "raw_preferences are not empty; quarantined_records says why each record was refused."
        )
