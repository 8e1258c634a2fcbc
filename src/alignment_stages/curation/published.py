"""Curate the published sets: every record is used in a split, quarantined, or excluded, with a
reason, and the report counts each.

Three kinds of record come out of a published set:
- a request only (AdvBench, StrongREJECT, JailbreakBench): a prompt for PPO or evaluation;
- a request with a published answer (AlpacaEval's baseline answers): a reference answer for the
  capability probe, or an SFT example;
- a request with answers that humans labelled (PyRIT's scorer sets): preference pairs, formed
  within a prompt from answers the raters scored differently (the less harmful one is chosen),
  and `labelled_answers`, which measure the judges against labels this project did not write.

Evaluation stays clean: every prompt bound for evaluation is indexed first, and a training-bound
record whose prompt is an exact or near copy of one (`curation.overlap`) is excluded from training.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from alignment_stages.curation.config import DataCurationParams, LengthLimits
from alignment_stages.curation.curate import (
    QUARANTINE_COLUMNS,
    CurationResult,
    check_lengths,
    curate_files,
)
from alignment_stages.curation.normalise import hash_position, identity_text, pair_id, stable_hash
from alignment_stages.curation.overlap import NearDuplicateIndex
from alignment_stages.curation.published_config import EVALUATION_SPLITS, PublishedSetParams
from alignment_stages.curation.published_readers import (
    HeldOut,
    PublishedRecord,
    parse_published,
    read_set,
    reader_of,
)
from alignment_stages.curation.schema import RecordError
from alignment_stages.curation.sources import ResolvedSource, expand_source, resolve_source
from alignment_stages.judges.panel_labels import LABELLED_COLUMNS

PUBLISHED_COLUMNS = (
    "pair_id", "source", "source_format", "record_index", "prompt_messages", "prompt_text",
    "chosen", "rejected", "chosen_score", "rejected_score", "chosen_safe", "rejected_safe",
    "category", "harm_category", "split",
)  # fmt: skip
# Why a readable record was not used. Not defects of the data, so not counted by max_bad_fraction.
HELD_OUT_SOURCE = "held_out_source"  # `exclude`: e.g. JailbreakBench's HarmBench rows
OVERLAPS_EVAL = "overlaps_eval"  # a copy of an evaluation prompt, kept out of training
DUPLICATE = "duplicate"  # the same request (and answer) seen before, in this set or another
NO_PAIR = "no_pair"  # a labelled answer whose prompt has no answer scored differently


@dataclass(slots=True)
class _Entry:
    set_name: str
    record: PublishedRecord
    split: str


@dataclass
class SetCounts:
    read: int = 0
    used: Counter = field(default_factory=Counter)  # records per split (a pair uses two)
    quarantined: Counter = field(default_factory=Counter)
    excluded: Counter = field(default_factory=Counter)
    lineage: dict[str, Any] = field(default_factory=dict)

    def as_report(self) -> dict[str, Any]:
        bad = sum(self.quarantined.values())
        return {
            **self.lineage,
            "read": self.read,
            "used": dict(sorted(self.used.items())),
            "quarantined": dict(sorted(self.quarantined.items())),
            "excluded": dict(sorted(self.excluded.items())),
            "quarantined_total": bad,
            "bad_fraction": round(bad / self.read, 6) if self.read else 0.0,
        }


@dataclass
class PublishedCuration:
    records: pd.DataFrame  # PUBLISHED_COLUMNS, one row per prompt, answer or pair, with its split
    labelled_answers: pd.DataFrame  # LABELLED_COLUMNS
    quarantine: list[tuple]  # (source, record_index, reason, detail, original)
    report: dict[str, dict[str, Any]]  # per set
    eval_index: NearDuplicateIndex


def _assign(prompt_text: str, use: Mapping[str, float], seed: int) -> str:
    """The split of a prompt, from a salted hash of it: stable under reordering and additions."""
    position = hash_position(seed, identity_text(prompt_text))
    cumulative = 0.0
    for split, share in use.items():
        cumulative += share
        if position < cumulative:
            return split
    return next(reversed(use))


def _check_lengths(record: PublishedRecord, limits: LengthLimits) -> None:
    check_lengths(
        (("prompt", record.prompt_text, limits.max_prompt_chars, "max_prompt_chars"),)
        + ((("answer", record.answer, limits.max_response_chars, "max_response_chars"),)
           if record.answer else ())
    )  # fmt: skip


class _PublishedCurator:
    def __init__(self, params: DataCurationParams):
        self.params = params
        self.counts: dict[str, SetCounts] = {}
        self.quarantine: list[tuple] = []
        self.entries: list[_Entry] = []
        self.params_of: dict[str, PublishedSetParams] = {}  # per file of a set
        self.index = NearDuplicateIndex(params.near_duplicate_jaccard)

    def _drop(self, name: str, index: int, reason: str, detail: str, original: Any, bad: bool):
        counter = self.counts[name].quarantined if bad else self.counts[name].excluded
        counter[reason] += 1
        self.quarantine.append((name, index, reason, detail, str(original)))

    def read(self, name: str, set_params: PublishedSetParams, source: ResolvedSource) -> None:
        data = source.read_bytes()
        records, comments = read_set(set_params, data)
        counts = self.counts[name] = SetCounts()
        self.params_of[name] = set_params
        counts.lineage = {**source.lineage(data), "reader": reader_of(set_params),
                          "category": set_params.category, "comments": comments}  # fmt: skip
        for raw in records:
            counts.read += 1
            original = raw.original if raw.original is not None else raw.record
            try:
                record = parse_published(raw, set_params)
                _check_lengths(record, self.params.lengths)
            except HeldOut as held:
                self._drop(name, raw.index, HELD_OUT_SOURCE, str(held), original, bad=False)
                continue
            except RecordError as error:
                self._drop(name, raw.index, error.reason.value, error.detail, original, bad=True)
                continue
            split = _assign(record.prompt_text, set_params.use, self.params.seed)
            self.entries.append(_Entry(name, record, split))

    def screen(self) -> list[_Entry]:
        """Evaluation-bound records first, so every one of them is indexed before any training
        record is checked against them; then duplicates and copies of evaluation prompts go."""
        order = sorted(
            self.entries,
            key=lambda e: (e.split not in EVALUATION_SPLITS, e.set_name, e.record.record_index),
        )
        seen: dict[tuple, str] = {}
        kept = []
        for entry in order:
            record, where = entry.record, f"{entry.set_name} record {entry.record.record_index}"
            key = (identity_text(record.prompt_text), identity_text(record.answer or ""))
            training = entry.split not in EVALUATION_SPLITS and entry.split != "judge_calibration"
            match = self.index.match(record.prompt_text) if training else None
            if match is not None:
                detail = (f"near-duplicate (trigram Jaccard {match.jaccard}) of evaluation "
                          f"prompt {match.key}: {match.text[:120]!r}")  # fmt: skip
                self._drop(entry.set_name, record.record_index, OVERLAPS_EVAL, detail,
                           record.prompt_text, bad=False)  # fmt: skip
                continue
            if key in seen:
                self._drop(entry.set_name, record.record_index, DUPLICATE,
                           f"same request and answer as {seen[key]}", record.prompt_text,
                           bad=False)  # fmt: skip
                continue
            seen[key] = where
            if entry.split in EVALUATION_SPLITS:
                self.index.add(where, record.prompt_text)
            kept.append(entry)
        return kept


def _row(name: str, set_params: PublishedSetParams, record: PublishedRecord, split: str,
         chosen: str | None = None, rejected: PublishedRecord | None = None,
         chosen_score: float | None = None) -> tuple:  # fmt: skip
    identity = (
        pair_id(record.prompt_text, chosen, rejected.answer)
        if rejected is not None
        else stable_hash(name, record.prompt_text, chosen or "")
    )
    return (
        identity, name, f"published:{reader_of(set_params)}", record.record_index,
        record.prompt_messages, record.prompt_text, chosen,
        rejected.answer if rejected is not None else None, chosen_score,
        rejected.score if rejected is not None else None, None, None,
        record.category or set_params.category, record.harm_category, split,
    )  # fmt: skip


def _pairs(
    group: list[PublishedRecord],
) -> tuple[list[tuple[PublishedRecord, PublishedRecord]], list[PublishedRecord]]:
    """Lowest-scored against highest-scored, inwards, while the scores differ: each answer is in
    at most one pair, and every pair is a preference the raters expressed."""
    ordered = sorted(group, key=lambda r: (r.score, r.record_index))
    pairs, low, high = [], 0, len(ordered) - 1
    while low < high and ordered[low].score < ordered[high].score:
        pairs.append((ordered[low], ordered[high]))
        low, high = low + 1, high - 1
    return pairs, ordered[low : high + 1]


def curate_published(
    params: DataCurationParams,
    resolve: Callable[[str], ResolvedSource] = resolve_source,
) -> PublishedCuration:
    """Every set in `params.published_sets`, in name order."""
    sets = params.published_sets
    curator = _PublishedCurator(params)
    for name in sorted(sets):
        sources = expand_source(sets[name].source)
        for source in sources:  # one report entry per file of a set shipped as several
            part = name if len(sources) == 1 else f"{name}/{PurePosixPath(source).stem}"
            curator.read(part, sets[name], resolve(source))
    rows, labelled = [], []
    groups: dict[tuple[str, str, str], list[PublishedRecord]] = defaultdict(list)
    for entry in curator.screen():
        name, record, split = entry.set_name, entry.record, entry.split
        set_params = curator.params_of[name]
        if record.score is not None:
            labelled.append((name, record.record_index, record.prompt_text, record.answer,
                             set_params.label, record.score, record.harm_category,
                             record.category or set_params.category, split))  # fmt: skip
        if split in ("preference_train", "preference_val") or (
            split == "sft_examples" and record.score is not None
        ):
            groups[(name, split, identity_text(record.prompt_text))].append(record)
            continue
        if split != "judge_calibration":
            answer = record.answer if split in ("capability_probe", "sft_examples") else None
            rows.append(_row(name, set_params, record, split, chosen=answer))
        curator.counts[name].used[split] += 1
    for (name, split, _), group in sorted(groups.items()):
        pairs, unpaired = _pairs(group)
        for chosen, rejected in pairs:
            rows.append(
                _row(
                    name,
                    curator.params_of[name],
                    chosen,
                    split,
                    chosen.answer,
                    rejected,
                    chosen.score,
                )
            )
        curator.counts[name].used[split] += 2 * len(pairs)
        for record in unpaired:
            curator._drop(name, record.record_index, NO_PAIR,
                          "no answer to this prompt was scored differently", record.prompt_text,
                          bad=False)  # fmt: skip
    return PublishedCuration(
        records=pd.DataFrame.from_records(
            rows, columns=list(PUBLISHED_COLUMNS), nrows=len(rows)
        ).astype(
            {
                "record_index": "int64",
                "chosen_score": "float64",
                "rejected_score": "float64",
                "chosen_safe": "boolean",
                "rejected_safe": "boolean",
            }
        ),  # fmt: skip
        labelled_answers=pd.DataFrame.from_records(
            labelled, columns=list(LABELLED_COLUMNS), nrows=len(labelled)
        ).astype({"record_index": "int64", "score": "float64"}),
        quarantine=curator.quarantine,
        report={name: curator.counts[name].as_report() for name in sorted(curator.counts)},
        eval_index=curator.index,
    )


def screen_folder_pairs(
    result: CurationResult, index: NearDuplicateIndex
) -> tuple[pd.DataFrame, list[tuple]]:
    """The raw folder's pairs, less those whose prompt copies a published evaluation prompt;
    each file's report counts them as excluded. Their own eval split is by prompt group."""
    pairs = result.curated_pairs
    if not len(index) or pairs.empty:
        return pairs, []
    matches = [index.match(text) for text in pairs["prompt_text"]]
    dropped = []
    files = result.curation_report["files"]
    for (source, record_index, prompt), match in zip(
        pairs[["source", "record_index", "prompt_text"]].itertuples(index=False),
        matches,
        strict=True,
    ):
        if match is None:
            continue
        files[source]["accepted"] -= 1
        excluded = files[source].setdefault("excluded", {})
        excluded[OVERLAPS_EVAL] = excluded.get(OVERLAPS_EVAL, 0) + 1
        detail = (
            f"near-duplicate (trigram Jaccard {match.jaccard}) of evaluation prompt {match.key}"
        )
        dropped.append((source, int(record_index), OVERLAPS_EVAL, detail, prompt))
    keep = [m is None for m in matches]
    return pairs[keep].reset_index(drop=True), dropped


def curate_all(
    files: Mapping[str, Callable[[], bytes]],
    params: DataCurationParams,
    outside_links: Mapping[str, str] | None = None,
) -> tuple[CurationResult, PublishedCuration]:
    """The raw folder and the published sets, as one report and one quarantine."""
    published = curate_published(params)
    result = curate_files(files, params, outside_links)
    pairs, dropped = screen_folder_pairs(result, published.eval_index)
    quarantine = pd.DataFrame.from_records(
        published.quarantine + dropped, columns=list(QUARANTINE_COLUMNS)
    ).astype({"record_index": "int64"})
    report = result.curation_report
    report["published_sets"] = published.report
    report["published_totals"] = {
        "read": sum(c["read"] for c in published.report.values()),
        "used": sum(sum(c["used"].values()) for c in published.report.values()),
        "quarantined": sum(c["quarantined_total"] for c in published.report.values()),
        "excluded": sum(sum(c["excluded"].values()) for c in published.report.values()),
    }
    merged = pd.concat([result.quarantined_records, quarantine], ignore_index=True)
    return CurationResult(pairs, merged, report), published
