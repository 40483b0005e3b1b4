"""``stormvarsel ingest``: send mentions from a JSON Lines (or JSON array) or CSV file to the
mentions topic.

Every record is mapped to the mention schema, checked with the worker's own validator
(:func:`streams.mention.validate_object`) and, when a brands file is configured, its brand resolved
the way the worker does it (:func:`streams.routing.route`). Records that would be refused are not
sent; they are reported with their line numbers and can be written to a rejects file, so nothing
is lost. What is sent is the mapped mention as compact JSON, keyed by the mention id (duplicates
land on one partition, where the worker de-duplicates them), with the mention's own event time as
the Kafka record timestamp.

The logic lives here, without click; ``streams.cli`` only parses options and prints the summary.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import csv
import functools
import io
import itertools
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError
from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from streams.brand_matching import BrandMatcher
from streams.errors import StormvarselError
from streams.kafka_clients import (
    KafkaUnreachable,
    client_config,
    connect_admin,
    kafka_logs_quiet,
)
from streams.log_setup import get_logger
from streams.mention import Limits, Mention, Rejection, validate_object
from streams.routing import route
from streams.settings import ENV_PREFIX, Settings
from streams.topics import MENTIONS

log = get_logger(__name__)

Format = Literal["jsonl", "csv"]
FORMATS_BY_SUFFIX: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
_BOM = b"\xef\xbb\xbf"
_SPOOL_BYTES = 64 * 1024 * 1024  # CSV on standard input: kept in memory up to this, then on disk
_EXAMPLE_LINES = 5  # line numbers shown per reason in the summary
_DELIVERY_TIMEOUT_MS = 30_000  # Kafka must acknowledge a record within this, or it has failed
_FLUSH_TIMEOUT_S = _DELIVERY_TIMEOUT_MS / 1000 + 5  # never cut a delivery short
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


class IngestError(StormvarselError):
    """The input cannot be read or the topic cannot be used; one line for the terminal."""


class InputError(IngestError):
    """The input cannot be read at a line; :func:`run_ingest` puts the file's name before it."""


class OptionError(ValueError):
    """A bad command-line option value; the CLI shows it as a usage error naming the option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


# --- the schema's fields, as mapping targets ---
def _schema_fields() -> dict[str, Any]:
    """Every mention field and sub-field (``author.handle``) with its type annotation."""
    fields: dict[str, Any] = {}
    for name, info in Mention.model_fields.items():
        fields[name] = info.annotation
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            for sub, sub_info in nested.model_fields.items():
                fields[f"{name}.{sub}"] = sub_info.annotation
    return fields


SCHEMA_FIELDS: dict[str, Any] = _schema_fields()
_INT_FIELDS = frozenset(name for name, kind in SCHEMA_FIELDS.items() if kind is int)
_BOOL_FIELDS = frozenset(name for name, kind in SCHEMA_FIELDS.items() if kind is bool)


def typed_text(field_name: str, text: str) -> Any:
    """A text value (a CSV cell, a ``--set`` value) as the type the schema expects, when it fits.

    Digit strings become ints for the count fields and true/false become booleans; anything else
    stays text, so the validator reports it with its usual reason instead of this code guessing.
    """
    stripped = text.strip()
    if field_name in _INT_FIELDS and stripped.isascii() and stripped.isdigit():
        return int(stripped)
    if field_name in _BOOL_FIELDS and stripped.lower() in _TRUE | _FALSE:
        return stripped.lower() in _TRUE
    return text


# --- options ---
@dataclass(frozen=True)
class Transform:
    """How one input record becomes a mention object."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # schema field -> column or key
    constants: Mapping[str, Any] = field(default_factory=dict)  # schema field -> value (--set)
    time_format: str | None = None
    timezone: ZoneInfo | None = None  # given explicitly; naive times get it (UTC with a format)


def _split_assignment(option: str, spec: str, right: str) -> tuple[str, str]:
    target, sep, value = spec.partition("=")
    target = target.strip()
    if not sep or not target or not value.strip():
        raise OptionError(option, f"expected FIELD={right}, got {spec!r}")
    if target not in SCHEMA_FIELDS:
        raise OptionError(
            option,
            f"{target!r} is not a mention field; expected one of {', '.join(SCHEMA_FIELDS)}",
        )
    return target, value


def parse_maps(specs: Sequence[str]) -> dict[str, str]:
    """``--map FIELD=COLUMN`` options as {field: column}."""
    mapping: dict[str, str] = {}
    for spec in specs:
        target, source = _split_assignment("--map", spec, "COLUMN")
        if target in mapping:
            raise OptionError("--map", f"{target!r} is mapped twice")
        mapping[target] = source.strip()
    return mapping


def parse_sets(specs: Sequence[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` options as {field: typed value}."""
    constants: dict[str, Any] = {}
    for spec in specs:
        target, value = _split_assignment("--set", spec, "VALUE")
        if target in constants:
            raise OptionError("--set", f"{target!r} is set twice")
        constants[target] = typed_text(target, value)
    return constants


def parse_time_format(fmt: str) -> str:
    """Check a ``--time-format`` once, so a typo fails at start-up rather than on every record."""
    if "%" not in fmt:
        raise OptionError(
            "--time-format", f"expected strptime directives (e.g. %m/%d/%Y %H:%M), got {fmt!r}"
        )
    if not any(code in fmt for code in ("%Y", "%y", "%G")):
        raise OptionError(
            "--time-format", f"{fmt!r} has no year (%Y or %y); every mention would be in 1900"
        )
    sample = datetime(2015, 2, 24, 11, 35, 52, tzinfo=UTC)
    try:
        datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise OptionError(
            "--time-format", f"{fmt!r} is not a usable strptime format ({exc})"
        ) from None
    return fmt


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise OptionError(
            "--timezone", f"{name!r} is not an IANA time zone (e.g. UTC, Europe/Oslo)"
        ) from None


def build_transform(
    maps: Sequence[str] = (),
    sets: Sequence[str] = (),
    time_format: str | None = None,
    timezone: str | None = None,
) -> Transform:
    mapping = parse_maps(maps)
    constants = parse_sets(sets)
    both = sorted(set(mapping) & set(constants))
    if both:
        raise OptionError("--set", f"{both[0]!r} is given by both --map and --set")
    return Transform(
        mapping=mapping,
        constants=constants,
        time_format=parse_time_format(time_format) if time_format is not None else None,
        timezone=parse_timezone(timezone) if timezone is not None else None,
    )


def detect_format(source: Path | None, given: str) -> Format:
    """The input format: as given, or from the file's extension (stdin: JSON Lines)."""
    if given == "jsonl":
        return "jsonl"
    if given == "csv":
        return "csv"
    if given != "auto":
        raise OptionError("--format", f"expected auto, jsonl or csv, got {given!r}")
    if source is None:
        return "jsonl"
    found = FORMATS_BY_SUFFIX.get(source.suffix.lower())
    if found is None:
        raise OptionError(
            "--format",
            f"cannot tell the format of {source.name!r} from its extension; "
            "pass --format jsonl or --format csv",
        )
    return found


@dataclass(frozen=True)
class IngestOptions:
    source: Path | None  # None: standard input
    format: Format
    transform: Transform
    topic: str | None = None  # None: the settings' mentions topic
    rate: float | None = None
    speedup: float | None = None
    sort: bool = False
    limit: int | None = None
    rejects: Path | None = None
    wait_for_kafka_s: float = 10.0

    def __post_init__(self) -> None:
        if self.rate is not None and self.speedup is not None:
            raise OptionError("--rate", "--rate and --speedup cannot be used together")
        if _same_file(self.rejects, self.source):
            raise OptionError("--rejects", "is the input file; it would be overwritten")

    @property
    def source_label(self) -> str:
        return "standard input" if self.source is None else str(self.source)


def _same_file(first: Path | None, second: Path | None) -> bool:
    return first is not None and second is not None and first.resolve() == second.resolve()


# --- reading ---
@dataclass(frozen=True)
class Row:
    """One input record before mapping: its fields, or why it could not even be read."""

    line: int
    raw: str
    fields: dict[str, Any] | None = None
    rejection: Rejection | None = None
    raw_bytes: bytes | None = None  # only when the bytes are not UTF-8
    from_text: bool = False  # CSV: every value is text


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_row(line: int, text: str) -> Row:
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at column {exc.colno}"
        return Row(line, text, rejection=Rejection("invalid_json", message))
    except RecursionError:
        return Row(line, text, rejection=Rejection("invalid_json", "the JSON is nested too deeply"))
    except ValueError as exc:
        return Row(line, text, rejection=Rejection("invalid_json", str(exc)))
    if not isinstance(value, dict):
        checked = validate_object(value)  # the worker's reason for a non-object
        assert isinstance(checked, Rejection)
        return Row(line, text, rejection=checked)
    return Row(line, text, fields=value)


def json_rows(stream: IO[bytes]) -> Iterator[Row]:
    """JSON Lines, or one JSON array of mentions when the input's first non-blank character is
    ``[`` (no JSON Lines record starts so: a line holding an array is refused anyway).

    A first line that starts an object and ends before it does (``{`` alone, as pretty-printed
    JSON starts) means objects over several lines: :func:`json_object_rows`.

    The first non-blank line is read at once, as the CSV header is. An array (or objects over
    several lines) is then read whole and checked before anything is sent (an error in its
    structure is an :class:`InputError`); JSON Lines are read line by line as they are sent.
    """
    head: list[bytes] = []
    for data in stream:
        head.append(data)
        if data.removeprefix(_BOM).strip():
            break
    first = b"".join(head).removeprefix(_BOM).lstrip()
    if first.startswith(b"["):
        return iter(json_array_rows(b"".join(head) + stream.read()))
    if _opens_an_object(first):
        return iter(json_object_rows(b"".join(head) + stream.read()))
    return jsonl_rows(itertools.chain(head, stream))


def _opens_an_object(line: bytes) -> bool:
    """Whether a first line starts a JSON object that goes on over the next lines: it starts with
    ``{`` and runs out before the object ends (``{``, ``{"id": "1",``). A line that is broken
    (``{not json``, a string never closed) is left to JSON Lines, which refuses it on its own."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith("{"):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.pos >= len(text)
    except (RecursionError, ValueError):
        return False
    return False


def _skip_space(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not JSON whitespace."""
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return f"line {line}, column {column}"


def _utf8_text(data: bytes, what: str) -> str:
    """A whole input read at once as text, without its byte-order mark."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 (byte {exc.start})") from None


def json_array_rows(data: bytes) -> list[Row]:
    """One row per element of a JSON array, numbered by the line the element starts on.

    Each element is checked as a JSON Lines record is (an element that is not an object, or
    holds NaN, is refused with the same reason); an array that is not well-formed, or anything
    after it, raises :class:`InputError` naming the line and column.
    """
    text = _utf8_text(data, "the JSON array")
    decoder = json.JSONDecoder()
    rows: list[Row] = []
    pos = _skip_space(text, 0)
    if not text.startswith("[", pos):
        raise InputError(f"the JSON array cannot be read at {_where(text, pos)}: expected '['")
    pos = _skip_space(text, pos + 1)
    line, counted = 1, 0
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            try:
                _value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"the JSON array cannot be read at {_where(text, exc.pos)}: {exc.msg}"
                ) from None
            except RecursionError:
                raise InputError(
                    f"the JSON array cannot be read: the element at line {line} is nested too "
                    "deeply"
                ) from None
            rows.append(_json_row(line, text[pos:end]))
            pos = _skip_space(text, end)
            if text.startswith(",", pos):
                pos = _skip_space(text, pos + 1)
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise InputError(
                f"the JSON array cannot be read at {_where(text, pos)}: expected ',' or ']'"
            )
    rest = _skip_space(text, pos)
    if rest < len(text):
        raise InputError(
            f"the JSON array cannot be read at {_where(text, rest)}: there is more after the "
            "array's closing ']' (one array of mentions, or JSON Lines, per file)"
        )
    return rows


def json_object_rows(data: bytes) -> list[Row]:
    """One row per JSON object of an input holding pretty-printed objects one after another
    (one object over several lines, or several as ``jq .`` prints them), numbered by the line
    each starts on. It is read whole and checked before anything is sent: text that does not
    read as JSON values raises :class:`InputError` naming the line and column."""
    text = _utf8_text(data, "the JSON")
    decoder = json.JSONDecoder()
    rows: list[Row] = []
    pos = _skip_space(text, 0)
    line, counted = 1, 0
    while pos < len(text):
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            _value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"the JSON object that starts on line {line} cannot be read at "
                f"{_where(text, exc.pos)}: {exc.msg} (a JSON object over several lines is read "
                "whole; JSON Lines need one object per line)"
            ) from None
        except RecursionError:
            raise InputError(
                f"the JSON object that starts on line {line} is nested too deeply"
            ) from None
        rows.append(_json_row(line, text[pos:end]))
        pos = _skip_space(text, end)
    return rows


def jsonl_rows(stream: Iterable[bytes]) -> Iterator[Row]:
    """One row per non-blank line; blank lines are not records and are skipped."""
    for number, data in enumerate(stream, start=1):
        body = data.rstrip(b"\r\n")
        if number == 1:
            body = body.removeprefix(_BOM)
        if not body.strip():
            continue
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            rejection = Rejection("not_utf8", f"the line is not UTF-8 (byte {exc.start})")
            lossy = body.decode("utf-8", errors="replace")
            yield Row(number, lossy, rejection=rejection, raw_bytes=body)
            continue
        yield _json_row(number, text)


_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _as_utf8(stream: IO[bytes]) -> IO[bytes]:
    """The input as UTF-8 bytes: as it is, or transcoded when a UTF-16/32 byte-order mark starts it
    (Excel's "Unicode text" exports). Such a file is read into memory whole; a byte sequence that
    is not valid in its encoding is an :class:`InputError` naming the line, never replaced."""
    head = stream.read(4)
    for bom, codec in _WIDE_BOMS:
        if head.startswith(bom):
            data = head + stream.read()
            try:
                return io.BytesIO(data.decode(codec).encode("utf-8"))
            except UnicodeDecodeError as exc:
                line = data[: exc.start].decode(codec).count("\n") + 1
                name = codec.upper()
                raise InputError(
                    f"line {line}: the file starts with a {name} byte-order mark, but byte "
                    f"{exc.start} is not valid {name} ({exc.reason})"
                ) from None
    return io.BufferedReader(_Prefixed(head, stream))


class _Prefixed(io.RawIOBase):
    """``head`` (already read) followed by the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size], self._head = self._head[:size], self._head[size:]
            return size
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def _physical_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The input's lines with their ends. ``\n`` (or ``\r\n``) ends a line; in a file whose first
    line ends in a lone ``\r`` (classic Mac OS, some Excel exports) ``\r`` does too: that file is
    read into memory whole."""
    first = stream.readline()
    cr = first.find(b"\r")
    if cr != -1 and first[cr + 1 : cr + 2] != b"\n":
        yield from (first + stream.read()).splitlines(keepends=True)
        return
    if first:
        yield first
    yield from iter(stream.readline, b"")


class _LineTap:
    """Feeds ``csv.reader`` one physical line at a time and remembers the lines of each row.

    ``csv.reader`` never reads ahead, so the lines taken since the previous row are exactly the
    current row's: that gives its physical line numbers (quoted cells may span lines) and raw text.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines = _physical_lines(stream)
        self._line = 0
        self._start = 1
        self._chunks: list[bytes] = []

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        data = next(self._lines)
        self._line += 1
        if self._line == 1:
            data = data.removeprefix(_BOM)
        if not self._chunks:
            self._start = self._line
        self._chunks.append(data)
        return data.decode("utf-8", errors="replace")

    def take(self) -> tuple[int, int, list[bytes]]:
        """The first and last line of the row just read, and its lines as read."""
        start, chunks = self._start, self._chunks
        self._chunks = []
        return start, start + max(len(chunks), 1) - 1, chunks


def _read_header(
    tap: _LineTap, reader: Iterator[list[str]], mapping: Mapping[str, str]
) -> list[str]:
    """The column names; an empty name marks a column without one (see :func:`_csv_body`)."""
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            raise InputError(
                "line 1: a quote opened in the CSV header is never closed (it runs to the end "
                "of the file)"
            ) from None
        raise InputError(f"line 1: the CSV header cannot be read: {exc}") from None
    _start, end, _chunks = tap.take()
    if end > 1:
        raise InputError(
            f"line 1: the CSV header runs on to line {end}: a quote in it is not closed on its line"
        )
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if name in seen:
            raise InputError(
                f"line 1: the CSV header names the column {name!r} twice (columns "
                f"{seen[name]} and {number})"
            )
        if name:
            seen[name] = number
    for target, source in mapping.items():
        if source not in seen:
            named = ", ".join(name for name in header if name)
            raise OptionError(
                "--map",
                f"{target}={source}: the CSV has no column {source!r} (its columns: {named})",
            )
    return header


def csv_rows(stream: IO[bytes], transform: Transform) -> Iterator[Row]:
    """Rows of a CSV file with a header line. The header is read (and checked) at once."""
    tap = _LineTap(_as_utf8(stream))
    reader = csv.reader(tap, strict=True)
    header = _read_header(tap, reader, transform.mapping)
    return _csv_body(tap, reader, header)


def _span(start: int, end: int) -> str:
    return f"line {start}" if start == end else f"lines {start}-{end}"


def _swallowed_row(chunks: Sequence[bytes], width: int) -> int | None:
    """The index of a line after the first of a multi-line row that reads as a whole row on its
    own (as many cells as the header): the sign of a quote that opened a cell by mistake and
    swallowed the rows after it, up to the next quote."""
    for index, chunk in enumerate(chunks[1:], start=1):
        text = chunk.rstrip(b"\r\n").decode("utf-8", errors="replace")
        cells = next(csv.reader([text]), [])
        if len(cells) == width:
            return index
    return None


def _csv_body(tap: _LineTap, reader: Iterator[list[str]], header: list[str]) -> Iterator[Row]:
    """Rows after the header. A quoted cell may span lines; when one cannot be closed (an
    unbalanced quote that would swallow every row after it), reading stops with an
    :class:`InputError` naming the line; a multi-line row that looks like swallowed rows is
    refused with its lines, never sent as one mention."""
    unnamed = [index for index, name in enumerate(header) if not name]
    while header:
        try:
            cells = next(reader)
            error: str | None = None
        except StopIteration:
            return
        except csv.Error as exc:
            cells, error = [], str(exc)
        line, end, chunks = tap.take()
        if error is not None and end > line:
            if error == "unexpected end of data":
                raise InputError(
                    f"line {line}: a quote opened on this line is never closed, so every line "
                    f"after it (to line {end}) would be one cell; close or remove the quote"
                )
            raise InputError(
                f"line {line}: a quoted cell opened on this line runs to line {end}, where the "
                f"CSV cannot be read ({error}): an unbalanced quote?"
            )
        raw_bytes = b"".join(chunks).rstrip(b"\r\n")
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            lossy = raw_bytes.decode("utf-8", errors="replace")
            rejection = Rejection("not_utf8", f"the row is not UTF-8 (byte {exc.start})")
            yield Row(line, lossy, rejection=rejection, raw_bytes=raw_bytes)
            continue
        swallowed = _swallowed_row(chunks, len(header)) if end > line else None
        if error is not None:
            yield Row(line, raw, rejection=Rejection("bad_csv_row", f"unreadable CSV: {error}"))
        elif not cells:
            continue  # a blank line
        elif swallowed is not None:
            message = (
                f"a quoted cell runs over {_span(line, end)}, and line {line + swallowed} reads "
                "as a whole row on its own: an unbalanced quote on line "
                f"{line}? (the lines are not sent as one mention)"
            )
            yield Row(line, raw, rejection=Rejection("bad_csv_row", message))
        elif len(cells) != len(header):
            message = f"the row has {len(cells)} cells; the header has {len(header)}"
            if end > line:
                message = (
                    f"the row ({_span(line, end)}) has {len(cells)} cells, the header {len(header)}"
                )
            yield Row(line, raw, rejection=Rejection("bad_csv_row", message))
        elif filled := [index + 1 for index in unnamed if cells[index].strip()]:
            message = (
                f"column {filled[0]} has no name in the header (line 1), but this row has a value "
                "in it; name the column"
            )
            yield Row(line, raw, rejection=Rejection("bad_csv_row", message))
        else:
            fields = {
                name: cell
                for name, cell in zip(header, cells, strict=True)
                if name and cell.strip()
            }
            yield Row(line, raw, fields=fields, from_text=True)


def check_csv(stream: IO[bytes], transform: Transform) -> IO[bytes]:
    """Read a CSV input through once before anything is sent, so that an unbalanced quote or a
    file that is not valid in its encoding stops the run before the first record, as a broken
    JSON array does. Returns the input to read again: the same file, rewound, or (standard input
    that cannot be rewound) a temporary copy of it."""
    copy: IO[bytes]
    if stream.seekable():
        copy, start = stream, stream.tell()
    else:
        copy, start = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES), 0  # noqa: SIM115
        shutil.copyfileobj(stream, copy)
        copy.seek(0)
    for _row in csv_rows(copy, transform):
        pass
    copy.seek(start)
    return copy


def read_rows(stream: IO[bytes], fmt: Format, transform: Transform) -> Iterator[Row]:
    return csv_rows(stream, transform) if fmt == "csv" else json_rows(stream)


def count_records(path: Path, fmt: Format) -> int | None:
    """How many records a file holds, for the progress bar's total (None when it cannot tell)."""
    try:
        with path.open("rb") as handle:
            if fmt == "jsonl":
                count = 0
                for line in handle:
                    if not line.removeprefix(_BOM).strip():
                        continue
                    first = line.removeprefix(_BOM).lstrip()
                    if count == 0 and (first.startswith(b"[") or _opens_an_object(first)):
                        return None  # an array, or objects over lines: not counted before read
                    count += 1
                return count
            return sum(1 for _row in csv_rows(handle, Transform()))
    except (OSError, IngestError):
        return None


# --- mapping and checking ---
def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set ``author.handle``-style paths; a non-object in the way is left for the validator."""
    *parents, last = path.split(".")
    node = obj
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            return
        node = child
    node[last] = value


def _convert_text(obj: dict[str, Any]) -> None:
    for name in _INT_FIELDS | _BOOL_FIELDS:
        *parents, last = name.split(".")
        node: Any = obj
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(last), str):
            node[last] = typed_text(name, node[last])


def _iso_utc(moment: datetime, zone: tzinfo) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _naive_iso(text: str) -> datetime | None:
    stripped = text.strip()
    if not stripped or stripped.lstrip("-").replace(".", "", 1).isdigit():
        return None  # epoch seconds or milliseconds
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is None else None


@functools.lru_cache(maxsize=4096)
def _formatted_time(text: str, fmt: str, zone: tzinfo) -> str:
    # strptime is slow and exports repeat the same minute for many rows: cache the result.
    return _iso_utc(datetime.strptime(text, fmt), zone)


def convert_time(obj: dict[str, Any], transform: Transform) -> Rejection | None:
    """Apply ``--time-format``/``--timezone`` to ``created_at`` in place."""
    value = obj.get("created_at")
    if value is None:
        return None
    if transform.time_format is not None:
        if not isinstance(value, str):
            return Rejection(
                "bad_type:created_at",
                f"created_at: expected text in --time-format {transform.time_format!r}",
            )
        try:
            obj["created_at"] = _formatted_time(
                value.strip(), transform.time_format, transform.timezone or UTC
            )
        except ValueError:
            shown = value if len(value) <= 40 else value[:37] + "..."
            return Rejection(
                "bad_value:created_at",
                f"created_at: {shown!r} does not match --time-format {transform.time_format!r}",
            )
    elif transform.timezone is not None and isinstance(value, str):
        naive = _naive_iso(value)
        if naive is not None:
            obj["created_at"] = _iso_utc(naive, transform.timezone)
    return None


def build_object(
    fields: Mapping[str, Any], transform: Transform, *, from_text: bool = False
) -> dict[str, Any] | Rejection:
    """The mention object for one record: mapped, constants set, texts typed, time converted.

    Fields used as a mapping source are renamed; every other field is kept as it is (the schema
    keeps unknown fields). CSV columns named like a sub-field (``author.handle``) are nested.
    """
    sources = set(transform.mapping.values())
    obj: dict[str, Any] = {}
    for key, value in fields.items():
        if key in sources:
            continue
        if from_text and "." in key and key in SCHEMA_FIELDS:
            _set_path(obj, key, value)
        else:
            obj[key] = value
    for target, source in transform.mapping.items():
        if source in fields:
            _set_path(obj, target, fields[source])
    for target, constant in transform.constants.items():
        _set_path(obj, target, constant)
    if from_text:
        _convert_text(obj)
    rejection = convert_time(obj, transform)
    return rejection if rejection is not None else obj


@dataclass(frozen=True)
class Ready:
    """A checked record, encoded as it is sent."""

    line: int
    raw: str
    key: bytes
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class Refused:
    """A record refused locally (not sent), or one Kafka did not acknowledge."""

    line: int
    raw: str
    rejection: Rejection
    raw_bytes: bytes | None = None


class Preparer:
    """Turns rows into records to send, refusing what the worker would refuse."""

    def __init__(
        self, transform: Transform, limits: Limits, matcher: BrandMatcher | None = None
    ) -> None:
        self._transform = transform
        self._limits = limits
        self._matcher = matcher

    def prepare(self, row: Row) -> Ready | Refused:
        if row.rejection is not None or row.fields is None:
            rejection = row.rejection or Rejection("empty", "the record has no value")
            return Refused(row.line, row.raw, rejection, row.raw_bytes)
        built = build_object(row.fields, self._transform, from_text=row.from_text)
        if isinstance(built, Rejection):
            return Refused(row.line, row.raw, built)
        checked = validate_object(built, limits=self._limits)
        if isinstance(checked, Rejection):
            return Refused(row.line, row.raw, checked)
        if self._matcher is not None and checked.brand is not None:
            routed = route(checked, self._matcher)
            if isinstance(routed, Rejection):
                return Refused(row.line, row.raw, routed)
            built["brand"] = routed.brands[0]
        encoded = self._encode(built)
        if isinstance(encoded, Rejection):
            return Refused(row.line, row.raw, encoded)
        return Ready(row.line, row.raw, checked.id.encode("utf-8"), encoded, checked.event_ms)

    def _encode(self, obj: dict[str, Any]) -> bytes | Rejection:
        try:
            text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            value = text.encode("utf-8")
        except UnicodeEncodeError:
            return Rejection("not_utf8", "the text holds a lone surrogate that UTF-8 cannot encode")
        except ValueError:
            return Rejection("invalid_json", "a number is too large to be sent as JSON")
        if len(value) > self._limits.max_bytes:
            return Rejection(
                "too_large",
                f"the record is {len(value)} bytes; the limit is {self._limits.max_bytes}",
            )
        return value


# --- pacing ---
class Pacer:
    """When each record is due, in seconds after the first one.

    ``rate``: record *i* is due at *i / rate*. ``speedup``: a record is due when the input's event
    clock, started at the first record and sped up X times, reaches its event time. The clock only
    moves forward: a record older than one already sent is due at once, never waited for backwards.
    Neither: every record is due at once.
    """

    def __init__(self, *, rate: float | None = None, speedup: float | None = None) -> None:
        if rate is not None and speedup is not None:
            raise ValueError("rate and speedup are mutually exclusive")
        if (rate is not None and rate <= 0) or (speedup is not None and speedup <= 0):
            raise ValueError("rate and speedup must be positive")
        self._rate = rate
        self._speedup = speedup
        self._count = 0
        self._first_ms: int | None = None
        self._latest_ms = 0

    def offset(self, event_ms: int) -> float:
        index = self._count
        self._count += 1
        if self._rate is not None:
            return index / self._rate
        if self._speedup is None:
            return 0.0
        if self._first_ms is None:
            self._first_ms = self._latest_ms = event_ms
        self._latest_ms = max(self._latest_ms, event_ms)
        return (self._latest_ms - self._first_ms) / 1000 / self._speedup


def schedule(
    event_ms: Sequence[int], *, rate: float | None = None, speedup: float | None = None
) -> list[float]:
    """Send offsets (seconds after the first record) for records with these event times."""
    pacer = Pacer(rate=rate, speedup=speedup)
    return [pacer.offset(moment) for moment in event_ms]


# --- rejects and the report ---
@dataclass
class ReasonGroup:
    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.lines) < _EXAMPLE_LINES:
            self.lines.append(line)

    def describe(self) -> str:
        shown = ", ".join(str(line) for line in self.lines)
        more = self.count - len(self.lines)
        word = "line" if self.count == 1 else "lines"
        return f"{word} {shown}" + (f" and {more:,} more" if more else "")


class TimeOrder:
    """Watches the event times in the order records are sent, as the detect stage will see them.

    The detect stage counts a mention late when its time is more than the allowed lateness
    (``STORMVARSEL_DETECT_LATENESS_S``) behind the newest mention it has seen, and late mentions
    raise nothing. An input that goes back in time by more than that (a newest-first export) is
    counted, and the first such record is logged at once: the run may be long.
    """

    def __init__(self, report: IngestReport) -> None:
        self._report = report
        self._newest_ms: int | None = None

    def see(self, record: Ready) -> None:
        lateness_ms = self._report.lateness_ms
        if lateness_ms is None:
            return
        if self._newest_ms is None or record.timestamp_ms > self._newest_ms:
            self._newest_ms = record.timestamp_ms
            return
        behind_ms = self._newest_ms - record.timestamp_ms
        if behind_ms <= lateness_ms:
            return
        report = self._report
        report.went_back += 1
        report.went_back_max_ms = max(report.went_back_max_ms, behind_ms)
        if report.went_back_first_line is None:
            report.went_back_first_line = record.line
            log.warning(
                "ingest.out_of_order",
                line=record.line,
                behind_s=round(behind_ms / 1000, 3),
                detect_lateness_s=lateness_ms / 1000,
                hint="the input goes back in time: the detect stage will count such mentions "
                "late and raise no alert from them; send it with --sort",
            )


@dataclass
class IngestReport:
    source: str
    topic: str
    read: int = 0
    sent: int = 0  # acknowledged by Kafka
    rejected: dict[str, ReasonGroup] = field(default_factory=dict)
    failed: dict[str, ReasonGroup] = field(default_factory=dict)
    duration_s: float = 0.0
    interrupted: bool = False
    rejects_file: Path | None = None
    retention_ms: int | None = None
    older_than_retention: int = 0
    lateness_ms: int | None = None  # the detect stage's allowed lateness (None: not checked)
    went_back: int = 0  # records sent more than lateness_ms before the newest sent ahead of them
    went_back_first_line: int | None = None
    went_back_max_ms: int = 0  # the furthest such a record was behind

    @property
    def rejected_count(self) -> int:
        return sum(group.count for group in self.rejected.values())

    @property
    def failed_count(self) -> int:
        return sum(group.count for group in self.failed.values())

    @property
    def rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    def exit_code(self, *, allow_rejects: bool = False) -> int:
        if self.interrupted:
            return 130
        if self.failed_count or (self.rejected_count and not allow_rejects):
            return 1
        return 0


class RejectLog:
    """Counts refused records by reason and writes each to the rejects file (thread-safe).

    Kafka's acknowledgements arrive on the producer's thread, hence the lock.
    """

    def __init__(self, report: IngestReport, path: Path | None) -> None:
        self._report = report
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            try:
                self._file = path.open("w", encoding="utf-8")
            except OSError as exc:
                raise IngestError(f"--rejects {path}: cannot write ({exc.strerror})") from None
            report.rejects_file = path

    def add(self, refused: Refused, *, failed: bool = False) -> None:
        groups = self._report.failed if failed else self._report.rejected
        with self._lock:
            groups.setdefault(refused.rejection.reason, ReasonGroup()).add(refused.line)
            if self._file is not None:
                entry: dict[str, Any] = {
                    "line": refused.line,
                    "reason": refused.rejection.reason,
                    "message": refused.rejection.message,
                    "raw": refused.raw,
                }
                if refused.raw_bytes is not None:
                    entry["raw_b64"] = base64.b64encode(refused.raw_bytes).decode("ascii")
                self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> RejectLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- Kafka ---
class Sink(Protocol):
    """Where records go: Kafka, or a list in tests."""

    def send(self, record: Ready, on_done: Callable[[Exception | None], None]) -> None: ...

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


class KafkaSink:
    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    def send(self, record: Ready, on_done: Callable[[Exception | None], None]) -> None:
        future = self._producer.send(
            self._topic, value=record.value, key=record.key, timestamp_ms=record.timestamp_ms
        )
        future.add_callback(lambda _metadata: on_done(None))
        future.add_errback(on_done)

    def flush(self, timeout_s: float) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        try:
            self._producer.close(timeout=5)
        except KafkaError:
            self._force_close()

    def _force_close(self) -> None:
        """Stop the producer's I/O thread without sending what is left.

        kafka-python's ``close()`` flushes first and raises while a batch is still unanswered
        (the broker went away; an idempotent producer then never expires it), leaving the thread
        running. Those records are already reported as not confirmed; let the process exit.
        """
        sender = getattr(self._producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(5)
        with contextlib.suppress(KafkaError):
            self._producer.close(timeout=0)


@dataclass
class Connection:
    sink: Sink
    retention_ms: int | None = None


def unreachable_message(settings: Settings, wait_s: float, error: BaseException) -> str:
    return (
        f"no Kafka broker answered at {settings.kafka_bootstrap_servers} within {wait_s:.0f} s "
        f"({type(error).__name__}); start one with `stormvarsel kafka start` or set "
        f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"
    )


def _retention_ms(admin: KafkaAdminClient, topic: str) -> int | None:
    """The topic's retention.ms, best effort (only used for a warning)."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, ["retention.ms"])
    try:
        described = admin.describe_configs([resource], config_filter="all")
        return int(described["topic"][topic]["retention.ms"]["value"])
    except (KafkaError, KeyError, TypeError, ValueError):
        return None


def connect_kafka(settings: Settings, topic: str, wait_s: float) -> Connection:
    """Check that the topic exists, then open an idempotent producer with acks=all."""
    admin = connect_admin(settings, timeout_s=wait_s)  # raises KafkaUnreachable
    try:
        if topic not in set(admin.list_topics()):
            raise IngestError(
                f"topic {topic!r} does not exist at {settings.kafka_bootstrap_servers}; create "
                "the pipeline topics with `stormvarsel topics create`, or check --topic and "
                f"{ENV_PREFIX}TOPIC_PREFIX"
            )
        retention = _retention_ms(admin, topic)
    except KafkaError as exc:
        raise KafkaUnreachable(unreachable_message(settings, wait_s, exc)) from None
    finally:
        admin.close()
    try:
        producer = KafkaProducer(
            **client_config(settings, "stormvarsel-ingest"),
            acks="all",
            linger_ms=20,
            bootstrap_timeout_ms=max(1_000, int(wait_s * 1000)),
            allow_auto_create_topics=False,
            max_block_ms=10_000,
            request_timeout_ms=10_000,
            delivery_timeout_ms=_DELIVERY_TIMEOUT_MS,
        )
    except (KafkaError, OSError) as exc:
        raise KafkaUnreachable(unreachable_message(settings, wait_s, exc)) from None
    log.debug("ingest.connected", topic=topic, retention_ms=retention)
    return Connection(KafkaSink(producer, topic), retention)


# --- progress ---
class ProgressView(Protocol):
    def update(self, report: IngestReport) -> None: ...

    def close(self) -> None: ...


class _CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"/{int(task.total):,}" if task.total is not None else " records"
        return Text(f"{int(task.completed):,}{total}", no_wrap=True)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rec/s" if speed else "- rec/s", no_wrap=True)


class _EtaColumn(ProgressColumn):
    """Time left, only when the total is known (a file, not stdin)."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        left = task.time_remaining
        shown = "-:--" if left is None else f"{int(left) // 60}:{int(left) % 60:02d}"
        return Text(f"eta {shown}", style="progress.remaining", no_wrap=True)


class RichProgress:
    """A progress bar on stderr: count, records/s, elapsed and (total known) ETA."""

    def __init__(self, total: int | None, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(bar_width=20),
            _CountColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            _EtaColumn(),
            TextColumn("{task.fields[rejected]:,} rejected"),
            console=console,
            speed_estimate_period=5.0,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("ingest", total=total, rejected=0)
        self._progress.start()

    def update(self, report: IngestReport) -> None:
        self._progress.update(self._task, completed=report.read, rejected=report.rejected_count)

    def close(self) -> None:
        self._progress.stop()


# --- the run ---
class _Delivery:
    """Tracks records handed to the sink until Kafka acknowledges (or refuses) each."""

    def __init__(self, report: IngestReport, rejects: RejectLog) -> None:
        self._report = report
        self._rejects = rejects
        self._lock = threading.Lock()
        self._pending: dict[int, Ready] = {}
        self._next = 0

    def submit(self, sink: Sink, record: Ready) -> None:
        with self._lock:
            ticket = self._next
            self._next += 1
            self._pending[ticket] = record
        try:
            sink.send(record, lambda error: self._done(ticket, error))
        except (KafkaError, OSError, ValueError, TypeError) as exc:
            self._done(ticket, exc)

    def _done(self, ticket: int, error: Exception | None) -> None:
        with self._lock:
            record = self._pending.pop(ticket, None)
            if record is None:
                return
            if error is None:
                self._report.sent += 1
                return
        log.debug("ingest.send_failed", line=record.line, error=repr(error))
        rejection = Rejection(f"send_failed:{type(error).__name__}", str(error) or repr(error))
        self._rejects.add(Refused(record.line, record.raw, rejection), failed=True)

    def give_up_on_pending(self) -> None:
        """Whatever Kafka has not answered after the flush counts as failed, with its line."""
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for record in pending:
            rejection = Rejection("send_failed:not_confirmed", "Kafka did not confirm the record")
            self._rejects.add(Refused(record.line, record.raw, rejection), failed=True)


def _in_event_order(outcomes: Iterable[Ready | Refused]) -> Iterator[Ready | Refused]:
    """``--sort``: the whole input in memory, refusals first, then records by event time."""
    materialised = list(outcomes)
    yield from (item for item in materialised if isinstance(item, Refused))
    ready = [item for item in materialised if isinstance(item, Ready)]
    yield from sorted(ready, key=lambda item: item.timestamp_ms)


def _pump(
    outcomes: Iterable[Ready | Refused],
    connection: Connection,
    pacer: Pacer,
    report: IngestReport,
    rejects: RejectLog,
    progress: ProgressView | None,
) -> None:
    delivery = _Delivery(report, rejects)
    order = TimeOrder(report)
    cutoff_ms = (
        (time.time() * 1000 - connection.retention_ms)
        if connection.retention_ms is not None and connection.retention_ms >= 0
        else None
    )
    started = time.monotonic()
    first_send: float | None = None
    try:
        for item in outcomes:
            report.read += 1
            if isinstance(item, Refused):
                rejects.add(item)
            else:
                now = time.monotonic()
                first_send = now if first_send is None else first_send
                wait = first_send + pacer.offset(item.timestamp_ms) - now
                if wait > 0:
                    time.sleep(wait)
                if cutoff_ms is not None and item.timestamp_ms < cutoff_ms:
                    report.older_than_retention += 1
                order.see(item)
                delivery.submit(connection.sink, item)
            if progress is not None:
                progress.update(report)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        _finish(connection.sink, delivery, report)
        report.duration_s = time.monotonic() - started


def _finish(sink: Sink, delivery: _Delivery, report: IngestReport) -> None:
    """Flush, count what Kafka never answered as failed, close. A Ctrl-C here stops waiting."""
    try:
        sink.flush(_FLUSH_TIMEOUT_S)
    except KafkaError as exc:
        log.warning("ingest.flush_incomplete", error=repr(exc))
    except KeyboardInterrupt:
        report.interrupted = True
    delivery.give_up_on_pending()
    sink.close()


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


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.mention_max_bytes, max_future_skew_s=settings.max_future_skew_s
    )


def matcher_from(settings: Settings) -> BrandMatcher | None:
    """The brand resolver when a brands file is configured; without one, brands pass through."""
    brands = settings.brands
    return BrandMatcher.from_file(brands) if brands.brands else None


def run_ingest(
    settings: Settings,
    options: IngestOptions,
    *,
    stdin: IO[bytes] | None = None,
    console: Console | None = None,
    connect: Callable[[Settings, str, float], Connection] = connect_kafka,
) -> IngestReport:
    """Read, check and send; return the report. ``console``: show a progress bar on it.

    The input is opened (and a CSV read through once, a JSON array read whole) before Kafka is
    contacted, so a wrong path or column, or a broken file, fails at once with the file's name
    and line, and nothing is sent; the rejects file is only (over)written once Kafka is
    reachable. Ctrl-C stops reading; what was sent is flushed and the report says so.
    """
    topic = options.topic or settings.topic(MENTIONS)
    report = IngestReport(source=options.source_label, topic=topic)
    report.lateness_ms = round(settings.detect_lateness_s * 1000)
    preparer = Preparer(options.transform, limits_from(settings), matcher_from(settings))
    stream_in = stdin if stdin is not None else _stdin()
    try:
        with open_input(options.source, stream_in) as opened:
            _ingest_from(opened, settings, options, report, preparer, console, connect)
    except InputError as exc:
        raise IngestError(f"{options.source_label}: {exc}") from None
    if report.went_back:
        log.warning(
            "ingest.out_of_order_total",
            records=report.went_back,
            first_line=report.went_back_first_line,
            max_behind_s=round(report.went_back_max_ms / 1000, 3),
            detect_lateness_s=settings.detect_lateness_s,
            hint="send the input with --sort",
        )
    log.debug(
        "ingest.done",
        read=report.read,
        sent=report.sent,
        rejected=report.rejected_count,
        failed=report.failed_count,
        duration_s=round(report.duration_s, 3),
    )
    return report


def _ingest_from(
    stream: IO[bytes],
    settings: Settings,
    options: IngestOptions,
    report: IngestReport,
    preparer: Preparer,
    console: Console | None,
    connect: Callable[[Settings, str, float], Connection],
) -> None:
    if options.format == "csv":
        stream = check_csv(stream, options.transform)
    rows: Iterator[Row] = read_rows(stream, options.format, options.transform)
    if options.limit is not None:
        rows = itertools.islice(rows, options.limit)
    outcomes: Iterable[Ready | Refused] = (preparer.prepare(row) for row in rows)
    if options.sort:
        outcomes = _in_event_order(outcomes)
    with kafka_logs_quiet():
        connection = connect(settings, report.topic, options.wait_for_kafka_s)
        report.retention_ms = connection.retention_ms
        try:
            rejects = RejectLog(report, options.rejects)
        except IngestError:
            connection.sink.close()
            raise
        with rejects:
            _run(outcomes, connection, options, report, rejects, console)


def _run(
    outcomes: Iterable[Ready | Refused],
    connection: Connection,
    options: IngestOptions,
    report: IngestReport,
    rejects: RejectLog,
    console: Console | None,
) -> None:
    progress = _progress_for(options, console)
    try:
        pacer = Pacer(rate=options.rate, speedup=options.speedup)
        _pump(outcomes, connection, pacer, report, rejects, progress)
    finally:
        if progress is not None:
            progress.close()


def _stdin() -> IO[bytes]:
    return sys.stdin.buffer


def _progress_for(options: IngestOptions, console: Console | None) -> ProgressView | None:
    if console is None:
        return None
    total = count_records(options.source, options.format) if options.source is not None else None
    if total is not None and options.limit is not None:
        total = min(total, options.limit)
    return RichProgress(total, console)


# --- the summary ---
def _groups(groups: Mapping[str, ReasonGroup]) -> list[str]:
    width = max((len(reason) for reason in groups), default=0)
    ordered = sorted(groups.items(), key=lambda item: (-item[1].count, item[0]))
    return [
        f"  {reason:<{width}} {group.count:>6,}  {group.describe()}" for reason, group in ordered
    ]


def _days(ms: int) -> str:
    return f"{timedelta(milliseconds=ms).total_seconds() / 86400:.1f} d"


def summary_lines(report: IngestReport, *, allow_rejects: bool = False) -> list[str]:
    """The end-of-run summary, one string per line."""
    lines: list[str] = []
    if report.interrupted:
        lines.append("interrupted (Ctrl-C): stopped reading; the records sent so far were flushed")
    lines.append(f"read     {report.read:>8,} {_plural(report.read)} from {report.source}")
    lines.append(f"sent     {report.sent:>8,} to topic {report.topic} (acknowledged, acks=all)")
    lines.append(f"rejected {report.rejected_count:>8,} locally (not sent)")
    lines.extend(_groups(report.rejected))
    if report.failed:
        lines.append(f"failed   {report.failed_count:>8,} sends (Kafka did not acknowledge them)")
        lines.extend(_groups(report.failed))
    lines.append(f"took     {report.duration_s:>8.2f} s, {report.rate:,.0f} records/s sent")
    if report.rejects_file is not None and (report.rejected or report.failed):
        lines.append(f"rejects  written to {report.rejects_file}")
    if report.older_than_retention and report.retention_ms is not None:
        count = report.older_than_retention
        lines.append(
            f"warning: the event times of {count:,} {_plural(count)} are older than the topic's "
            f"retention.ms ({_days(report.retention_ms)}); Kafka may delete them at its next "
            "retention check"
        )
    lines.extend(_time_order_lines(report))
    if report.failed:
        count = report.failed_count
        lines.append(f"exit 1: {count:,} {_plural(count)} not acknowledged by Kafka (see above)")
    elif report.rejected and not allow_rejects and not report.interrupted:
        count = report.rejected_count
        hint = "" if report.rejects_file else "--rejects FILE keeps them, "
        lines.append(
            f"exit 1: {count:,} {_plural(count)} rejected locally and not sent "
            f"({hint}--allow-rejects exits 0)"
        )
    return lines


def _duration(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _time_order_lines(report: IngestReport) -> list[str]:
    if not report.went_back or report.lateness_ms is None:
        return []
    count = report.went_back
    return [
        f"warning: the input goes back in time: {count:,} {_plural(count)} (the first on line "
        f"{report.went_back_first_line}) are more than {_duration(report.lateness_ms)} "
        f"({ENV_PREFIX}DETECT_LATENESS_S) older than a record sent before them, up to "
        f"{_duration(report.went_back_max_ms)}; the detect stage counts such mentions late and "
        "raises no alert from them: send the input with --sort"
    ]


def _plural(count: int) -> str:
    return "record" if count == 1 else "records"
