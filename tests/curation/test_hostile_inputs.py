"""Issue 28's hostile inputs to curation: each costs only its own record, or stops the run naming
the file and record, and nothing is silently accepted that a reader would call one answer."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import alignment_stages.curation.curate as curate
from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.curate import CurationError, curate_files
from alignment_stages.curation.readers import SourceFileError
from tests.conftest import as_loaders
from tests.curation import samples

PARAMS = DataCurationParams(max_bad_fraction=1.0)
GOOD = {"prompt": "How do I cook rice?", "chosen": "Simmer it.", "rejected": "Go away."}


def _curate(files: dict[str, bytes]):
    return curate_files(as_loaders(files), PARAMS)


def _quarantined(result) -> list[tuple[int, str, str]]:
    rows = result.quarantined_records.to_dict("records")
    return [(r["record_index"], r["reason"], r["detail"]) for r in rows]


def test_a_line_nested_100000_deep_costs_that_record_only():
    deep = b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    result = _curate({"f.jsonl": json.dumps(GOOD).encode() + b"\n" + deep + b"\n"})
    assert len(result.curated_pairs) == 1
    assert _quarantined(result) == [(1, "invalid_json", "nested too deeply to read")]
    as_array = b"[" + json.dumps(GOOD).encode() + b",\n" + deep + b"]"
    assert len(_curate({"f.json": as_array}).quarantined_records) >= 1  # read, not a crash


def test_a_401_digit_score_is_quarantined_not_an_overflow():
    lines = [
        json.dumps(GOOD),
        json.dumps({**GOOD, "prompt": "p2", "score_chosen": 10**400, "score_rejected": 1}),
        '{"prompt": "p3", "chosen": "a", "rejected": "b", "score_chosen": 1e400, "score_rejected": 2}',
    ]
    result = _curate({"f.jsonl": ("\n".join(lines) + "\n").encode()})
    assert len(result.curated_pairs) == 1
    (huge_row, inf_row) = _quarantined(result)
    assert huge_row[:2] == (1, "wrong_type") and "'score_chosen'" in huge_row[2]
    assert "too large" in huge_row[2]
    assert inf_row[:2] == (2, "wrong_type") and "expected a finite number" in inf_row[2]


def test_a_truncated_parquet_file_is_named_in_the_error_and_the_log(caplog):
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([samples.ULTRAFEEDBACK] * 50), buffer)
    truncated = buffer.getvalue()[:-40]
    with pytest.raises(SourceFileError, match=r"^ultrafeedback\.parquet: not a readable parquet"):
        _curate({"ok.jsonl": json.dumps(GOOD).encode(), "ultrafeedback.parquet": truncated})
    assert any("ultrafeedback.parquet" in r.getMessage() for r in caplog.records)


def test_a_csv_of_numeric_answers_is_read_as_text_like_the_same_jsonl():
    rows = [("What is 1 + 2?", "3", "4"), ("Pick a digit", "07", "7.5")]  # Arrow: int, float
    csv = "prompt,chosen,rejected\n" + "".join(f'"{p}",{c},{r}\n' for p, c, r in rows)
    jsonl = "".join(json.dumps(dict(zip(("prompt", "chosen", "rejected"), r, strict=True))) + "\n" for r in rows)  # fmt: skip
    from_csv, from_jsonl = _curate({"a.csv": csv.encode()}), _curate({"a.jsonl": jsonl.encode()})
    assert from_csv.quarantined_records.empty and len(from_csv.curated_pairs) == 2
    columns = ["pair_id", "prompt_text", "chosen", "rejected"]
    assert from_csv.curated_pairs[columns].equals(from_jsonl.curated_pairs[columns])
    assert from_csv.curated_pairs["chosen"].tolist() == ["3", "07"]  # the text, as written


def test_csv_typed_fields_are_still_parsed_as_numbers_and_flags():
    shp = "history,human_ref_A,human_ref_B,labels,score_A,score_B\nq,12,13,1,4,\nq2,a,b,2,1,1\n"
    pku = ("prompt,response_0,response_1,better_response_id,is_response_0_safe,is_response_1_safe\n"
           "p,0,1,1,true,FALSE\n")  # fmt: skip
    result = _curate({"shp.csv": shp.encode(), "pku.csv": pku.encode()})
    pairs = result.curated_pairs.set_index("source")
    assert (pairs.loc["shp.csv", "chosen"], pairs.loc["shp.csv", "chosen_score"]) == ("12", 4.0)
    assert pairs.loc["pku.csv", ["chosen", "chosen_safe", "rejected_safe"]].tolist() == ["1", False, True]  # fmt: skip
    assert _quarantined(result) == [(1, "wrong_type", "field 'labels' is 2, expected 0 or 1")]


@pytest.mark.parametrize(
    ("chosen", "rejected"),
    [
        ("Simmer it.", "Sim\u200bmer it."),  # zero-width space
        ("Simmer it.", "Sim\u00admer it."),  # soft hyphen
        ("Simmer it.", "\uff33\uff49\uff4d\uff4d\uff45\uff52 it."),  # full-width letters
        ("Simmer it.", "Simmer\u2060 \ufeffit."),  # word joiner, byte-order mark
    ],
)
def test_answers_that_look_identical_are_an_identical_pair(chosen, rejected):
    result = _curate({"f.jsonl": (json.dumps({**GOOD, "chosen": chosen, "rejected": rejected}) + "\n").encode()})  # fmt: skip
    assert result.curated_pairs.empty
    ((_, reason, detail),) = _quarantined(result)
    assert reason == "identical_pair" and "NFKC" in detail


def test_a_pair_repeated_with_invisible_characters_is_a_duplicate():
    twin = {**GOOD, "chosen": "Sim\u200bmer it.", "prompt": "How do I cook\u00ad rice?"}
    result = _curate({"f.jsonl": f"{json.dumps(GOOD)}\n{json.dumps(twin)}\n".encode()})
    assert len(result.curated_pairs) == 1
    assert _quarantined(result) == [(1, "duplicate", "duplicate after normalising of f.jsonl record 0")]  # fmt: skip
    # Text itself is kept as written (NFC), not folded: x² stays x².
    kept = _curate({"f.jsonl": (json.dumps({**GOOD, "chosen": "x\u00b2"}) + "\n").encode()})
    assert kept.curated_pairs["chosen"].tolist() == ["x\u00b2"]


def test_an_unexpected_fault_names_the_file_and_record(monkeypatch):
    def broken(record):
        raise ZeroDivisionError("a bug")

    source_format = curate.FORMATS["prompt_chosen_rejected"]
    monkeypatch.setitem(curate.FORMATS, "prompt_chosen_rejected", type(source_format)(source_format.looks_like, broken))  # fmt: skip
    with pytest.raises(CurationError, match=r"f\.jsonl, record 0: ZeroDivisionError: a bug"):
        _curate({"f.jsonl": (json.dumps(GOOD) + "\n").encode()})
