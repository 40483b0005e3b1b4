"""Reading CSV input: a header line, quoted cells over several lines, UTF-16/32 exports, and
unbalanced quotes caught before anything is sent."""

from __future__ import annotations

import codecs
import csv
import io
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

from streams.ingest.errors import InputError, OptionError
from streams.ingest.options import UTF8, Transform
from streams.ingest.rows import BOM, Row
from streams.mention import MENTION_MAX_BYTES_CEILING, Rejection

_SPOOL_BYTES = 64 * 1024 * 1024  # CSV on standard input: kept in memory up to this, then on disk
_DELIMITERS = (",", ";", "\t")

#: The longest CSV cell ingest reads, in characters. csv's own limit (131,072) is below the
#: largest mention (``MENTION_MAX_BYTES_CEILING``, 245,760 bytes): a longer cell stopped csv in
#: the middle of its row, which was refused although it might fit, and when the cell ran over
#: several lines csv went on inside it and read its later lines as rows, sent as mentions. A
#: cell of more characters than the ceiling makes a record larger than any allowed (each
#: character is at least a byte of it), so up to this limit such a record is refused as
#: ``too_large`` with its line; past it (an unbalanced quote, most likely) the run stops before
#: anything is sent (:func:`_csv_body`). The bound keeps such a quote from reading a large file
#: into memory.
CSV_FIELD_LIMIT = 4 * MENTION_MAX_BYTES_CEILING
_FIELD_LIMIT_ERROR = "field larger than field limit"


def _next_row(reader: Iterator[list[str]]) -> list[str]:
    """The reader's next row, read under ingest's own cell limit. csv's limit is process-wide
    (``csv.reader`` takes none of its own), and another reader in the process sets its own
    (``sentiment eval`` raises it to 2 GiB): it is set for the row and put back after it."""
    previous = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        return next(reader)
    finally:
        csv.field_size_limit(previous)


WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def as_utf8(stream: IO[bytes], encoding: str = UTF8) -> IO[bytes]:
    """The input as UTF-8 bytes. A byte-order mark wins: UTF-8 is read as it is, UTF-16/32
    (Excel's "Unicode text" exports) transcoded, into memory whole. Without one, the input is in
    ``encoding`` (``--encoding``): UTF-8 is read as it is (bytes that are not UTF-8 are found
    per row, or by :func:`stop_on_not_utf8`), any other encoding is transcoded as it is read.
    A byte sequence that is not valid in the encoding is an :class:`InputError` naming the
    line, never replaced."""
    head = stream.read(4)
    for bom, codec in WIDE_BOMS:
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
    prefixed = io.BufferedReader(_Prefixed(head, stream))
    if encoding == UTF8 or head.startswith(BOM):
        return prefixed
    return io.BufferedReader(_Transcoded(prefixed, encoding))


class _Transcoded(io.RawIOBase):
    """``stream``, in ``encoding``, as UTF-8 bytes, decoded a chunk at a time."""

    _CHUNK = 64 * 1024

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        self._stream = stream
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._out = b""
        self._lines = 0  # line ends decoded so far
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._out and not self._done:
            chunk = _read_some(self._stream, self._CHUNK)
            self._done = not chunk
            try:
                text = self._decoder.decode(chunk, final=self._done)
            except UnicodeDecodeError as exc:
                before = exc.object[: exc.start].decode(self._encoding, errors="replace")
                line = self._lines + before.count("\n") + 1
                raise InputError(
                    f"line {line}: the bytes {bytes(exc.object[exc.start : exc.end])!r} are not "
                    f"valid {self._encoding} ({exc.reason}); is the file in another encoding? "
                    "(--encoding)"
                ) from None
            self._lines += text.count("\n")
            self._out = text.encode("utf-8", errors="surrogatepass")
        size = min(len(view), len(self._out))
        view[:size], self._out = self._out[:size], self._out[size:]
        return size


def stop_on_not_utf8(line: int, data: bytes, *, rejectable: bool = True) -> InputError:
    """The error that stops a UTF-8 run before anything is sent, for the first line (or CSV row)
    whose bytes are not UTF-8: its line, the bytes around the first bad one, and the fix.
    ``rejectable``: the record could be refused alone (``--allow-rejects``); not so in an input
    read whole (a JSON array)."""
    try:
        data.decode("utf-8")
        start, end = 0, 0
    except UnicodeDecodeError as exc:
        start, end = exc.start, exc.end
    shown = data[max(0, start - 12) : end + 12]
    also = (
        "; or --allow-rejects to send the other records and reject these as not_utf8"
        if rejectable
        else ""
    )
    return InputError(
        f"line {line}: byte {start} is not UTF-8 (the bytes {shown!r}); nothing was sent. An "
        "export from Excel in Windows-1252 or Latin-1? Pass --encoding cp1252 (or --encoding "
        f"latin-1){also}"
    )


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
        data = _read_some(self._stream, len(view))
        view[: len(data)] = data
        return len(data)


def _read_some(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes, as soon as there are any: ``read1`` where the stream has it. A
    buffered ``read(size)`` waits for ``size`` bytes or the end of the input, so the lines of a
    pipe kept open (``tail -f log.jsonl | stormvarsel ingest -``) were not read until kilobytes
    more came after them."""
    read1 = getattr(stream, "read1", None)
    if read1 is None:
        return stream.read(size)
    data: bytes = read1(size)
    return data


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
        self._first: bytes | None = None  # the header line, read ahead and not yet taken
        self._started = False  # the header line has been looked for
        self.header_line = 1  # its physical line number

    def _header(self) -> bytes:
        """The header line (b"" for an input without one), read ahead once: the first line that
        is not blank. Blank lines before it (a first line left empty by an export) are skipped
        but counted, so every line number after them stays physical."""
        if not self._started:
            self._started = True
            self._first = b""
            for data in self._lines:
                self._line += 1
                if self._line == 1:
                    data = data.removeprefix(BOM)
                if data.strip():
                    self._first, self.header_line = data, self._line
                    break
        return self._first or b""

    def delimiter(self) -> str:
        """The header line's cell delimiter: ``,``, or ``;`` (or a tab) when that splits the
        header into more cells, as in the CSV Excel writes where the decimal mark is a comma
        (Norway, Sweden, Denmark). Reads the header line ahead; call it before the first row."""
        header = self._header().decode("utf-8", errors="replace")

        def width(delimiter: str) -> int:
            try:
                return len(next(csv.reader([header], delimiter=delimiter), []))
            except csv.Error:
                return 0

        return max(_DELIMITERS, key=width)  # on a tie, the first: the comma

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        if not self._started:
            self._header()
        if self._first is not None:
            data, self._first = self._first, None
            if not data:
                raise StopIteration
        else:
            data = next(self._lines)
            self._line += 1
        if not self._chunks:
            self._start = self._line
        self._chunks.append(data)
        return data.decode("utf-8", errors="replace")

    def take(self) -> tuple[int, int, list[bytes]]:
        """The first and last line of the row just read, and its lines as read."""
        start, chunks = self._start, self._chunks
        self._chunks = []
        return start, start + max(len(chunks), 1) - 1, chunks


def _read_header(tap: _LineTap, reader: Iterator[list[str]], transform: Transform) -> list[str]:
    """The column names; an empty name marks a column without one (see :func:`_csv_body`).
    The header is the first line that is not blank (:attr:`_LineTap.header_line`)."""
    try:
        header = [name.strip() for name in _next_row(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            raise InputError(
                f"line {tap.header_line}: a quote opened in the CSV header is never closed (it "
                "runs to the end of the file)"
            ) from None
        raise InputError(f"line {tap.header_line}: the CSV header cannot be read: {exc}") from None
    start, end, _chunks = tap.take()
    if end > start:
        raise InputError(
            f"line {start}: the CSV header runs on to line {end}: a quote in it is not closed on "
            "its line"
        )
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if name in seen:
            raise InputError(
                f"line {start}: the CSV header names the column {name!r} twice (columns "
                f"{seen[name]} and {number})"
            )
        if name:
            seen[name] = number
    for target, source in transform.mapping.items():
        if source not in seen:
            named = ", ".join(name for name in header if name)
            raise OptionError(
                "--map",
                f"{target}={source}: the CSV has no column {source!r} (its columns: {named})",
            )
    _check_required_columns(header, transform, start)
    return header


_REQUIRED = ("id", "text", "created_at")


def _folded(name: str) -> str:
    return re.sub(r"[\s_-]+", "_", name.strip().lower())


def _check_required_columns(header: Sequence[str], transform: Transform, line: int) -> None:
    """A required field that no column, ``--map`` or ``--set`` gives, while a column is named
    like it but for case, spaces or dashes (``ID``, ``Created At``): every row would be refused
    as ``missing_field``, with no word of the column; one error says it instead."""
    sources = set(transform.mapping.values())
    given = {name for name in header if name and name not in sources}
    given |= set(transform.mapping) | set(transform.constants)
    alike: dict[str, str] = {}
    for field_name in _REQUIRED:
        if field_name not in given:
            named = [name for name in header if name and _folded(name) == field_name]
            if named:
                alike[field_name] = named[0]
    if alike:
        missing = " or ".join(repr(field_name) for field_name in alike)
        columns = " and ".join(repr(name) for name in alike.values())
        maps = " ".join(f"--map {shlex.quote(f'{f}={name}')}" for f, name in alike.items())
        raise InputError(
            f"line {line}: the CSV has no column {missing}, which every mention needs, but has "
            f"{columns}: column names are matched exactly; add {maps} (or rename the columns)"
        )


def csv_rows(stream: IO[bytes], transform: Transform, encoding: str = UTF8) -> Iterator[Row]:
    """Rows of a CSV file with a header line. The header is read (and checked) at once."""
    tap = _LineTap(as_utf8(stream, encoding))
    delimiter = tap.delimiter()
    reader = csv.reader(tap, strict=True, delimiter=delimiter)
    header = _read_header(tap, reader, transform)
    return _csv_body(tap, reader, header, delimiter)


def _span(start: int, end: int) -> str:
    return f"line {start}" if start == end else f"lines {start}-{end}"


def _swallowed_row(chunks: Sequence[bytes], width: int, delimiter: str) -> int | None:
    """The index of a line after the first of a multi-line row that reads as a whole row on its
    own (as many cells as the header) and has a quote right before a comma or the line end, in a
    row whose first line, its quote read as a letter, is a whole row too: the sign of a quote
    that opened a cell by mistake (``"oops``) and swallowed the rows after it, up to a stray
    quote (``screen 6",``) that closed it.

    The cell count of a line alone is no evidence: a correctly quoted multi-line text has lines
    with as many commas as a narrow header has columns (``Jeg har ventet, ringt, og ventet.``).
    """
    lines = [chunk.rstrip(b"\r\n").decode("utf-8", errors="replace") for chunk in chunks]
    literal = csv.reader(lines[:1], quoting=csv.QUOTE_NONE, delimiter=delimiter)
    try:
        if len(next(literal, [])) != width:
            return None  # the row goes on past its first line: text, not a swallowed row
    except csv.Error:  # read literally, a cell of doubled quotes may pass the field limit
        return None
    quote_ends_a_cell = re.compile(f'"(?:{re.escape(delimiter)}|$)')
    for index, text in enumerate(lines[1:], start=1):
        try:
            cells = next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error:
            continue
        if quote_ends_a_cell.search(text) and len(cells) == width:
            return index
    return None


def _csv_body(
    tap: _LineTap, reader: Iterator[list[str]], header: list[str], delimiter: str
) -> Iterator[Row]:
    """Rows after the header. A quoted cell may span lines; when one cannot be closed (an
    unbalanced quote that would swallow every row after it), reading stops with an
    :class:`InputError` naming the line; a multi-line row that looks like swallowed rows is
    refused with its lines, never sent as one mention."""
    unnamed = [index for index, name in enumerate(header) if not name]
    while header:
        try:
            cells = _next_row(reader)
            error: str | None = None
        except StopIteration:
            return
        except csv.Error as exc:
            cells, error = [], str(exc)
        line, end, chunks = tap.take()
        if error is not None and error.startswith(_FIELD_LIMIT_ERROR):
            # csv gave up inside the cell and would go on reading from the next line as if a
            # row began there, while the cell may go on over it: no row after it can be trusted.
            cell = "a cell on this line"
            if end > line:
                cell = f"a quoted cell opened on this line (read to line {end})"
            raise InputError(
                f"line {line}: {cell} is longer than {CSV_FIELD_LIMIT:,} characters, more than "
                "any mention can hold; the CSV cannot be read past it: an unbalanced quote?"
            )
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
        swallowed = _swallowed_row(chunks, len(header), delimiter) if end > line else None
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
                f"column {filled[0]} has no name in the header (line {tap.header_line}), but this "
                "row has a value in it; name the column"
            )
            yield Row(line, raw, rejection=Rejection("bad_csv_row", message))
        else:
            fields = {
                name: cell
                for name, cell in zip(header, cells, strict=True)
                if name and cell.strip()
            }
            yield Row(line, raw, fields=fields, from_text=True)


def check_csv(
    stream: IO[bytes], transform: Transform, encoding: str = UTF8, *, allow_not_utf8: bool = True
) -> IO[bytes]:
    """Read a CSV input through once before anything is sent, so that an unbalanced quote or a
    file that is not valid in its encoding stops the run before the first record, as a broken
    JSON array does; so does a row that is not UTF-8 (without a byte-order mark or another
    ``encoding``), unless ``allow_not_utf8`` (``--allow-rejects``): it is then refused.
    Returns the input to read again: the same file, rewound, or (standard input
    that cannot be rewound) a temporary copy of it."""
    copy: IO[bytes]
    if stream.seekable():
        copy, start = stream, stream.tell()
    else:
        copy, start = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES), 0  # noqa: SIM115
        shutil.copyfileobj(stream, copy)
        copy.seek(0)
    for row in csv_rows(copy, transform, encoding):
        if not allow_not_utf8 and row.raw_bytes is not None:
            raise stop_on_not_utf8(row.line, row.raw_bytes)
    copy.seek(start)
    return copy
