"""Input edges of ``stormvarsel ingest``: a CSV that starts with blank lines, a count cell too long
for Python's int, a pipe kept open (``tail -f | stormvarsel ingest -``), and CSV cells longer
than csv's own field limit (131,072 characters)."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from streams.ingest import (
    IngestError,
    IngestOptions,
    Row,
    Transform,
    build_transform,
    csv_input,
    csv_rows,
    read_rows,
    run_ingest,
    typed_text,
)
from streams.ingest.rows import BOM
from streams.mention import MENTION_MAX_BYTES_CEILING
from streams.settings import Settings
from tests.test_ingest import T0, T1, T2, ingest_with, never_connect


# --- a CSV that starts with blank lines ---
@pytest.mark.parametrize("ends", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("bom", [b"", BOM])
def test_a_csv_whose_first_line_is_blank_is_read_from_its_header(ends: bytes, bom: bytes) -> None:
    """The blank first line was read as the header: no columns, nothing sent, exit 0."""
    lines = [
        b"",  # line 1: blank (after the byte-order mark, if any)
        b"id,text,created_at",  # line 2: the header
        f"c1,hei,{T0}".encode(),  # line 3
        f"c2,hallo,{T1},extra".encode(),  # line 4: a cell too many
        f"c3,hallo,{T2}".encode(),  # line 5
    ]
    report, sink = ingest_with(bom + ends.join(lines) + ends, "csv")
    assert [(r.key, r.line) for r in sink.sent] == [(b"c1", 3), (b"c3", 5)]
    assert {reason: group.lines for reason, group in report.rejected.items()} == {
        "bad_csv_row": [4]
    }
    assert json.loads(sink.sent[0].value) == {"id": "c1", "text": "hei", "created_at": T0}


def test_blank_lines_before_the_header_keep_the_real_line_numbers() -> None:
    data = f"\n  \n\nid,text,created_at,\nc1,hei,{T0},\nc2,hei,{T1},stray\n".encode()
    rows = list(csv_rows(io.BytesIO(data), Transform()))
    assert [row.line for row in rows] == [5, 6]
    assert rows[1].rejection is not None
    assert "(line 4)" in rows[1].rejection.message  # the header's line, not line 1


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ("\n\nid,text,id\n1,2,3\n", "line 3: the CSV header names the column 'id' twice"),
        ('\nid,"te\nxt",created_at\n', "line 2: the CSV header runs on to line 3"),
        ('\r\nid,"text,created_at\r\n', "line 2: a quote opened in the CSV header is never"),
        ("\nID,text,created_at\n", "line 2: the CSV has no column 'id'"),
    ],
)
def test_a_header_after_blank_lines_is_named_by_its_own_line(
    data: str, said: str, tmp_path: Path
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(data, encoding="utf-8", newline="")
    options = IngestOptions(source=source, format="csv", transform=Transform())
    with pytest.raises(IngestError) as raised:
        run_ingest(Settings(), options, connect=never_connect)
    assert str(raised.value).startswith(f"{source}: {said}")


# --- a count too long for Python's int ---
def test_a_count_with_more_digits_than_python_converts_is_refused_as_bad_type() -> None:
    """A count cell of more than 4,300 digits crashed the run with a ValueError traceback."""
    huge = "9" * 5000
    data = f"id,text,created_at,likes\nc1,hei,{T0},{huge}\nc2,hei,{T1},7\n".encode()
    transform = build_transform(maps=["engagement.likes=likes"])
    report, sink = ingest_with(data, "csv", transform=transform)
    assert report.rejected["bad_type:engagement.likes"].lines == [2]
    assert [r.key for r in sink.sent] == [b"c2"]
    assert json.loads(sink.sent[0].value)["engagement"] == {"likes": 7}


def test_typed_text_leaves_a_digit_string_too_long_for_an_int_as_text() -> None:
    huge = "1" * 5000
    assert typed_text("author.followers", huge) == huge
    assert typed_text("author.followers", " 12 ") == 12
    assert build_transform(sets=[f"engagement.likes={huge}"]).constants["engagement.likes"] == huge


# --- a pipe kept open ---
_PIPE_WAIT_S = 5.0


def _first_row_from_an_open_pipe(
    read: Callable[[IO[bytes]], Iterator[Row]], data: bytes
) -> Row | None:
    """Write ``data`` into an OS pipe, keep it open, and return the first row read from it (None
    when none came within the wait: the reader is waiting for more input or its end)."""
    read_end, write_end = os.pipe()
    rows: queue.Queue[Row | BaseException] = queue.Queue()
    stream = os.fdopen(read_end, "rb")  # a BufferedReader, as sys.stdin.buffer on a pipe

    def reader() -> None:
        try:
            for row in read(stream):
                rows.put(row)
        except BaseException as exc:
            rows.put(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        os.write(write_end, data)
        try:
            got = rows.get(timeout=_PIPE_WAIT_S)
        except queue.Empty:
            return None
        if isinstance(got, BaseException):
            raise got
        return got
    finally:
        os.close(write_end)  # the reader sees the end of input and stops
        thread.join(_PIPE_WAIT_S)
        stream.close()


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_json_lines_from_a_pipe_are_read_as_they_come(encoding: str) -> None:
    """``tail -f log.jsonl | stormvarsel ingest -`` sent nothing until 8 KiB (64 KiB with another
    --encoding) had come or the input ended: a buffered read(n) waits for n bytes."""
    line = json.dumps({"id": "p1", "text": "hei", "created_at": T0}).encode() + b"\n"
    row = _first_row_from_an_open_pipe(
        lambda stream: read_rows(stream, "jsonl", Transform(), encoding), line
    )
    assert row is not None, "the line was not read while the pipe stayed open"
    assert row.line == 1 and row.fields == {"id": "p1", "text": "hei", "created_at": T0}


def test_csv_rows_from_a_pipe_are_read_as_they_come() -> None:
    data = f"id,text,created_at\np1,hei,{T0}\n".encode()
    row = _first_row_from_an_open_pipe(lambda stream: csv_rows(stream, Transform()), data)
    assert row is not None, "the row was not read while the pipe stayed open"
    assert row.line == 2 and row.fields == {"id": "p1", "text": "hei", "created_at": T0}


# --- cells longer than csv's default field limit ---
def _long_text(size: int) -> str:
    """A multi-line post text of about ``size`` characters whose lines read as CSV rows."""
    line = f"p9,this line is part of the long post,{T2}"
    count = size // (len(line) + 1) + 1
    return "\n".join([f"start {'x' * 100}", *[line] * count, "end"])


@pytest.mark.parametrize("max_bytes", [None, MENTION_MAX_BYTES_CEILING])
def test_a_quoted_multi_line_text_over_csvs_field_limit_is_one_record(
    max_bytes: int | None,
) -> None:
    """Past 131,072 characters csv stopped inside the quoted cell and read its later lines as
    rows of their own: a line of the post text was sent as a mention."""
    text = _long_text(140_000)
    assert 131_072 < len(text) < MENTION_MAX_BYTES_CEILING - 1000
    data = (
        "id,text,created_at\n"
        f"c1,hei,{T0}\n"  # line 2
        f'c2,"{text}",{T1}\n'  # lines 3 on
        f"c3,hallo,{T2}\n"
    ).encode()
    settings = Settings() if max_bytes is None else Settings(mention_max_bytes=max_bytes)
    report, sink = ingest_with(data, "csv", settings=settings)
    keys = [r.key for r in sink.sent]
    assert b"p9" not in keys  # no line of the text sent as its own mention
    if max_bytes is None:  # 64 KiB: too large
        assert {reason: group.lines for reason, group in report.rejected.items()} == {
            "too_large": [3]
        }
        assert keys == [b"c1", b"c3"]
    else:  # 240 KiB: it fits
        assert not report.rejected
        assert keys == [b"c1", b"c2", b"c3"]
        assert json.loads(sink.sent[1].value)["text"] == text
    assert report.read == 3


def test_a_single_line_cell_over_csvs_field_limit_is_checked_for_size() -> None:
    """A one-line cell of 140,000 characters was refused as bad_csv_row (csv's limit), though
    STORMVARSEL_MENTION_MAX_BYTES may allow it."""
    data = f"id,text,created_at\nc1,{'x' * 140_000},{T0}\nc2,hallo,{T1}\n".encode()
    report, sink = ingest_with(data, "csv")
    assert {reason: group.lines for reason, group in report.rejected.items()} == {"too_large": [2]}
    assert [r.key for r in sink.sent] == [b"c2"]
    settings = Settings(mention_max_bytes=MENTION_MAX_BYTES_CEILING)
    report, sink = ingest_with(data, "csv", settings=settings)
    assert not report.rejected and [r.key for r in sink.sent] == [b"c1", b"c2"]


@pytest.mark.parametrize("multi_line", [False, True])
def test_a_cell_over_ingests_field_limit_stops_the_run_before_anything_is_sent(
    multi_line: bool,
) -> None:
    """Past the limit csv cannot tell where the row ends (the cell may go on over more lines), so
    the rows after it cannot be trusted: one error naming the line, nothing sent."""
    limit = csv_input.CSV_FIELD_LIMIT
    assert limit > MENTION_MAX_BYTES_CEILING
    text = _long_text(limit + 10) if multi_line else "x" * (limit + 10)
    data = f'id,text,created_at\nc1,hei,{T0}\nc2,"{text}",{T1}\nc3,hei,{T2}\n'.encode()
    said = "a quoted cell opened on this line (read to line" if multi_line else "a cell on this"
    with pytest.raises(IngestError, match=rf"^standard input: line 3: {re.escape(said)}"):
        ingest_with(data, "csv")
