"""`stormvarsel ingest`: mapping, local validation, pacing, options, and the real Kafka."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from structlog.testing import CapturingLogger

import streams.ingest.report
import streams.ingest.run
from streams.brand_matching import BrandMatcher
from streams.brands import load_brands
from streams.cli import main
from streams.ingest import (
    Connection,
    IngestError,
    IngestOptions,
    IngestReport,
    OptionError,
    Preparer,
    Ready,
    ReasonGroup,
    Refused,
    Row,
    Transform,
    build_object,
    build_transform,
    count_records,
    csv_rows,
    detect_format,
    jsonl_rows,
    run_ingest,
    schedule,
    summary_lines,
)
from streams.ingest.json_input import opens_an_object
from streams.kafka_local import LocalKafka, free_port
from streams.mention import Limits, Rejection
from streams.settings import Settings
from tests.conftest import REPO, SHARED_DATA

AIRLINES_CSV = SHARED_DATA / "sentiment" / "airline_tweets.csv"
AIRLINES_BRANDS = REPO / "docs" / "examples" / "airlines-brands.yaml"
AIRLINE_IDS = {
    "Virgin America": "virgin-america",
    "United": "united",
    "Southwest": "southwest",
    "Delta": "delta",
    "US Airways": "us-airways",
    "American": "american",
}
AIRLINE_OPTIONS = [
    "--map", "id=tweet_id",
    "--map", "created_at=tweet_created",
    "--map", "brand=airline",
    "--time-format", "%m/%d/%Y %H:%M",
    "--timezone", "America/Los_Angeles",
    "--set", "platform=x",
]  # fmt: skip


def mention(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"m{i}", "text": f"post {i}", "created_at": f"2026-11-24T10:00:{i:02d}Z", **extra}


# --- fakes for the Kafka side ---
class FakeSink:
    """Records what would be sent; ``fail`` decides which records Kafka refuses."""

    def __init__(
        self,
        fail: Callable[[Ready], bool] = lambda _r: False,
        interrupt_at: int | None = None,
    ) -> None:
        self.sent: list[Ready] = []
        self.flushed = False
        self.closed = False
        self._fail = fail
        self._interrupt_at = interrupt_at

    def send(self, record: Ready, on_done: Callable[[Exception | None], None]) -> None:
        if self._interrupt_at is not None and len(self.sent) == self._interrupt_at:
            raise KeyboardInterrupt
        if self._fail(record):
            on_done(RuntimeError("broker said no"))
            return
        self.sent.append(record)
        on_done(None)

    def flush(self, timeout_s: float) -> None:
        self.flushed = True

    def close(self) -> None:
        self.closed = True


def ingest_with(
    data: bytes,
    fmt: str = "jsonl",
    *,
    sink: FakeSink | None = None,
    settings: Settings | None = None,
    transform: Transform | None = None,
    retention_ms: int | None = None,
    **options: object,
) -> tuple[IngestReport, FakeSink]:
    fake = sink or FakeSink()
    report = run_ingest(
        settings or Settings(),
        IngestOptions(
            source=None,
            format=fmt,  # type: ignore[arg-type]
            transform=transform or Transform(),
            **options,  # type: ignore[arg-type]
        ),
        stdin=io.BytesIO(data),
        connect=lambda _settings, _topic, _wait: Connection(fake, retention_ms),
    )
    return report, fake


def jsonl(*records: object) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


# --- mapping ---
def test_map_renames_keys_sets_constants_and_nests_fields() -> None:
    transform = build_transform(
        maps=["id=tweet_id", "text=body", "author.handle=user", "created_at=ts"],
        sets=["platform=x", "engagement.likes=7", "is_brand_reply=false"],
    )
    fields = {"tweet_id": 42, "body": "hei", "user": "@kari", "ts": 1_700_000_000, "mood": "sur"}
    assert build_object(fields, transform) == {
        "id": 42,
        "text": "hei",
        "author": {"handle": "@kari"},
        "created_at": 1_700_000_000,
        "mood": "sur",  # unknown fields are kept
        "platform": "x",
        "engagement": {"likes": 7},  # --set values are typed like CSV cells
        "is_brand_reply": False,
    }


def test_jsonl_mapping_keeps_existing_nested_objects() -> None:
    transform = build_transform(maps=["author.followers=fans"])
    fields = {"author": {"handle": "@kari"}, "fans": 12}
    assert build_object(fields, transform) == {"author": {"handle": "@kari", "followers": 12}}


def test_csv_cells_are_typed_and_empty_cells_are_absent() -> None:
    data = (
        b"id,text,created_at,followers,likes,engagement.shares,note,is_brand_reply\n"
        b"1,hei,2026-11-24T10:00:00Z,120,,3, ,true\n"
    )
    transform = build_transform(maps=["author.followers=followers", "engagement.likes=likes"])
    rows = list(csv_rows(io.BytesIO(data), transform))
    assert len(rows) == 1 and rows[0].line == 2
    obj = build_object(rows[0].fields or {}, transform, from_text=True)
    assert obj == {
        "id": "1",  # ids stay text
        "text": "hei",
        "created_at": "2026-11-24T10:00:00Z",
        "author": {"followers": 120},
        "engagement": {"shares": 3},  # a column named like a sub-field is nested
        "is_brand_reply": True,
    }


def test_csv_non_digit_counts_stay_text_for_the_validator_to_refuse() -> None:
    data = b"id,text,created_at,likes\n1,hei,2026-11-24T10:00:00Z,lots\n"
    report, _ = ingest_with(data, "csv", transform=build_transform(maps=["engagement.likes=likes"]))
    assert report.rejected["bad_type:engagement.likes"].lines == [2]


# --- times ---
@pytest.mark.parametrize(
    ("given", "zone", "expected"),
    [
        ("2/24/2015 11:35", "America/New_York", "2015-02-24T16:35:00Z"),
        ("2/24/2015 11:35", "America/Los_Angeles", "2015-02-24T19:35:00Z"),
        ("7/1/2015 12:00", "America/New_York", "2015-07-01T16:00:00Z"),  # daylight saving
        ("2/24/2015 11:35", None, "2015-02-24T11:35:00Z"),  # UTC by default
    ],
)
def test_time_format_with_timezone(given: str, zone: str | None, expected: str) -> None:
    transform = build_transform(time_format="%m/%d/%Y %H:%M", timezone=zone)
    assert build_object({"created_at": given}, transform) == {"created_at": expected}


def test_time_format_offset_wins_over_timezone() -> None:
    transform = build_transform(time_format="%Y-%m-%d %H:%M %z", timezone="Europe/Oslo")
    converted = build_object({"created_at": "2026-11-24 10:00 +0000"}, transform)
    assert converted == {"created_at": "2026-11-24T10:00:00Z"}


def test_naive_iso_times_need_an_explicit_timezone() -> None:
    naive = jsonl(mention(1, created_at="2026-11-24T10:00:00"))
    report, sink = ingest_with(naive)
    assert report.rejected["bad_value:created_at"].lines == [1]
    assert sink.sent == []

    refused = build_object({"created_at": "2026-11-24T10:00:00"}, Transform())
    assert isinstance(refused, Rejection) and "--timezone" in refused.message

    report, sink = ingest_with(naive, transform=build_transform(timezone="Europe/Oslo"))
    assert report.rejected == {}
    assert json.loads(sink.sent[0].value)["created_at"] == "2026-11-24T09:00:00Z"
    assert sink.sent[0].timestamp_ms == int(
        datetime(2026, 11, 24, 9, tzinfo=UTC).timestamp() * 1000
    )


def test_a_huge_integer_time_is_rejected_and_the_run_goes_on() -> None:
    huge = b'{"id": "m2", "text": "hei", "created_at": ' + b"9" * 400 + b"}"
    report, sink = ingest_with(jsonl(mention(1), huge, mention(3)))
    assert report.rejected["timestamp_out_of_range"].lines == [2]
    assert [r.key for r in sink.sent] == [b"m1", b"m3"] and report.read == 3


def test_a_time_at_the_calendars_ends_is_rejected_and_the_run_goes_on() -> None:
    """Year 1 (.NET's "no date") or 9999 moved past the calendar by its offset or --timezone:
    an OverflowError traceback with no summary, before."""
    data = jsonl(
        mention(1, created_at="0001-01-01T00:00:00+01:00"),
        mention(2, created_at="0001-01-01T00:00:00"),  # naive: read in --timezone
        mention(3, created_at="9999-12-31T23:59:59-01:00"),
        mention(4),
    )
    report, sink = ingest_with(data, transform=build_transform(timezone="Europe/Oslo"))
    assert report.rejected["timestamp_out_of_range"].lines == [1, 2, 3]
    assert [r.key for r in sink.sent] == [b"m4"]
    formatted = build_object(
        {"created_at": "0001-01-01 00:00"},
        build_transform(time_format="%Y-%m-%d %H:%M", timezone="Europe/Oslo"),
    )
    assert isinstance(formatted, Rejection) and formatted.reason == "timestamp_out_of_range"


def test_a_date_with_an_offset_is_midnight_at_that_offset() -> None:
    """Python 3.11 reads any character between a date and a time as their separator: the
    date ``2026-11-24+01:00`` was 01:00 with no offset, then placed in --timezone."""
    data = jsonl(mention(1, created_at="2026-11-24+01:00"), mention(2, created_at="2026-11-24Z"))
    report, sink = ingest_with(data, transform=build_transform(timezone="America/Los_Angeles"))
    assert report.rejected == {}
    assert [r.timestamp_ms for r in sink.sent] == [
        int(datetime(2026, 11, 23, 23, tzinfo=UTC).timestamp() * 1000),
        int(datetime(2026, 11, 24, tzinfo=UTC).timestamp() * 1000),
    ]


def test_a_time_not_matching_the_format_is_rejected_locally() -> None:
    data = b"id,text,tweet_created\n1,hei,2015-02-24\n2,hei,2/24/2015 11:35\n"
    transform = build_transform(maps=["created_at=tweet_created"], time_format="%m/%d/%Y %H:%M")
    report, sink = ingest_with(data, "csv", transform=transform)
    assert report.rejected["bad_value:created_at"].lines == [2]
    assert [r.key for r in sink.sent] == [b"2"]


# --- what is sent ---
def test_sent_value_is_the_mapped_object_keyed_by_id_at_its_event_time() -> None:
    record = {"id": 570306133677760513, "text": "hei", "created_at": 1424777700, "x": [1]}
    report, sink = ingest_with(jsonl(record))
    assert report.read == 1 and report.sent == 1 and report.exit_code() == 0
    [sent] = sink.sent
    assert sent.key == b"570306133677760513"
    assert sent.timestamp_ms == 1424777700 * 1000
    # Compact UTF-8 JSON of the mapped object, not the normalised record (the worker validates).
    assert sent.value == b'{"id":570306133677760513,"text":"hei","created_at":1424777700,"x":[1]}'
    assert sink.flushed and sink.closed


def test_records_over_the_size_limit_are_rejected() -> None:
    settings = Settings(mention_max_bytes=1024)
    report, sink = ingest_with(jsonl(mention(1, text="x" * 2000), mention(2)), settings=settings)
    assert report.rejected["too_large"].lines == [1]
    assert len(sink.sent) == 1


# --- local rejections and line numbers ---
def test_jsonl_rejections_have_reasons_and_physical_line_numbers(tmp_path: Path) -> None:
    data = jsonl(
        mention(1),
        b"",  # blank lines are skipped, but still counted as lines
        b"{not json",
        b'{"id": "\xff\xfe"}',
        {"id": "m4", "created_at": "2026-11-24T10:00:00Z"},
        [1, 2],
        mention(6, platform="myspace"),
        mention(7, created_at="2999-01-01T00:00:00Z"),
        mention(8),
    )
    rejects = tmp_path / "rejects.jsonl"
    # --allow-rejects: a line that is not UTF-8 is refused alone (without it, nothing is sent).
    report, sink = ingest_with(data, rejects=rejects, allow_rejects=True)
    assert {reason: group.lines for reason, group in report.rejected.items()} == {
        "invalid_json": [3],
        "not_utf8": [4],
        "missing_field:text": [5],
        "bad_type:mention": [6],
        "bad_value:platform": [7],
        "timestamp_out_of_range": [8],
    }
    assert report.read == 8 and report.sent == 2
    assert [r.key for r in sink.sent] == [b"m1", b"m8"]
    assert report.exit_code() == 1 and report.exit_code(allow_rejects=True) == 0

    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(w["line"], w["reason"]) for w in written] == [
        (3, "invalid_json"),
        (4, "not_utf8"),
        (5, "missing_field:text"),
        (6, "bad_type:mention"),
        (7, "bad_value:platform"),
        (8, "timestamp_out_of_range"),
    ]
    assert written[0]["raw"] == "{not json" and written[0]["message"]
    assert written[1]["raw_b64"] == "eyJpZCI6ICL//iJ9"  # the exact bytes survive


def test_csv_rejections_count_physical_lines_with_the_header_as_line_1() -> None:
    data = (
        b"id,text,created_at\n"  # line 1
        b'c1,"two\nlines",2026-11-24T10:00:00Z\n'  # lines 2-3: one row
        b"c2,,2026-11-24T10:00:00Z\n"  # line 4: empty text is absent
        b"\n"  # line 5: blank
        b"c3,hei,2026-11-24T10:00:00Z,extra\n"  # line 6: too many cells
        b"c4,hei,yesterday\n"  # line 7
        b"c5,hei,2026-11-24T10:00:00Z\n"  # line 8
    )
    report, sink = ingest_with(data, "csv")
    assert {reason: group.lines for reason, group in report.rejected.items()} == {
        "missing_field:text": [4],
        "bad_csv_row": [6],
        "bad_value:created_at": [7],
    }
    assert [r.key for r in sink.sent] == [b"c1", b"c5"]
    assert [r.line for r in sink.sent] == [2, 8]
    assert json.loads(sink.sent[0].value)["text"] == "two\nlines"


def test_csv_with_a_bom_and_crlf_line_ends() -> None:
    data = b"\xef\xbb\xbfid,text,created_at\r\nc1,hei,2026-11-24T10:00:00Z\r\n"
    rows = list(csv_rows(io.BytesIO(data), Transform()))
    assert rows == [Row(2, "c1,hei,2026-11-24T10:00:00Z", fields=rows[0].fields, from_text=True)]
    assert rows[0].fields == {"id": "c1", "text": "hei", "created_at": "2026-11-24T10:00:00Z"}


T0, T1, T2 = "2026-11-24T10:00:00Z", "2026-11-24T10:00:01Z", "2026-11-24T10:00:02Z"


def test_csv_header_with_several_unnamed_columns() -> None:
    """A header with more than one empty name (Excel's trailing columns) stopped the run with
    "the CSV header names the column '' twice"; one unnamed column was sent as a field ''."""
    data = (
        "id,text,,created_at,\n"
        f"c1,hei,,{T0},\n"  # nothing in the unnamed columns: fine
        f"c2,hei,stray,{T1},\n"  # a value without a column name: refused, with its line
        f"c3,hei, ,{T2},\n"
    ).encode()
    report, sink = ingest_with(data, "csv")
    assert [r.key for r in sink.sent] == [b"c1", b"c3"]
    assert json.loads(sink.sent[0].value) == {"id": "c1", "text": "hei", "created_at": T0}
    assert report.rejected["bad_csv_row"].lines == [3]


@pytest.mark.parametrize("ends", [b"\r", b"\r\n", b"\n"])
def test_csv_line_ends_of_every_kind(ends: bytes) -> None:
    """A CR-only file (classic Mac OS) stopped at its header: "new-line character seen in
    unquoted field"."""
    lines = [b"id,text,created_at", f"c1,hei,{T0}".encode(), b'c2,"two', f'lines",{T1}'.encode()]
    data = ends.join([*lines, b"", f"c3,x,{T2}".encode()]) + ends
    report, sink = ingest_with(data, "csv")
    assert report.rejected == {}
    assert [(r.key, r.line) for r in sink.sent] == [(b"c1", 2), (b"c2", 3), (b"c3", 6)]
    assert json.loads(sink.sent[1].value)["text"] == "two" + ends.decode() + "lines"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_csv_in_utf16_with_a_byte_order_mark(codec: str) -> None:
    """Excel's "Unicode text" export (UTF-16 with a BOM) stopped at its header."""
    text = f'id,text,created_at\r\nc1,blåbær,{T0}\r\nc2,"to\r\nlinjer",{T1}\r\n'
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
    report, sink = ingest_with(bom + text.encode(codec), "csv")
    assert report.rejected == {}
    assert [(r.key, r.line) for r in sink.sent] == [(b"c1", 2), (b"c2", 3)]
    assert json.loads(sink.sent[0].value)["text"] == "blåbær"


class OneWayStream(io.BytesIO):
    """Standard input from a pipe: cannot be rewound."""

    def seekable(self) -> bool:
        return False


def never_connect(_settings: Settings, _topic: str, _wait: float) -> Connection:
    raise AssertionError("Kafka was contacted: the input should have failed first")


@pytest.mark.parametrize(
    ("data", "said"),
    [
        # An unterminated quote swallowed every row after it into one cell: the rows were sent
        # as one mention (or refused as one row), with no word about the lines lost.
        (
            f'id,created_at,text\nc1,{T0},hei\nc2,{T1},"oops\nc3,{T2},hallo\nc4,{T2},hei\n',
            "line 3: a quote opened on this line is never closed, so every line after it (to "
            "line 5) would be one cell",
        ),
        # ... or everything up to the next quote, where the CSV could not be read.
        (
            f'id,text,created_at\nc1,"oops,{T0}\nc2,x,{T1}\nc3,"hei",{T2}\nc4,y,{T2}\n',
            "line 2: a quoted cell opened on this line runs to line 4, where the CSV cannot be "
            "read (',' expected after '\"')",
        ),
        ("id,text,id\n1,2,3\n", "line 1: the CSV header names the column 'id' twice"),
        ('id,"te\nxt",created_at\n', "line 1: the CSV header runs on to line 2"),
        ('id,"text,created_at\n', "line 1: a quote opened in the CSV header is never closed"),
    ],
)
def test_a_csv_that_cannot_be_read_stops_before_anything_is_sent(
    data: str, said: str, tmp_path: Path
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(data, encoding="utf-8")
    options = IngestOptions(source=source, format="csv", transform=Transform())
    with pytest.raises(IngestError) as raised:
        run_ingest(Settings(), options, connect=never_connect)
    assert str(raised.value).startswith(f"{source}: {said}")
    assert "\n" not in str(raised.value)
    options = IngestOptions(source=None, format="csv", transform=Transform())
    stdin = OneWayStream(data.encode())
    with pytest.raises(IngestError, match=f"^standard input: {re.escape(said)}"):
        run_ingest(Settings(), options, stdin=stdin, connect=never_connect)


def test_a_csv_error_is_one_line_naming_the_file_and_line(no_kafka: None, tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes(f'id,text,created_at\nc1,"oops,{T0}\nc2,x,{T1}\n'.encode())
    result = CliRunner().invoke(main, ["ingest", str(source)])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"error: {source}: line 2: a quote opened on this line is never closed, so every line "
        "after it (to line 3) would be one cell; close or remove the quote\n"
    )


def test_a_quote_that_swallows_rows_up_to_a_stray_quote_is_refused_not_merged() -> None:
    """A stray quote that happens to close the swallowing cell (6" here) merged the rows between
    into one mention, which was sent."""
    data = f'id,text,created_at\nc1,"oops,{T0}\nc2,screen 6",{T1}\nc3,hei,{T2}\n'.encode()
    report, sink = ingest_with(data, "csv")
    assert [r.key for r in sink.sent] == [b"c3"]
    assert report.rejected["bad_csv_row"].lines == [2]


def test_a_quoted_multi_line_text_with_commas_is_one_mention() -> None:
    """A correctly quoted multi-line cell whose middle line splits into as many cells as a
    narrow header has columns was refused as bad_csv_row (read as swallowed rows)."""
    data = (
        "id,text,created_at\n"
        f'c1,"Telenor svarer ikke.\nJeg har ventet, ringt, og ventet.\nHjelp!",{T0}\n'
        f'c2,"Hei\ner dere der, eller?",{T1}\n'
        f"c3,Telenor er nede,{T2}\n"
    ).encode()
    report, sink = ingest_with(data, "csv")
    assert not report.rejected
    assert [(r.key, r.line) for r in sink.sent] == [(b"c1", 2), (b"c2", 5), (b"c3", 7)]
    sent = json.loads(sink.sent[0].value)
    assert sent["text"] == "Telenor svarer ikke.\nJeg har ventet, ringt, og ventet.\nHjelp!"


def test_utf16_that_is_not_valid_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    text = f"id,text,created_at\r\nc1,hei,{T0}\r\n".encode("utf-16-le")
    source.write_bytes(codecs.BOM_UTF16_LE + text + b"\x00\xd8" + "x\r\n".encode("utf-16-le"))
    options = IngestOptions(source=source, format="csv", transform=Transform())
    with pytest.raises(IngestError, match=r"line 3: the file starts with a UTF-16 byte-order mark"):
        run_ingest(Settings(), options, connect=never_connect)


def test_jsonl_reader_skips_blank_lines() -> None:
    rows = list(jsonl_rows(io.BytesIO(b'\n  \n{"a": 1}\r\n')))
    assert [(row.line, row.fields) for row in rows] == [(3, {"a": 1})]


def test_a_json_array_is_read_element_by_element_with_line_numbers(tmp_path: Path) -> None:
    """A .json export holding one array was read as JSON Lines: every line of it was refused
    as invalid_json (or the whole array, on one line, as one bad_type:mention)."""
    records: list[object] = [mention(1), {"id": "m2", "created_at": "2026-11-24T10:00:02Z"}]
    records += [[1, 2], mention(4)]
    data = b"\xef\xbb\xbf\n" + json.dumps(records, indent=2).encode()
    rejects = tmp_path / "rejects.jsonl"
    report, sink = ingest_with(data, rejects=rejects)
    assert [r.key for r in sink.sent] == [b"m1", b"m4"]
    assert [r.line for r in sink.sent] == [3, 16]  # the line each element starts on
    assert {reason: group.lines for reason, group in report.rejected.items()} == {
        "missing_field:text": [8],
        "bad_type:mention": [12],
    }
    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert json.loads(written[0]["raw"]) == records[1]
    report, sink = ingest_with(json.dumps([mention(1), mention(2)]).encode())
    assert [r.key for r in sink.sent] == [b"m1", b"m2"] and report.read == 2
    report, sink = ingest_with(b" [ ] ")
    assert report.read == 0
    source = tmp_path / "in.json"
    source.write_bytes(data)  # the progress bar's total: unknown, not the count of lines
    assert count_records(source, "jsonl") is None
    source.write_bytes(b"\n" + jsonl(mention(1), mention(2)))
    assert count_records(source, "jsonl") == 2


def test_one_pretty_printed_json_object_is_one_mention(tmp_path: Path) -> None:
    """A .json file holding one object over several lines (not an array, not JSON Lines) was
    read as JSON Lines: each of its lines was refused as invalid_json, and nothing was sent."""
    data = b"\xef\xbb\xbf\n" + json.dumps(mention(1, author={"handle": "@kari"}), indent=2).encode()
    report, sink = ingest_with(data + b"\n")
    assert report.rejected == {} and report.read == 1
    assert [(r.key, r.line) for r in sink.sent] == [(b"m1", 2)]
    assert json.loads(sink.sent[0].value)["author"] == {"handle": "@kari"}
    source = tmp_path / "one.json"
    source.write_bytes(data)
    assert count_records(source, "jsonl") is None  # not counted before it is read


def test_pretty_printed_objects_one_after_another_as_jq_prints_them() -> None:
    data = b"".join(
        json.dumps(item, indent=2).encode() + b"\n"
        for item in (mention(1), {"id": "m2", "created_at": T0}, 7, mention(4))
    )
    report, sink = ingest_with(data)
    assert [(r.key, r.line) for r in sink.sent] == [(b"m1", 1), (b"m4", 11)]
    assert {reason: group.lines for reason, group in report.rejected.items()} == {
        "missing_field:text": [6],
        "bad_type:mention": [10],
    }


def test_a_broken_pretty_printed_object_is_one_error_before_kafka(tmp_path: Path) -> None:
    source = tmp_path / "one.json"
    source.write_bytes(b'{\n  "id": "m1"\n  "text": "hei"\n}\n')
    options = IngestOptions(source=source, format="jsonl", transform=Transform())
    with pytest.raises(IngestError) as raised:
        run_ingest(Settings(), options, connect=never_connect)
    assert str(raised.value).startswith(
        f"{source}: the JSON object that starts on line 1 cannot be read at line 3, column 3: "
        "Expecting ',' delimiter"
    )


def test_json_lines_with_a_broken_first_line_stay_json_lines() -> None:
    """A first line cut short right after a complete value was taken for the first line of a
    pretty-printed object, and the whole input failed as one broken object."""
    for broken in (
        b"{not json",
        b'{"id": "m0", "text": "cut sho',
        f'{{"id": "m0", "text": "hei", "created_at": "{T0}"'.encode(),
        b'{"id": "m0", "n": 5',
        b'{"id": "m0", "author": {"handle": "@kari"}',
    ):
        report, sink = ingest_with(jsonl(broken, mention(1), mention(2)))
        assert report.rejected["invalid_json"].lines == [1], broken
        assert [r.key for r in sink.sent] == [b"m1", b"m2"]


@pytest.mark.parametrize(
    "first", [b"{", b'{"id": "m1",', b'{"id":', b'{"author": {', b'{"tags": [', b'  {  "a": 1 ,  ']
)
def test_a_first_line_that_stops_where_more_must_follow_opens_an_object(first: bytes) -> None:
    assert opens_an_object(first)


def test_an_integer_too_long_for_python_is_one_refused_element() -> None:
    """An integer of more than 4,300 digits in a JSON array or a pretty-printed object raised a
    plain ValueError: a traceback, exit 1, and nothing sent."""
    big = b"1" * 5000
    element = (
        b'{"id": "m2", "text": "hei", "created_at": "' + T0.encode() + b'", "n": ' + big + b"}"
    )
    array = b"[\n" + json.dumps(mention(1)).encode() + b",\n" + element + b",\n"
    array += json.dumps(mention(3)).encode() + b"\n]\n"
    pretty = json.dumps(mention(1), indent=2).encode() + b"\n" + element + b"\n"
    pretty += json.dumps(mention(3), indent=2).encode() + b"\n"
    lines = jsonl(mention(1), element, mention(3))
    for data, line in ((array, 3), (pretty, 6), (lines, 2)):
        report, sink = ingest_with(data)
        assert [r.key for r in sink.sent] == [b"m1", b"m3"]
        assert report.rejected["invalid_json"].lines == [line]
        assert report.exit_code() == 1


def test_a_long_integer_in_an_element_that_cannot_be_delimited_is_one_error(
    no_kafka: None, tmp_path: Path
) -> None:
    source = tmp_path / "in.json"
    source.write_bytes(b'[{"id": "a", "n": ' + b"1" * 5000 + b' "x"}]')
    result = CliRunner().invoke(main, ["ingest", str(source)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}: "), result.output
    assert "Expecting ',' delimiter" in lines[0]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b'[{"id": "a"},\n {"id": "b"}', "at line 2, column 13: expected ',' or ']'"),
        (b'[{"id": "a"},\n]', "at line 2, column 1: Expecting value"),
        (b'[{"id": "a"}]\n{"id": "b"}\n', "at line 2, column 1: there is more after the array"),
        (b'[{"id": "\xff"}]', "line 1: byte 9 is not UTF-8 (the bytes"),
    ],
)
def test_a_broken_json_array_is_one_error_before_kafka(
    no_kafka: None, tmp_path: Path, data: bytes, said: str
) -> None:
    source = tmp_path / "in.json"
    source.write_bytes(data)
    result = CliRunner().invoke(main, ["ingest", str(source)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}: "), result.output
    assert said in lines[0]


def test_limit_counts_input_records_and_sort_orders_by_event_time() -> None:
    data = jsonl(
        mention(3, created_at="2026-11-24T10:00:03Z"),
        mention(1, created_at="2026-11-24T10:00:01Z"),
        b"broken",
        mention(2, created_at="2026-11-24T10:00:02Z"),
        mention(9),
    )
    report, sink = ingest_with(data, limit=4, sort=True)
    assert report.read == 4
    assert [r.key for r in sink.sent] == [b"m1", b"m2", b"m3"]
    assert report.rejected["invalid_json"].lines == [3]


# --- brands ---
def test_brand_is_resolved_to_the_brand_id_with_a_brands_file() -> None:
    matcher = BrandMatcher.from_file(load_brands(AIRLINES_BRANDS))
    preparer = Preparer(Transform(), Limits(), matcher)
    for name, brand_id in AIRLINE_IDS.items():
        ready = preparer.prepare(Row(1, "", fields=mention(1, brand=name)))
        assert isinstance(ready, Ready)
        assert json.loads(ready.value)["brand"] == brand_id
    refused = preparer.prepare(Row(5, "", fields=mention(1, brand="JetBlue")))
    assert isinstance(refused, Refused)
    assert refused.rejection.reason == "unknown_brand" and refused.line == 5


def test_brand_passes_through_without_a_brands_file() -> None:
    report, sink = ingest_with(jsonl(mention(1, brand="JetBlue")))
    assert report.rejected == {}
    assert json.loads(sink.sent[0].value)["brand"] == "JetBlue"


def test_unknown_brand_is_rejected_with_the_brands_file_configured() -> None:
    settings = Settings(brands_file=AIRLINES_BRANDS)
    report, sink = ingest_with(
        jsonl(mention(1, brand="JetBlue"), mention(2, brand="Delta")), settings=settings
    )
    assert report.rejected["unknown_brand"].lines == [1]
    assert json.loads(sink.sent[0].value)["brand"] == "delta"


# --- send failures and interruption ---
def test_failed_sends_are_counted_and_written_never_lost(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    sink = FakeSink(fail=lambda record: record.key == b"m2")
    report, _ = ingest_with(jsonl(mention(1), mention(2), mention(3)), sink=sink, rejects=rejects)
    assert report.sent == 2
    assert report.failed["send_failed:RuntimeError"].lines == [2]
    assert report.exit_code(allow_rejects=True) == 1
    [written] = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert written["reason"] == "send_failed:RuntimeError" and written["line"] == 2
    assert json.loads(written["raw"])["id"] == "m2"
    assert summary_lines(report)[-1] == "exit 1: 1 record not acknowledged by Kafka (see above)"


def test_ctrl_c_flushes_what_was_sent_and_exits_130() -> None:
    sink = FakeSink(interrupt_at=2)
    report, _ = ingest_with(jsonl(*(mention(i) for i in range(5))), sink=sink)
    assert report.interrupted and report.exit_code() == 130
    assert report.sent == 2 and sink.flushed and sink.closed
    assert summary_lines(report)[0].startswith("interrupted")


def test_ctrl_c_after_failed_sends_says_the_exit_code_it_exits_with() -> None:
    """The summary said "exit 1" while the process exited 130."""
    sink = FakeSink(fail=lambda record: record.line == 1, interrupt_at=2)
    report, _ = ingest_with(jsonl(*(mention(i) for i in range(5))), sink=sink)
    assert report.interrupted and report.failed and report.exit_code() == 130
    assert summary_lines(report)[-1].startswith("exit 130: ")
    assert not [line for line in summary_lines(report) if line.startswith("exit 1:")]


def test_records_older_than_the_topic_retention_are_warned_about() -> None:
    data = jsonl(mention(1, created_at="2015-02-24T11:35:00Z"), mention(2, created_at=time.time()))
    report, sink = ingest_with(data, retention_ms=7 * 86_400_000)
    assert len(sink.sent) == 2 and report.older_than_retention == 1
    assert summary_lines(report)[-1].startswith(
        "warning: the event times of 1 record are older than the topic's retention.ms (7.0 d)"
    )
    report, _ = ingest_with(data, retention_ms=-1)  # kept forever
    assert report.older_than_retention == 0


def newest_first(count: int, step_s: int) -> bytes:
    start = 1_764_000_000
    return jsonl(*(mention(i, created_at=start - i * step_s) for i in range(count)))


def test_an_input_going_back_in_time_is_warned_about_with_a_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A newest-first export was sent as it was, silently: the detect stage then counted almost
    every mention late (behind the newest by more than its allowed lateness) and raised nothing."""
    data = newest_first(5, step_s=61)  # each record 61 s before the one before it
    logged = CapturingLogger()  # the modules' own loggers: the CLI's configuration caches them
    monkeypatch.setattr(streams.ingest.report, "log", logged)  # the first record going back
    monkeypatch.setattr(streams.ingest.run, "log", logged)  # the total at the end
    report, sink = ingest_with(data, settings=Settings(detect_lateness_s=60))
    assert len(sink.sent) == 5 and report.exit_code() == 0
    assert report.went_back == 4 and report.went_back_first_line == 2
    assert report.went_back_max_ms == 4 * 61_000
    [warning] = [line for line in summary_lines(report) if line.startswith("warning:")]
    assert "4 records (the first on line 2)" in warning
    assert "more than 60 s (STORMVARSEL_DETECT_LATENESS_S) older than a record sent" in warning
    assert "up to 4.1 min" in warning and "--sort" in warning
    warned = [call for call in logged.calls if call.method_name == "warning"]
    assert [call.args for call in warned] == [
        ("ingest.out_of_order",),  # at once, with the line: a paced run may be long
        ("ingest.out_of_order_total",),
    ]
    assert warned[0].kwargs["line"] == 2 and "--sort" in warned[0].kwargs["hint"]
    assert warned[1].kwargs["records"] == 4

    # Within the allowed lateness, or sorted first, nothing is said.
    report, _ = ingest_with(newest_first(5, step_s=15), settings=Settings(detect_lateness_s=60))
    assert report.went_back == 0
    assert not [line for line in summary_lines(report) if line.startswith("warning:")]
    report, _ = ingest_with(data, sort=True)
    assert report.went_back == 0


# --- pacing ---
def test_schedule_with_speedup_replays_spacing_and_never_waits_backwards() -> None:
    events = [10_000, 11_000, 13_000, 12_000, 15_000, 1_000]
    assert schedule(events, speedup=2) == [0.0, 0.5, 1.5, 1.5, 2.5, 2.5]
    assert schedule(events, speedup=1000) == [0.0, 0.001, 0.003, 0.003, 0.005, 0.005]


def test_schedule_with_rate_is_steady() -> None:
    assert schedule([5, 1, 9, 2], rate=4) == [0.0, 0.25, 0.5, 0.75]
    assert schedule([5, 1, 9], rate=0.5) == [0.0, 2.0, 4.0]


def test_schedule_without_pacing_sends_everything_at_once() -> None:
    assert schedule([5, 1, 9]) == [0.0, 0.0, 0.0]


def test_schedule_refuses_rate_and_speedup_together() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        schedule([1], rate=1, speedup=1)


def test_rate_paces_the_real_loop() -> None:
    started = time.monotonic()
    _, sink = ingest_with(jsonl(*(mention(i) for i in range(6))), rate=50.0)
    assert len(sink.sent) == 6
    assert time.monotonic() - started >= 5 / 50


# --- summary ---
def test_summary_groups_reasons_with_the_first_line_numbers() -> None:
    group = ReasonGroup()
    for line in range(2, 10):
        group.add(line)
    report = IngestReport(source="a.csv", topic="mentions", read=10, sent=2, duration_s=0.5)
    report.rejected = {"missing_field:text": group}
    lines = summary_lines(report)
    text = "\n".join(lines)
    assert "read           10 records from a.csv" in text
    assert "sent            2 to topic mentions" in text
    assert "rejected        8 locally (not sent)" in text
    assert "missing_field:text      8  lines 2, 3, 4, 5, 6 and 3 more" in text
    assert "4 records/s" in text
    assert lines[-1].startswith("exit 1: 8 records rejected locally and not sent")
    assert not summary_lines(report, allow_rejects=True)[-1].startswith("exit 1")


# --- options ---
def test_format_detection() -> None:
    assert detect_format(Path("a.JSONL"), "auto") == "jsonl"
    assert detect_format(Path("a.ndjson"), "auto") == "jsonl"
    assert detect_format(Path("a.json"), "auto") == "jsonl"
    assert detect_format(Path("a.csv"), "auto") == "csv"
    assert detect_format(None, "auto") == "jsonl"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(OptionError, match="--format jsonl or --format csv"):
        detect_format(Path("a.txt"), "auto")


@pytest.fixture
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker address nobody listens on: option errors must come before any connection."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        (["--map", "id"], "'--map'", "expected FIELD=COLUMN"),
        (["--map", "id="], "'--map'", "expected FIELD=COLUMN"),
        (["--map", "tweet=tweet_id"], "'--map'", "'tweet' is not a mention field"),
        (["--map", "author.name=user"], "'--map'", "'author.name' is not a mention field"),
        (["--map", "id=a", "--map", "id=b"], "'--map'", "mapped twice"),
        (["--set", "plattform=x"], "'--set'", "not a mention field"),
        (["--map", "platform=p", "--set", "platform=x"], "'--set'", "both --map and --set"),
        (["--time-format", "%H:%M"], "'--time-format'", "has no year"),
        (["--time-format", "%Y-%Q"], "'--time-format'", "not a usable strptime format"),
        (["--time-format", "2015"], "'--time-format'", "expected strptime directives"),
        (["--timezone", "Mars/Olympus"], "'--timezone'", "not an IANA time zone"),
        (["--map", "id=tweet_idx"], "'--map'", "the CSV has no column 'tweet_idx'"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_option(
    no_kafka: None, tmp_path: Path, args: list[str], option: str, says: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("tweet_id,text\n1,hei\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["ingest", str(source), *args])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}" in result.output
    assert says in result.output


def test_rejects_file_must_not_be_the_input(no_kafka: None, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(mention(1)))
    result = CliRunner().invoke(main, ["ingest", str(source), "--rejects", str(source)])
    assert result.exit_code == 2
    assert "Invalid value for '--rejects': is the input file" in result.output
    assert source.read_bytes() == jsonl(mention(1))


def test_rate_and_speedup_together_is_a_usage_error(no_kafka: None, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["ingest", str(source), "--rate", "5", "--speedup", "2"])
    assert result.exit_code == 2
    assert "--rate and --speedup cannot be used together" in result.output


def test_unknown_extension_is_a_usage_error(no_kafka: None, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["ingest", str(source)])
    assert result.exit_code == 2
    assert "cannot tell the format of 'in.txt'" in result.output


def test_empty_topic_is_a_usage_error_not_the_default_topic(no_kafka: None, tmp_path: Path) -> None:
    """`--topic "$TOPIC"` with the variable unset went to the live mentions topic."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(mention(1)))
    result = CliRunner().invoke(main, ["ingest", str(source), "--topic", ""])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--topic': is empty; leave --topic out" in result.output


def test_empty_file_argument_is_a_usage_error_naming_it(no_kafka: None) -> None:
    """`ingest ""` was refused as " is a directory" (the empty path is the current directory)."""
    result = CliRunner().invoke(main, ["ingest", ""])
    assert result.exit_code == 2, result.output
    assert "Invalid value for FILE: is empty; give a file, or - for standard input" in (
        result.output
    )


def test_missing_file_is_one_clear_line(no_kafka: None, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ingest", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {tmp_path / 'nope.jsonl'}: no such file"


# --- the real Kafka ---
@pytest.fixture
def topic(kafka: LocalKafka) -> Iterator[str]:
    """A fresh 3-partition topic (the broker does not create topics on first use)."""
    name = f"ingest-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(name=name, num_partitions=3, replication_factor=1)])
    admin.close()
    yield name


def consume(kafka: LocalKafka, topic: str, expected: int) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    messages = []
    for message in consumer:
        messages.append(message)
        if len(messages) >= expected:
            break
    consumer.close()
    return messages


def run_cli(
    kafka: LocalKafka,
    *args: str,
    brands: Path | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``stormvarsel ingest ARGS`` in a subprocess against ``kafka``."""
    env = {**os.environ, "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    if brands is not None:
        env["STORMVARSEL_BRANDS_FILE"] = str(brands)
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "ingest", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.mark.integration
def test_ingest_jsonl_into_kafka(kafka: LocalKafka, topic: str, tmp_path: Path) -> None:
    records = [mention(i, created_at=1_764_000_000 + i * 60) for i in range(6)]
    records.append(mention(1, text="the same post again"))  # a duplicate id
    source = tmp_path / "mentions.jsonl"
    source.write_bytes(jsonl(*records, b'{"id": "broken"'))

    result = run_cli(kafka, str(source), "--topic", topic, "--allow-rejects")
    assert result.returncode == 0, result.stderr
    assert "read            8 records" in result.stdout
    assert "sent            7 to topic" in result.stdout
    assert "rejected        1 locally" in result.stdout
    assert "invalid_json      1  line 8" in result.stdout

    messages = consume(kafka, topic, 7)
    assert len(messages) == 7
    by_key: dict[bytes, list] = {}
    for message in messages:
        value = json.loads(message.value)
        assert message.key == value["id"].encode()
        if isinstance(value["created_at"], int):
            expected_ms = value["created_at"] * 1000
        else:
            expected_ms = int(datetime.fromisoformat(value["created_at"]).timestamp() * 1000)
        assert message.timestamp == expected_ms
        by_key.setdefault(message.key, []).append(message)
    assert {m.partition for m in by_key[b"m1"]} == {by_key[b"m1"][0].partition}
    assert len(by_key[b"m1"]) == 2


@pytest.mark.integration
def test_ingest_local_times_around_the_changes_of_offset(
    kafka: LocalKafka, topic: str, tmp_path: Path
) -> None:
    """An Oslo export in time order through a leap second, the night the clocks go forward and
    the night they go back: the repeated hour is sent twice, an hour apart in UTC (both were
    sent at 00:xxZ, leaving 01:00Z empty), the skipped 02:30 is refused with its line (it was
    sent as 01:30Z), and so is second 61; the leap second :60 is sent (it was refused)."""
    source = tmp_path / "oslo.csv"
    source.write_text(
        "id,text,when\n"
        "l1,hei,2017-01-01 00:59:60\n"  # the leap second 2016-12-31T23:59:60Z
        "l2,hei,2017-01-01 00:59:61\n"
        "s1,hei,2026-03-29 01:59:00\n"
        "s2,hei,2026-03-29 02:30:00\n"  # skipped
        "s3,hei,2026-03-29 03:00:00\n"
        "a1,hei,2026-10-25 02:30:00\n"
        "a2,hei,2026-10-25 02:59:00\n"
        "a3,hei,2026-10-25 02:00:00\n"  # the clocks have gone back: 01:00Z
        "a4,hei,2026-10-25 02:30:00\n"
        "a5,hei,2026-10-25 03:00:00\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.jsonl"
    result = run_cli(
        kafka, str(source), "--topic", topic, "--map", "created_at=when",
        "--time-format", "%Y-%m-%d %H:%M:%S", "--timezone", "Europe/Oslo",
        "--rejects", str(rejects), "--allow-rejects",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sent            8 to topic" in result.stdout, result.stdout
    assert "bad_value:created_at      2  lines 3, 5" in result.stdout, result.stdout
    refused = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [entry["line"] for entry in refused] == [3, 5]
    assert "'2017-01-01 00:59:61' does not match --time-format" in refused[0]["message"]
    assert (
        "does not exist in Europe/Oslo: the clocks skip from 02:00 to 03:00"
        in (refused[1]["message"])
    )
    sent = {m.key.decode(): m for m in consume(kafka, topic, 8)}
    shown = {
        key: datetime.fromtimestamp(m.timestamp / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        for key, m in sent.items()
    }
    assert shown == {
        "a1": "2026-10-25T00:30:00.000",
        "a2": "2026-10-25T00:59:00.000",
        "a3": "2026-10-25T01:00:00.000",
        "a4": "2026-10-25T01:30:00.000",
        "a5": "2026-10-25T02:00:00.000",
        "s1": "2026-03-29T00:59:00.000",
        "s3": "2026-03-29T01:00:00.000",
        "l1": "2016-12-31T23:59:59.999",
    }
    assert json.loads(sent["a3"].value)["created_at"] == "2026-10-25T01:00:00Z"


@pytest.mark.integration
def test_missing_topic_is_a_clear_error(kafka: LocalKafka, tmp_path: Path) -> None:
    source = tmp_path / "m.jsonl"
    source.write_bytes(jsonl(mention(1)))
    result = run_cli(kafka, str(source), "--topic", "no-such-topic")
    assert result.returncode == 1
    assert "topic 'no-such-topic' does not exist" in result.stderr
    assert "stormvarsel topics create" in result.stderr


@pytest.mark.integration
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full disk)")
def test_rejects_file_on_a_full_disk_is_one_error_line_and_exit_1(
    kafka: LocalKafka, topic: str, tmp_path: Path
) -> None:
    """A write error on --rejects was a traceback, and the lost rejects went unmentioned."""
    source = tmp_path / "m.jsonl"
    source.write_bytes(jsonl(mention(1), {"id": "m2", "created_at": 1_764_000_000}))
    result = run_cli(
        kafka, str(source), "--topic", topic, "--rejects", "/dev/full", "--allow-rejects"
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sent            1 to topic" in result.stdout
    assert (
        "error: --rejects /dev/full: cannot write (No space left on device); "
        "1 refused record not kept there" in result.stdout
    ), result.stdout
    assert result.stdout.splitlines()[-1] == "exit 1: the rejects file is incomplete"


class _Screen(io.StringIO):
    """A terminal for rich to draw on, read from the test's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def seen(self) -> str:
        with self.lock:
            return self.getvalue()


@pytest.mark.integration
def test_sort_shows_progress_while_it_reads_the_input(kafka: LocalKafka, topic: str) -> None:
    """--sort reads everything before it sends; the bar stood at 0 all that time (15 s for
    300,000 records), as if ingest hung."""
    from rich.console import Console

    screen = _Screen()
    console = Console(file=screen, force_terminal=True, width=120)
    read_end, write_end = os.pipe()
    settings = Settings(kafka_bootstrap_servers=kafka.bootstrap)
    options = IngestOptions(
        source=None, format="jsonl", transform=Transform(), topic=topic, sort=True
    )
    done: list[IngestReport] = []
    with os.fdopen(read_end, "rb") as stdin, os.fdopen(write_end, "wb") as writer:
        worker = threading.Thread(
            target=lambda: done.append(run_ingest(settings, options, stdin=stdin, console=console))
        )
        worker.start()
        try:
            writer.write(jsonl(*(mention(i % 60, id=f"p{i}") for i in range(2500))))
            writer.flush()
            deadline = time.monotonic() + 30
            while "2,000 records" not in screen.seen():  # the input is still open: reading
                assert worker.is_alive() and time.monotonic() < deadline, screen.seen()
                time.sleep(0.1)
            assert re.search(r"sort .*2,000 records", screen.seen()), screen.seen()
            writer.write(jsonl(*(mention(i % 60, id=f"q{i}") for i in range(500))))
        finally:
            writer.close()
            worker.join(timeout=60)
    [report] = done
    assert report.sent == 3000 and report.exit_code() == 0


@pytest.mark.integration
def test_unreachable_broker_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    source = tmp_path / "m.jsonl"
    source.write_bytes(jsonl(mention(1)))
    port = free_port()
    env = {**os.environ, "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "ingest", str(source), "--wait-for-kafka", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: no Kafka broker answered at 127.0.0.1:{port} within 2 s")
    assert "stormvarsel kafka start" in line
    assert "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS" in line


def topic_size(kafka: LocalKafka, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def wait_for_records(
    kafka: LocalKafka, topic: str, at_least: int, process: subprocess.Popen[str]
) -> None:
    """Until the topic holds some records: a Ctrl-C before the first send proves nothing."""
    deadline = time.monotonic() + 30
    while topic_size(kafka, topic) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "ingest sent nothing within 30 s"
        time.sleep(0.2)


@pytest.mark.integration
def test_ctrl_c_flushes_and_reports(kafka: LocalKafka, topic: str, tmp_path: Path) -> None:
    source = tmp_path / "m.jsonl"
    # 100 s of mentions at 20/s: the Ctrl-C comes within 30 s, however slow the machine.
    total = 2000
    source.write_bytes(jsonl(*(mention(i % 60, id=f"s{i}") for i in range(total))))
    env = {**os.environ, "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "ingest", str(source), "--topic", topic,
         "--rate", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        # A suite started in the background by a shell without job control inherits SIGINT
        # ignored, and Python then keeps ignoring it: give ingest the default, as a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    wait_for_records(kafka, topic, at_least=5, process=process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stdout.startswith("interrupted")
    [sent_line] = [line for line in stdout.splitlines() if line.startswith("sent ")]
    sent = int(sent_line.split()[1])
    assert 5 <= sent < total
    assert topic_size(kafka, topic) == sent  # everything acknowledged is there, nothing more


# --- the airline tweets (shared data) ---
def needs_airline_data() -> None:
    if not AIRLINES_CSV.exists():
        pytest.skip(f"shared data not present: {AIRLINES_CSV}")


def airline_rows(limit: int | None = None) -> list[dict[str, str]]:
    with AIRLINES_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:limit] if limit else rows


def pacific_ms(text: str) -> int:
    naive = datetime.strptime(text, "%m/%d/%Y %H:%M")
    return int(naive.replace(tzinfo=ZoneInfo("America/Los_Angeles")).timestamp() * 1000)


def test_airline_times_are_us_pacific() -> None:
    """Tweet ids are Twitter snowflakes holding the real post time; the CSV is that in UTC-8."""
    needs_airline_data()
    for row in airline_rows(500):
        snowflake_ms = (int(row["tweet_id"]) >> 22) + 1_288_834_974_657
        assert 0 <= snowflake_ms - pacific_ms(row["tweet_created"]) < 60_000


@pytest.mark.integration
def test_ingest_500_airline_tweets(kafka: LocalKafka, topic: str) -> None:
    needs_airline_data()
    result = run_cli(kafka, str(AIRLINES_CSV), *AIRLINE_OPTIONS, "--limit", "500", "--topic", topic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sent          500 to topic" in result.stdout
    # Newest first per airline, sent without --sort: said on stdout and in the log on stderr.
    assert "warning: the input goes back in time: 499 records (the first on line 3)" in (
        result.stdout
    )
    assert "ingest.out_of_order" in result.stderr

    expected = {row["tweet_id"].encode(): row for row in airline_rows(500)}
    messages = consume(kafka, topic, 500)
    assert len(messages) == 500
    assert {m.key for m in messages} == set(expected)
    for message in messages:
        row = expected[message.key]
        value = json.loads(message.value)
        assert message.timestamp == pacific_ms(row["tweet_created"])
        assert value["id"] == row["tweet_id"] and value["platform"] == "x"
        assert value["brand"] == row["airline"]  # no brands file: passed through
        assert value["text"] == row["text"]
        assert "tweet_id" not in value and "airline" not in value
        assert value.get("airline_sentiment") == (row["airline_sentiment"] or None)


@pytest.mark.integration
def test_airline_brands_resolve_to_ids(kafka: LocalKafka, topic: str, tmp_path: Path) -> None:
    needs_airline_data()
    rows = airline_rows()
    sample = [next(r for r in rows if r["airline"] == name) for name in AIRLINE_IDS]
    source = tmp_path / "six.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(sample)

    result = run_cli(kafka, str(source), *AIRLINE_OPTIONS, "--topic", topic, brands=AIRLINES_BRANDS)
    assert result.returncode == 0, result.stdout + result.stderr
    messages = consume(kafka, topic, len(sample))
    brands = {m.key.decode(): json.loads(m.value)["brand"] for m in messages}
    assert brands == {row["tweet_id"]: AIRLINE_IDS[row["airline"]] for row in sample}
