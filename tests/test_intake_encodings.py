"""Input that is not UTF-8: Excel in Norway, Sweden and Denmark saves CSV in Windows-1252. Its
rows with æ, ø, å, ä, ö were refused as ``not_utf8`` while the other rows were sent: half a file
in Kafka, told only in the summary. Now such a file stops the run before anything is sent, with
the line, the bytes and ``--encoding cp1252``; ``--encoding`` reads it; ``--allow-rejects`` keeps
the old per-row refusal."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.ingest import (
    Connection,
    IngestError,
    IngestOptions,
    Transform,
    count_records,
    run_ingest,
)
from streams.ingest.report import IngestReport
from streams.kafka_local import LocalKafka, free_port
from streams.settings import Settings
from tests.test_ingest import FakeSink, ingest_with

T0 = "2026-11-24T10:00:00Z"
NORDIC = ["Strømbrudd i Tromsø", "Blåbærsyltetøy på Ærø", "Kärlek och öl i Malmö"]
CSV_TEXT = "id;text;created_at\r\n" + "".join(
    f"p{i};{text};{T0}\r\n" for i, text in enumerate(["plain ascii", *NORDIC], start=1)
)
CP1252_CSV = CSV_TEXT.encode("cp1252")


def jsonl_text() -> str:
    return "".join(
        json.dumps({"id": f"j{i}", "text": t, "created_at": T0}, ensure_ascii=False) + "\n"
        for i, t in enumerate(["plain ascii", *NORDIC], start=1)
    )


@pytest.fixture
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker address nobody listens on: the input's errors must come before any connection."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")


class _Pipe(io.RawIOBase):
    """Standard input from a pipe: read once, cannot be rewound."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def ingest_from_pipe(data: bytes, **options: object) -> tuple[IngestReport, FakeSink]:
    fake = FakeSink()
    stdin: IO[bytes] = io.BufferedReader(_Pipe(data))
    report = run_ingest(
        Settings(),
        IngestOptions(source=None, format="jsonl", transform=Transform(), **options),  # type: ignore[arg-type]
        stdin=stdin,
        connect=lambda _settings, _topic, _wait: Connection(fake, None),
    )
    return report, fake


# --- the default, UTF-8: a file that is not stops before anything is sent ---
def test_a_cp1252_csv_stops_before_anything_is_sent_naming_the_line_and_the_fix() -> None:
    sink = FakeSink()
    with pytest.raises(IngestError) as raised:
        ingest_with(CP1252_CSV, "csv", sink=sink)
    message = str(raised.value)
    assert message.startswith("standard input: line 3: byte 6 is not UTF-8")
    assert "(the bytes b'p2;Str\\xf8mbrudd i Tro')" in message  # 'ø' in Windows-1252
    assert "--encoding cp1252" in message and "latin-1" in message
    assert "nothing was sent" in message
    assert sink.sent == [] and not sink.flushed


def test_the_cli_prints_one_error_line_and_exits_1_before_kafka(
    no_kafka: None, tmp_path: Path
) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes(CP1252_CSV)
    result = CliRunner().invoke(main, ["ingest", str(source)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {source}: line 3: byte 6 is not UTF-8 (the bytes ")
    assert "--encoding cp1252" in lines[0]


def test_a_cp1252_json_lines_file_stops_too() -> None:
    sink = FakeSink()
    with pytest.raises(IngestError, match=r"line 2: byte 25 is not UTF-8.*--encoding cp1252"):
        ingest_with(jsonl_text().encode("cp1252"), sink=sink)
    assert sink.sent == []


def test_allow_rejects_keeps_the_per_row_refusal() -> None:
    report, sink = ingest_with(CP1252_CSV, "csv", allow_rejects=True)
    assert report.rejected["not_utf8"].lines == [3, 4, 5]
    assert [r.key for r in sink.sent] == [b"p1"]
    assert report.exit_code(allow_rejects=True) == 0


def test_standard_input_from_a_pipe_is_checked_row_by_row() -> None:
    """JSON Lines from a pipe are sent as they are read (no pass before): as before, a line
    that is not UTF-8 is refused alone."""
    report, sink = ingest_from_pipe(jsonl_text().encode("cp1252"))
    assert report.rejected["not_utf8"].lines == [2, 3, 4]
    assert [r.key for r in sink.sent] == [b"j1"]


# --- --encoding ---
@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_encoding_reads_a_cp1252_csv_whole(encoding: str) -> None:
    report, sink = ingest_with(CP1252_CSV, "csv", encoding=encoding)
    assert not report.rejected
    assert [json.loads(r.value)["text"] for r in sink.sent] == ["plain ascii", *NORDIC]


def test_encoding_reads_json_lines_from_a_pipe_too() -> None:
    report, sink = ingest_from_pipe(jsonl_text().encode("cp1252"), encoding="cp1252")
    assert not report.rejected
    assert [json.loads(r.value)["text"] for r in sink.sent] == ["plain ascii", *NORDIC]


@pytest.mark.integration
def test_the_cli_sends_a_cp1252_file_with_encoding(
    kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"enc-{free_port()}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap)
    source = tmp_path / "export.csv"
    source.write_bytes(CP1252_CSV)
    result = CliRunner().invoke(
        main, ["ingest", str(source), "--topic", topic, "--encoding", "windows-1252", "-q"]
    )
    assert result.exit_code == 0, result.output
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    texts = [json.loads(record.value)["text"] for record in consumer]
    consumer.close()
    assert texts == ["plain ascii", *NORDIC]


def test_a_byte_order_mark_wins_over_encoding() -> None:
    data = b"\xef\xbb\xbf" + CSV_TEXT.encode("utf-8")
    report, sink = ingest_with(data, "csv", encoding="cp1252")
    assert not report.rejected
    assert [json.loads(r.value)["text"] for r in sink.sent] == ["plain ascii", *NORDIC]


def test_a_byte_the_encoding_lacks_stops_before_anything_is_sent() -> None:
    sink = FakeSink()
    data = CP1252_CSV + f"p9;bad \x81 byte;{T0}\r\n".encode("latin-1")  # 0x81: not in cp1252
    with pytest.raises(IngestError, match=r"line 6: the bytes b'\\x81' are not valid cp1252"):
        ingest_with(data, "csv", sink=sink, encoding="cp1252")
    assert sink.sent == []


def test_the_progress_total_is_counted_in_the_encoding(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes(CP1252_CSV)
    assert count_records(source, "csv", encoding="cp1252") == 4


@pytest.mark.parametrize(
    ("name", "says"),
    [("klingon", "not a text encoding Python knows"), ("base64", "not a text encoding")],
)
def test_an_unknown_encoding_is_a_usage_error(
    no_kafka: None, tmp_path: Path, name: str, says: str
) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes(CP1252_CSV)
    result = CliRunner().invoke(main, ["ingest", str(source), "--encoding", name])
    assert result.exit_code == 2, result.output
    assert "'--encoding'" in result.output and says in result.output
