"""Opening an input and reading its records in the format chosen."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from streams.ingest.csv_input import WIDE_BOMS, as_utf8, csv_rows
from streams.ingest.errors import IngestError
from streams.ingest.json_input import json_rows, opens_an_object
from streams.ingest.options import Format, Transform
from streams.ingest.rows import BOM, Row


def read_rows(stream: IO[bytes], fmt: Format, transform: Transform) -> Iterator[Row]:
    # A UTF-16/32 byte-order mark: transcoded, as CSV is (PowerShell 5 writes UTF-16 files).
    return csv_rows(stream, transform) if fmt == "csv" else json_rows(as_utf8(stream))


def count_records(path: Path, fmt: Format, transform: Transform | None = None) -> int | None:
    """How many records a file holds, for the progress bar's total (None when it cannot tell).
    A CSV is read with the run's ``transform``: its header is checked against the mapping."""
    try:
        with path.open("rb") as handle:
            if fmt == "jsonl":
                if handle.read(4).startswith(tuple(bom for bom, _codec in WIDE_BOMS)):
                    return None  # not counted in its own encoding
                handle.seek(0)
                count = 0
                for line in handle:
                    if not line.removeprefix(BOM).strip():
                        continue
                    first = line.removeprefix(BOM).lstrip()
                    if count == 0 and (first.startswith(b"[") or opens_an_object(first)):
                        return None  # an array, or objects over lines: not counted before read
                    count += 1
                return count
            return sum(1 for _row in csv_rows(handle, transform or Transform()))
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
