"""From a read record to the mention that is sent: mapping, constants, types, time zones, and the
worker's own checks."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detectors.local_time import LocalClock, SkippedLocalTime
from streams.brand_matching import BrandMatcher
from streams.ingest.options import (
    BOOL_FIELDS,
    INT_FIELDS,
    SCHEMA_FIELDS,
    KeyBy,
    Transform,
    typed_text,
)
from streams.ingest.rows import Row
from streams.iso_time import parse_iso, strptime
from streams.mention import Limits, Rejection, validate_object
from streams.routing import route


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
    for name in INT_FIELDS | BOOL_FIELDS:
        *parents, last = name.split(".")
        node: Any = obj
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(last), str):
            node[last] = typed_text(name, node[last])


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _naive_iso(text: str) -> datetime | None:
    stripped = text.strip()
    if not stripped or stripped.lstrip("-").replace(".", "", 1).isdigit():
        return None  # epoch seconds or milliseconds
    try:
        parsed = parse_iso(stripped)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is None else None


@functools.lru_cache(maxsize=4096)
def _formatted_time(text: str, fmt: str) -> datetime:
    # strptime is slow and exports repeat the same minute for many rows: cache the result (the
    # time as read, before its zone: a repeated local time depends on the record before it).
    return strptime(text, fmt)


def convert_time(
    obj: dict[str, Any], transform: Transform, clock: LocalClock | None = None
) -> Rejection | None:
    """Apply ``--time-format``/``--timezone`` to ``created_at`` in place.

    A naive time is read on ``clock`` (one per run, fed the records in file order; a fresh one
    when None): a local time the zone's clock skips is refused, and one it shows twice (the
    night the clocks go back) is placed where the time does not go back from the previous naive
    time read, see :class:`detectors.local_time.LocalClock`.
    """
    value = obj.get("created_at")
    if value is None:
        return None
    zone = transform.timezone or UTC
    if clock is None:
        clock = LocalClock(zone)
    if transform.time_format is not None:
        if not isinstance(value, str):
            return Rejection(
                "bad_type:created_at",
                f"created_at: expected text in --time-format {transform.time_format!r}",
            )
        try:
            moment = _formatted_time(value.strip(), transform.time_format)
        except ValueError:
            return Rejection(
                "bad_value:created_at",
                f"created_at: {_shown(value)!r} does not match --time-format "
                f"{transform.time_format!r}",
            )
        return _convert(obj, value, moment, clock, with_format=True)
    if isinstance(value, str) and (naive := _naive_iso(value)) is not None:
        if transform.timezone is None:
            return Rejection(
                "bad_value:created_at",
                "created_at: the time has no UTC offset; give the input's zone with --timezone "
                "(e.g. --timezone Europe/Oslo)",
            )
        return _convert(obj, value, naive, clock, with_format=False)
    return None


def _convert(
    obj: dict[str, Any], value: str, moment: datetime, clock: LocalClock, *, with_format: bool
) -> Rejection | None:
    """``created_at`` set to ``moment`` in UTC, read on ``clock`` when it has no offset."""
    try:
        aware = moment if moment.tzinfo is not None else clock.read(moment)
        obj["created_at"] = _iso_utc(aware)
    except OverflowError:  # year 1 or 9999 moved across the date line by the zone
        return _out_of_range(value)
    except SkippedLocalTime as skipped:
        return _skipped(value, skipped, with_format=with_format)
    return None


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


def _skipped(value: str, skipped: SkippedLocalTime, *, with_format: bool) -> Rejection:
    """A local time the zone's clock skips (the night the clocks go forward): refused, with the
    skip and how to give the time (the offset suggested is the one before the change, as a
    clock not yet put forward writes it)."""
    naive = skipped.naive
    before = naive.replace(tzinfo=skipped.zone, fold=0).strftime("%z")
    stamp = f"{naive.isoformat()}{before[:3]}:{before[3:]}"
    fmt = " and %z in --time-format" if with_format else ""
    return Rejection(
        "bad_value:created_at",
        f"created_at: {_shown(value)!r} does not exist in {skipped.zone}: the clocks skip from "
        f"{skipped.gap_start:%H:%M} to {skipped.gap_end:%H:%M} on {skipped.gap_start:%Y-%m-%d}; "
        f"export the times with their UTC offset{fmt} (e.g. {stamp})",
    )


def _out_of_range(value: str) -> Rejection:
    return Rejection(
        "timestamp_out_of_range", f"created_at: {_shown(value)!r} is out of range in UTC"
    )


def build_object(
    fields: Mapping[str, Any],
    transform: Transform,
    *,
    from_text: bool = False,
    clock: LocalClock | None = None,
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
    rejection = convert_time(obj, transform, clock)
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
        self,
        transform: Transform,
        limits: Limits,
        matcher: BrandMatcher | None = None,
        key_by: KeyBy = "id",
    ) -> None:
        self._transform = transform
        self._limits = limits
        self._matcher = matcher
        self._key_by = key_by
        # One clock for the run: the records come here one at a time in file order (--sort
        # orders what this returns), so a repeated local time is placed by the one before it.
        self._clock = LocalClock(transform.timezone or UTC)

    def prepare(self, row: Row) -> Ready | Refused:
        if row.rejection is not None or row.fields is None:
            rejection = row.rejection or Rejection("empty", "the record has no value")
            return Refused(row.line, row.raw, rejection, row.raw_bytes)
        built = build_object(
            row.fields, self._transform, from_text=row.from_text, clock=self._clock
        )
        if isinstance(built, Rejection):
            return Refused(row.line, row.raw, built)
        checked = validate_object(built, limits=self._limits)
        if isinstance(checked, Rejection):
            return Refused(row.line, row.raw, checked)
        brand = checked.brand
        if self._matcher is not None and checked.brand is not None:
            routed = route(checked, self._matcher)
            if isinstance(routed, Rejection):
                return Refused(row.line, row.raw, routed)
            brand = built["brand"] = routed.brands[0]
        encoded = self._encode(built)
        if isinstance(encoded, Rejection):
            return Refused(row.line, row.raw, encoded)
        key = self._key(checked.id, brand)
        return Ready(row.line, row.raw, key, encoded, checked.event_ms)

    def _key(self, mention_id: str, brand: str | None) -> bytes:
        """The record's Kafka key. By id (the default), a brand's mentions spread over the
        partitions, so a storm is validated and scored by every worker; the copies of one post
        still meet on one partition, where the worker de-duplicates them. By brand, each brand's
        mentions stay on one partition in the order they were sent, through every stage to the
        detector: what a backfill sorted by time needs, since the worker interleaves partitions
        in chunks and a brand's stream would otherwise run back by hours. A mention without a
        brand (matched from its text by the worker) is keyed by id either way."""
        if self._key_by == "brand" and brand:
            return brand.encode("utf-8")
        return mention_id.encode("utf-8")

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
