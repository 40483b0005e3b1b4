"""JSON input in UTF-16: Windows PowerShell 5 writes files so (``ConvertTo-Json | Out-File``, and
``>``), with a byte-order mark. CSV with such a mark was read; JSON was refused line by line as
``not_utf8`` and ``invalid_json`` (an array as much as JSON Lines), with no word of the
encoding."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from streams.ingest import IngestError, count_records
from tests.test_ingest import ingest_with

T0, T1 = "2026-11-24T10:00:00Z", "2026-11-24T10:01:00Z"
MENTIONS = [
    {"id": "p1", "text": "Strømbrudd i Tromsø 😡", "created_at": T0},
    {"id": "p2", "text": "Nordlys Energi svarer ikke", "created_at": T1},
]


def test_a_utf16_json_array_as_powershell_writes_it_is_read() -> None:
    text = json.dumps(MENTIONS, indent=4, ensure_ascii=False).replace("\n", "\r\n") + "\r\n"
    report, sink = ingest_with(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert not report.rejected
    assert [json.loads(r.value) for r in sink.sent] == MENTIONS
    assert [r.line for r in sink.sent] == [2, 7]


@pytest.mark.parametrize("codec", ["utf-16-be", "utf-32-le"])
def test_utf16_and_utf32_json_lines_are_read(codec: str) -> None:
    bom = {"utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE}[codec]
    text = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in MENTIONS)
    report, sink = ingest_with(bom + text.encode(codec))
    assert not report.rejected
    assert [json.loads(r.value)["text"] for r in sink.sent] == [m["text"] for m in MENTIONS]


def test_json_that_is_not_valid_in_its_byte_order_mark_names_the_line() -> None:
    text = json.dumps(MENTIONS[0]) + "\n"
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le")
    with pytest.raises(IngestError, match=r"line 2: the file starts with a UTF-16 byte-order mark"):
        ingest_with(data)


def test_the_progress_total_of_a_utf16_file_is_unknown_not_its_line_count(tmp_path: Path) -> None:
    source = tmp_path / "export.json"
    text = json.dumps(MENTIONS, indent=2)
    source.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert count_records(source, "jsonl") is None
