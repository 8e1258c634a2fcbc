"""Curation end to end on in-memory files: every quarantine reason, conservation, dedup."""

import json

import pytest

from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.curate import CurationQualityError, check_bad_fraction, curate_files
from alignment_stages.curation.schema import Reason
from tests.conftest import as_loaders
from tests.curation import samples

PARAMS = DataCurationParams(max_bad_fraction=1.0)


def _jsonl(*rows) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def _explicit(prompt="How do I cook rice?", chosen="Simmer it.", rejected="Go away.", **extra):
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **extra}


def _curate(files: dict[str, bytes], params=PARAMS):
    return curate_files(as_loaders(files), params)


def _assert_conserved(result):
    for counts in result.curation_report["files"].values():
        assert counts["read"] == counts["accepted"] + sum(counts["quarantined"].values())
    assert len(result.curated_pairs) == result.curation_report["totals"]["accepted"]
    assert len(result.quarantined_records) == sum(
        result.curation_report["totals"]["quarantined"].values()
    )


# Every reason in the design, each from the smallest input that produces it. The first record of
# each file is valid so that format detection has something to go on.
BAD_INPUTS = {
    Reason.INVALID_JSON: _jsonl(_explicit(), b'{"prompt": "x", "chosen": '),
    Reason.INVALID_UTF8: _jsonl(_explicit(), b'{"prompt": "caf\xe9"}'),
    Reason.MISSING_FIELD: _jsonl(_explicit(), {"prompt": "p", "chosen": "c"}),
    Reason.WRONG_TYPE: _jsonl(_explicit(), _explicit(rejected=["not", "messages"])),
    Reason.EMPTY_TEXT: _jsonl(_explicit(), _explicit(prompt="p2", chosen=" \t\n ")),
    Reason.IDENTICAL_PAIR: _jsonl(
        _explicit(), _explicit(prompt="p2", chosen="A  b", rejected="A b")
    ),
    Reason.TIE_SCORE: _jsonl(_explicit(), _explicit(prompt="p2", score_chosen=5, score_rejected=5)),
    Reason.TOO_LONG: _jsonl(_explicit(), _explicit(prompt="p2", chosen="x" * 4001)),
    Reason.UNPARSEABLE_TRANSCRIPT: _jsonl(
        samples.HH_RLHF, dict(samples.HH_RLHF, chosen="no turns")
    ),
    Reason.DUPLICATE: _jsonl(_explicit(), _explicit()),
}


@pytest.mark.parametrize("reason", list(BAD_INPUTS))
def test_each_bad_record_is_quarantined_with_its_reason_and_original(reason):
    data = BAD_INPUTS[reason]
    result = _curate({"f.jsonl": data})
    _assert_conserved(result)
    assert len(result.curated_pairs) == 1
    (row,) = result.quarantined_records.to_dict("records")
    assert row["reason"] == reason.value
    assert row["source"] == "f.jsonl" and row["record_index"] == 1 and row["detail"]
    original_line = data.splitlines()[1].decode("utf-8", errors="backslashreplace")
    assert row["original"] == original_line


def test_unknown_format_quarantines_every_record_of_the_file():
    data = _jsonl({"question": "q", "answer": "a"}, {"question": "q2", "answer": "a2"})
    result = _curate({"f.jsonl": data, "ok.jsonl": _jsonl(_explicit())})
    _assert_conserved(result)
    counts = result.curation_report["files"]["f.jsonl"]
    assert counts["format"] is None and counts["quarantined"] == {"unknown_format": 2}
    assert "answer, question" in result.quarantined_records["detail"].iloc[0]


def test_duplicates_are_found_exactly_and_after_normalisation_across_files():
    first = _explicit(prompt="Café  time?")
    exact = dict(first)
    normalised_only = _explicit(prompt="Cafe\u0301 time?\t")  # NFD é, extra whitespace
    result = _curate({"a.jsonl": _jsonl(first), "b.jsonl": _jsonl(exact, normalised_only)})
    _assert_conserved(result)
    details = result.quarantined_records["detail"].tolist()
    assert details == [
        "exact duplicate of a.jsonl record 0",
        "duplicate after normalising of a.jsonl record 0",
    ]


def test_text_is_nfc_and_whitespace_normalised():
    row = _explicit(prompt=" Cafe\u0301\u00a0 ok?\r\n\n\n\nNext  line ", chosen="a\t\tb ")
    pair = _curate({"f.jsonl": _jsonl(row)}).curated_pairs.iloc[0]
    assert pair["prompt_text"] == "Café ok?\n\nNext line"
    assert pair["chosen"] == "a b"


def test_length_limits_are_configurable():
    params = DataCurationParams(lengths={"max_prompt_chars": 5, "max_response_chars": 100})
    result = _curate(
        {"f.jsonl": _jsonl(_explicit(prompt="short"), _explicit(prompt="longer"))}, params
    )
    assert result.quarantined_records["detail"].tolist() == [
        "prompt has 6 characters > max_prompt_chars=5"
    ]


def test_format_override_beats_detection():
    # Without the override, a file of SHP-like records with a stray 'prompt' field still detects
    # as SHP; the override lets a user force the generic reading instead.
    record = dict(samples.SHP, prompt="p", chosen="c", rejected="r")
    detected = _curate({"f.jsonl": _jsonl(record)})
    forced = _curate(
        {"f.jsonl": _jsonl(record)},
        DataCurationParams(formats={"f.jsonl": "prompt_chosen_rejected"}),
    )
    assert detected.curated_pairs["source_format"].tolist() == ["shp"]
    assert forced.curated_pairs["source_format"].tolist() == ["prompt_chosen_rejected"]
    assert forced.curation_report["files"]["f.jsonl"]["format_source"] == "override"


@pytest.mark.parametrize("format_name", list(samples.ALL))
def test_every_format_lands_in_the_canonical_schema(format_name):
    result = _curate({"f.jsonl": _jsonl(*samples.ALL[format_name])})
    _assert_conserved(result)
    pairs = result.curated_pairs
    # The text, string-conversation and implicit-prompt samples are one pair: two are duplicates.
    assert len(pairs) == 1 and pairs["source_format"].iloc[0] == format_name
    assert pairs["pair_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert (
        pairs["prompt_text"].iloc[0].endswith("How do I cook rice?")
        or format_name == "pku_saferlhf"
    )


def test_safety_flags_are_kept():
    pku = _curate({"f.jsonl": _jsonl(samples.PKU_SAFERLHF)}).curated_pairs.iloc[0]
    assert (pku["chosen_safe"], pku["rejected_safe"]) == (True, False)


def test_unsupported_files_are_reported_not_read():
    result = _curate({"notes.txt": b"hello", "f.jsonl": _jsonl(_explicit())})
    assert "notes.txt" in result.curation_report["ignored_files"]
    assert list(result.curation_report["files"]) == ["f.jsonl"]


def test_bad_fraction_error_names_the_file_and_top_reasons():
    data = _jsonl(_explicit(), b"{bad", b"{bad", {"prompt": "p"})
    report = _curate({"messy.jsonl": data}).curation_report
    with pytest.raises(CurationQualityError) as caught:
        check_bad_fraction(report, max_bad_fraction=0.5)
    message = str(caught.value)
    assert "messy.jsonl" in message and "3 of 4" in message
    assert message.index("invalid_json (2)") < message.index("missing_field (1)")
    check_bad_fraction(report, max_bad_fraction=0.75)  # exactly at the bar passes


def test_a_format_override_for_a_missing_file_is_an_error():
    import pytest as _pytest

    from alignment_stages.curation.curate import FormatOverrideError

    params = DataCurationParams(formats={"hh.jsnl": "hh_rlhf"})
    with _pytest.raises(FormatOverrideError, match="'hh.jsnl' \\(did you mean 'hh.jsonl'"):
        curate_files(as_loaders({"hh.jsonl": b""}), params)


def test_empty_input_stops_naming_the_file():
    import pytest as _pytest

    from alignment_stages.curation.curate import CurationQualityError, check_bad_fraction

    result = curate_files(as_loaders({"empty.jsonl": b""}), DataCurationParams())
    with _pytest.raises(CurationQualityError, match="No preference pair .*empty.jsonl: read 0"):
        check_bad_fraction(result.curation_report, 0.2)
