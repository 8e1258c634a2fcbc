"""Turn one source file's bytes into records, one at a time, without letting one bad record take
the rest of the file down with it.

Each reader yields `RawRecord`s. A record that cannot even be decoded arrives with its error and
its original text, so the curation step can quarantine it and move on.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from alignment_stages.curation.schema import Reason, RecordError

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


class SourceFileError(ValueError):
    """A whole file cannot be read (a corrupt parquet or CSV container). The run stops and names it."""


@dataclass(slots=True)
class RawRecord:
    index: int  # position in the file: JSONL line number - 1, or row number
    record: dict[str, Any] | None  # None when `error` is set
    error: RecordError | None = None
    original: str | None = None  # the source text; tabular rows are serialised only when needed
    textual: bool = False  # every value is the source's text (CSV): typed fields still to parse


def _decode_json_line(index: int, line: bytes, encoding: str = "utf-8") -> RawRecord:
    try:
        text = line.decode(encoding)
    except UnicodeDecodeError as exc:
        original = line.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
        return RawRecord(index, None, RecordError(Reason.INVALID_UTF8, str(exc)), original)
    text = text.rstrip("\r\n")
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and an integer over Python's 4,300 digits
        return RawRecord(index, None, RecordError(Reason.INVALID_JSON, str(exc)), text)
    except RecursionError:  # the parser's depth limit: this line only, not the whole file
        error = RecordError(Reason.INVALID_JSON, "nested too deeply to read")
        return RawRecord(index, None, error, text)
    return _as_object(index, value, text)


def _as_object(index: int, value: Any, original: str | None) -> RawRecord:
    if isinstance(value, dict):
        return RawRecord(index, value, None, original)
    error = RecordError(
        Reason.WRONG_TYPE, f"record is a {type(value).__name__}, expected an object"
    )
    return RawRecord(index, None, error, original or json.dumps(value, ensure_ascii=False))


def read_jsonl(data: bytes) -> Iterator[RawRecord]:
    """Line by line: a broken line or invalid UTF-8 costs that one record only. Blank lines are
    not records. A UTF-8 byte-order mark (Windows editors write one) can only start line 0."""
    for index, line in enumerate(io.BytesIO(data)):
        if line.strip():
            yield _decode_json_line(index, line, "utf-8-sig" if index == 0 else "utf-8")


def read_json(data: bytes) -> Iterator[RawRecord]:
    """A JSON array of objects, or an object holding one such array (`{"data": [...]}`).

    Many exports named `.json` are really JSON Lines; those are read line by line instead.
    """
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # line by line, a bad record costs only itself
        yield from read_jsonl(data)
        return
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 else [value]
    if not isinstance(value, list):
        value = [value]
    for index, item in enumerate(value):
        yield _as_object(index, item, None)


def _read_table_rows(table_batches: Iterator[Any]) -> Iterator[RawRecord]:
    index = 0
    for batch in table_batches:
        for row in batch.to_pylist():
            yield RawRecord(index, row)
            index += 1


def _decoded_csv_row(index: int, row: dict[str, Any]) -> RawRecord:
    """Every CSV cell arrives as bytes: decode each here, so a row with undecodable text (a
    cp1252 export) is quarantined as invalid_utf8 and the rest of the file is read."""
    for key, value in row.items():
        if isinstance(value, bytes):
            try:
                row[key] = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                original = {
                    k: v.decode("utf-8", errors="backslashreplace") if isinstance(v, bytes) else v
                    for k, v in row.items()
                }
                error = RecordError(Reason.INVALID_UTF8, f"column {key!r}: {exc}")
                return RawRecord(index, None, error, json.dumps(original, ensure_ascii=False))
    return RawRecord(index, row, textual=True)


def read_parquet(data: bytes) -> Iterator[RawRecord]:
    try:
        parquet_file = pq.ParquetFile(io.BytesIO(data))
        batches = parquet_file.iter_batches(batch_size=8192)
        # A damaged row group surfaces only when it is read: still the file's fault, not a record's.
        yield from _read_table_rows(batches)
    except (OSError, pa.ArrowException) as exc:  # pyarrow raises several types for a corrupt file
        raise SourceFileError(f"not a readable parquet file: {exc}") from exc


def read_csv(data: bytes) -> Iterator[RawRecord]:
    """Every cell as its text. Arrow would type a column of answers "3", "4" as integers, and a
    pair of numbers is still a pair of answers; the fields a format reads as numbers are parsed
    by that format (`curation.formats.from_text`). Empty cells stay "" so that an empty answer
    is quarantined as empty_text, not lost."""
    try:
        names = pa_csv.open_csv(io.BytesIO(data)).schema.names
        convert = pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.binary()), strings_can_be_null=False
        )
        table = pa_csv.read_csv(io.BytesIO(data), convert_options=convert)
    except (OSError, pa.ArrowException) as exc:
        raise SourceFileError(f"not a readable CSV file: {exc}") from exc
    for raw in _read_table_rows(iter(table.to_batches(max_chunksize=8192))):
        yield _decoded_csv_row(raw.index, raw.record)


READERS = {
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".parquet": read_parquet,
    ".csv": read_csv,
}


def read_records(file_name: str, data: bytes) -> Iterator[RawRecord]:
    suffix = PurePosixPath(file_name).suffix.lower()
    if suffix not in READERS:
        raise SourceFileError(f"unsupported file type '{suffix}'; use one of {SUPPORTED_SUFFIXES}")
    return READERS[suffix](data)
