"""CSV as Nordic spreadsheets export it: Excel writes ``;`` between cells where the decimal mark
is a comma (Norway, Sweden, Denmark). Such a file was read as one column named
``id;text;created_at``: every row refused as ``missing_field:id`` (or ``bad_csv_row`` when its
text held a comma), with no word of the delimiter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.ingest import IngestError, Transform, count_records
from streams.ingest.options import build_transform
from tests.test_ingest import ingest_with

T0, T1, T2 = "2026-11-24T10:00:00Z", "2026-11-24T10:01:00Z", "2026-11-24T10:02:00Z"


def test_a_semicolon_separated_export_is_read_by_its_header() -> None:
    data = (
        "\ufeffid;text;created_at;likes\r\n"
        f"n1;Strømmen er borte, igjen;{T0};3\r\n"
        f'n2;"Kundeservice svarer ikke;\r\nringt i en time";{T1};\r\n'
        f"n3;Hei;{T2};x;y\r\n"
    ).encode()
    transform = build_transform(["engagement.likes=likes"], [], None, None)
    report, sink = ingest_with(data, "csv", transform=transform)
    sent = [json.loads(record.value) for record in sink.sent]
    assert [(m["id"], m["text"]) for m in sent] == [
        ("n1", "Strømmen er borte, igjen"),
        ("n2", "Kundeservice svarer ikke;\r\nringt i en time"),
    ]
    assert sent[0]["engagement"] == {"likes": 3}
    assert [r.line for r in sink.sent] == [2, 3]
    assert report.rejected["bad_csv_row"].lines == [5]  # 5 cells; the header has 4


def test_a_tab_separated_export_is_read_by_its_header() -> None:
    data = f"id\ttext\tcreated_at\nt1\tHei, Telenor\t{T0}\n".encode()
    report, sink = ingest_with(data, "csv")
    assert not report.rejected
    assert json.loads(sink.sent[0].value)["text"] == "Hei, Telenor"


def test_a_comma_header_stays_comma_separated_though_its_cells_hold_semicolons() -> None:
    data = f'id,"text;full",created_at\nc1,"a; b; c",{T0}\nc2,x;y,{T1}\n'.encode()
    report, sink = ingest_with(data, "csv", transform=Transform(mapping={"text": "text;full"}))
    assert not report.rejected
    assert [json.loads(r.value)["text"] for r in sink.sent] == ["a; b; c", "x;y"]


def test_a_semicolon_export_with_a_stray_quote_is_refused_not_sent_as_one_mention() -> None:
    data = f'id;text;created_at\nc1;"oops;{T0}\nc2;screen 6";{T1}\nc3;hei;{T2}\n'.encode()
    report, sink = ingest_with(data, "csv")
    assert [r.key for r in sink.sent] == [b"c3"]
    assert report.rejected["bad_csv_row"].lines == [2]


def test_required_columns_named_but_for_case_or_spaces_are_one_error_naming_them() -> None:
    """A header ``ID,Text,Created At`` had every row refused as ``missing_field:id``, with no
    word of the columns it has."""
    data = f"ID,Text,Created At,Likes\nc1,Hei,{T0},3\nc2,Hallo,{T1},4\n".encode()
    with pytest.raises(IngestError) as caught:
        ingest_with(data, "csv")
    message = str(caught.value)
    assert "the CSV has no column 'id' or 'text' or 'created_at'" in message
    assert "--map id=ID --map text=Text --map 'created_at=Created At'" in message
    assert message.startswith("line 1:") or ": line 1:" in message

    transform = build_transform(["id=ID", "text=Text", "created_at=Created At"], [], None, None)
    report, sink = ingest_with(data, "csv", transform=transform)
    assert not report.rejected
    assert [r.key for r in sink.sent] == [b"c1", b"c2"]


def test_a_column_like_a_required_one_beside_it_or_a_set_value_is_no_error() -> None:
    data = f"id,ID,text,created_at\nc1,X1,Hei,{T0}\n".encode()
    report, sink = ingest_with(data, "csv")
    assert not report.rejected and json.loads(sink.sent[0].value)["ID"] == "X1"
    data = b"id,Text\nc1,Hei\n"
    transform = build_transform(["text=Text"], [f"created_at={T0}"], None, None)
    report, sink = ingest_with(data, "csv", transform=transform)
    assert not report.rejected and len(sink.sent) == 1


def test_the_progress_total_counts_a_mapped_header_like_a_required_column(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text(f"ID,text,created_at\nc1,Hei,{T0}\nc2,Hallo,{T1}\n")
    assert count_records(source, "csv", build_transform(["id=ID"], [], None, None)) == 2
