"""Reading JSON input: JSON Lines, one JSON array, or pretty-printed objects one after another."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from streams.ingest.errors import InputError
from streams.ingest.rows import BOM, Row
from streams.mention import Rejection, validate_object


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
    except ValueError as exc:  # NaN, or an integer longer than Python converts
        return Row(line, text, rejection=Rejection("invalid_json", _value_error(exc)))
    if not isinstance(value, dict):
        checked = validate_object(value)  # the worker's reason for a non-object
        assert isinstance(checked, Rejection)
        return Row(line, text, rejection=checked)
    return Row(line, text, fields=value)


def _value_error(exc: ValueError) -> str:
    if "integer string conversion" in str(exc):
        return "an integer in it has more digits than can be read (4,300 at most)"
    return str(exc)


#: Finds where a JSON value ends without converting its numbers: a decoder that converts an
#: integer of more than 4,300 digits raises a plain ValueError, without saying where it ends.
_DELIMITER = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)


def _decode_element(decoder: json.JSONDecoder, text: str, pos: int) -> int:
    """Where the JSON value at ``pos`` ends; a value whose numbers Python cannot convert still
    ends somewhere, and is refused as an element of its own by :func:`_json_row`."""
    try:
        return decoder.raw_decode(text, pos)[1]
    except json.JSONDecodeError:
        raise
    except ValueError:
        return _DELIMITER.raw_decode(text, pos)[1]


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
        if data.removeprefix(BOM).strip():
            break
    first = b"".join(head).removeprefix(BOM).lstrip()
    if first.startswith(b"["):
        return iter(json_array_rows(b"".join(head) + stream.read()))
    if opens_an_object(first):
        return iter(json_object_rows(b"".join(head) + stream.read()))
    return jsonl_rows(itertools.chain(head, stream))


def opens_an_object(line: bytes) -> bool:
    """Whether a first line starts a JSON object that goes on over the next lines: it starts with
    ``{`` and runs out before the object ends, right after a ``{``, ``[``, ``,`` or ``:``
    (``{``, ``{"id": "1",``). A line that is broken (``{not json``, a string never closed, or a
    record cut short after a complete value: ``{"id": "1", "text": "hei"``) is left to JSON
    Lines, which refuses it on its own."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith("{"):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.pos >= len(text) and text[-1] in "{[,:"
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
                end = _decode_element(decoder, text, pos)
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
            end = _decode_element(decoder, text, pos)
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
            body = body.removeprefix(BOM)
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
