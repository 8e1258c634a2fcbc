import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alignment_stages.curation.readers import SourceFileError, read_records
from alignment_stages.curation.schema import Reason
from tests.curation import samples


def test_jsonl_one_bad_line_costs_one_record():
    data = b"\n".join(
        [json.dumps(samples.EXPLICIT_TEXT).encode(), b"{broken", b"", b'{"a": "\xff"}', b"[1, 2]"]
    )
    records = list(read_records("x.jsonl", data))
    assert [r.index for r in records] == [0, 1, 3, 4]  # the blank line is not a record
    assert records[0].record == samples.EXPLICIT_TEXT
    assert [r.error.reason for r in records[1:]] == [
        Reason.INVALID_JSON,
        Reason.INVALID_UTF8,
        Reason.WRONG_TYPE,
    ]
    assert records[2].original == '{"a": "\\xff"}'  # invalid bytes kept, visibly


def test_json_array_and_wrapped_array_and_jsonl_named_json():
    rows = [samples.EXPLICIT_TEXT, samples.SHP]
    as_array = json.dumps(rows).encode()
    wrapped = json.dumps({"data": rows}).encode()
    as_lines = "\n".join(json.dumps(r) for r in rows).encode()
    for data in (as_array, wrapped, as_lines):
        assert [r.record for r in read_records("x.json", data)] == rows


def test_parquet_rows_keep_message_lists():
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([samples.ULTRAFEEDBACK]), buffer)
    (record,) = read_records("x.parquet", buffer.getvalue())
    assert record.record["chosen"] == samples.ULTRAFEEDBACK["chosen"]


def test_csv_keeps_every_cell_as_its_text_and_empty_cells_as_empty_text():
    # A format parses the fields it reads as numbers (labels here) from this text.
    data = b"history,human_ref_A,human_ref_B,labels\nq,,07,1\n"
    (record,) = read_records("x.csv", data)
    assert record.record == {"history": "q", "human_ref_A": "", "human_ref_B": "07", "labels": "1"}
    assert record.textual


@pytest.mark.parametrize("name", ["x.parquet", "x.csv"])
def test_unreadable_container_names_the_problem(name):
    data = b"\x00\x01not a table" if name.endswith("parquet") else b'a,b\n"unterminated,1\n'
    with pytest.raises(SourceFileError, match="not a readable"):
        list(read_records(name, data))


def test_unsupported_suffix_is_refused():
    with pytest.raises(SourceFileError, match="unsupported file type"):
        read_records("x.txt", b"")


def test_a_utf8_byte_order_mark_is_not_a_bad_record():
    row = json.dumps(samples.EXPLICIT_TEXT).encode()
    bom = b"\xef\xbb\xbf"
    (first, second) = read_records("x.jsonl", bom + row + b"\n" + row + b"\n")
    assert first.record == second.record == samples.EXPLICIT_TEXT
    pretty = bom + json.dumps([samples.EXPLICIT_TEXT] * 3, indent=2).encode()
    assert [r.record for r in read_records("x.json", pretty)] == [samples.EXPLICIT_TEXT] * 3


def test_a_cp1252_csv_row_is_invalid_utf8():
    data = "prompt,chosen,rejected\nq,caf\u00e9 ok,no\nq2,fine,bad\n".encode("cp1252")
    first, second = read_records("x.csv", data)
    assert first.error.reason == Reason.INVALID_UTF8 and "chosen" in first.error.detail
    assert json.loads(first.original)["chosen"] == "caf\\xe9 ok"  # invalid byte kept, visibly
    assert second.record == {"prompt": "q2", "chosen": "fine", "rejected": "bad"}
