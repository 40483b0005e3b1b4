"""Opening an input and reading its records in the format chosen."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from streams.ingest.csv_input import WIDE_BOMS, as_utf8, csv_rows, stop_on_not_utf8
from streams.ingest.errors import IngestError
from streams.ingest.json_input import json_rows, opens_an_object
from streams.ingest.options import UTF8, Format, Transform
from streams.ingest.rows import BOM, Row


def read_rows(
    stream: IO[bytes], fmt: Format, transform: Transform, encoding: str = UTF8
) -> Iterator[Row]:
    # A UTF-16/32 byte-order mark: transcoded, as CSV is (PowerShell 5 writes UTF-16 files).
    if fmt == "csv":
        return csv_rows(stream, transform, encoding)
    return json_rows(as_utf8(stream, encoding))


def check_json(stream: IO[bytes], encoding: str = UTF8, *, allow_not_utf8: bool = True) -> None:
    """Read a JSON input that can be rewound through once before anything is sent: a line that
    is not UTF-8 (without a byte-order mark or another ``encoding``) stops the run, unless
    ``allow_not_utf8`` (``--allow-rejects``: it is then refused as ``not_utf8``), and so does a
    byte that is not valid in another ``encoding``. Standard input from a pipe is not read
    twice: its lines are checked as they are sent."""
    if not stream.seekable() or (encoding == UTF8 and allow_not_utf8):
        return
    start = stream.tell()
    whole: bool | None = None  # read whole (an array, objects over lines): not refused alone
    for number, data in enumerate(as_utf8(stream, encoding), start=1):
        body = data.rstrip(b"\r\n").removeprefix(BOM if number == 1 else b"")
        if whole is None and body.strip():
            first = body.lstrip()
            whole = first.startswith(b"[") or opens_an_object(first)
        if allow_not_utf8:
            continue
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise stop_on_not_utf8(number, body, rejectable=not whole) from None
    stream.seek(start)


def count_records(
    path: Path, fmt: Format, transform: Transform | None = None, encoding: str = UTF8
) -> int | None:
    """How many records a file holds, for the progress bar's total (None when it cannot tell).
    A CSV is read with the run's ``transform``: its header is checked against the mapping."""
    try:
        with path.open("rb") as raw:
            if fmt == "jsonl":
                if raw.read(4).startswith(tuple(bom for bom, _codec in WIDE_BOMS)):
                    return None  # not counted in its own encoding
                raw.seek(0)
                handle = raw if encoding == UTF8 else as_utf8(raw, encoding)
                count = 0
                for line in handle:
                    if not line.removeprefix(BOM).strip():
                        continue
                    first = line.removeprefix(BOM).lstrip()
                    if count == 0 and (first.startswith(b"[") or opens_an_object(first)):
                        return None  # an array, or objects over lines: not counted before read
                    count += 1
                return count
            return sum(1 for _row in csv_rows(raw, transform or Transform(), encoding))
    except (OSError, IngestError):
        return None


@contextlib.contextmanager
def open_input(source: Path | None, stdin: IO[bytes]) -> Iterator[IO[bytes]]:
    if source is None:
        yield stdin
        return
    try:
        handle = source.open("rb")
    except FileNotFoundError:
        raise IngestError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise IngestError(f"{source}: is a directory, expected a file") from None
    except OSError as exc:
        raise IngestError(f"{source}: cannot read the file ({exc.strerror})") from None
    with handle:
        yield handle
