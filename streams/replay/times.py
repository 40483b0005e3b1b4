"""Times and durations on the replay command line, and how the report shows them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from detectors.local_time import RepeatedLocalTime, SkippedLocalTime, strict_local
from streams.iso_time import parse_iso

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS_MS = {"": 1000, "s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


class TimeFormatError(ValueError):
    """A time, zone or duration the command line cannot read; the message says what is expected."""


def parse_zone(name: str) -> tzinfo:
    """An IANA zone name (``UTC``, ``Europe/Oslo``, ``America/Los_Angeles``)."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeFormatError(
            f"expected an IANA time zone such as UTC or Europe/Oslo, got {name!r}"
        ) from None


def parse_time(text: str, zone: tzinfo = UTC) -> int:
    """ISO 8601 date or date-time as epoch milliseconds; without an offset it is read in ``zone``.

    ``2015-02-22`` is midnight at the start of that day (``2015-02-22+01:00``: at that
    offset); ``2015-02-22T12:00``, ``2015-02-22 12:00:00+01:00`` and ``2015-02-22T11:00Z`` are
    understood too.
    """
    try:
        moment = parse_iso(text)
    except ValueError:
        raise TimeFormatError(
            f"expected an ISO 8601 date or time such as 2015-02-22, 2015-02-22T12:00 or "
            f"2015-02-22T12:00+01:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = _local_moment(moment, zone, text)
    return int(moment.timestamp() * 1000)


def _local_moment(naive: datetime, zone: tzinfo, text: str) -> datetime:
    """``naive`` on the clock of ``zone``, refused when that clock skips it (spring forward) or
    shows it twice (fall back): Python silently picks one, an hour off what may have been meant,
    and a post-mortem range an hour off cuts the storm's first or last hour."""
    try:
        return strict_local(naive, zone)
    except RepeatedLocalTime as repeated:
        stamp = naive.isoformat()
        raise TimeFormatError(
            f"{text.strip()!r} happens twice in {zone} (the clocks go back): give the offset, "
            f"{stamp}{_offset(repeated.first)} (the first) or {stamp}{_offset(repeated.second)} "
            "(the second)"
        ) from None
    except SkippedLocalTime as skipped:
        stamp = naive.isoformat()
        before = naive.replace(tzinfo=zone, fold=0)
        raise TimeFormatError(
            f"{text.strip()!r} does not exist in {zone} (the clocks skip it, from "
            f"{skipped.gap_start:%H:%M} to {skipped.gap_end:%H:%M}): give a time outside "
            f"the skipped hour, or an offset ({stamp}{_offset(before)})"
        ) from None


def _offset(moment: datetime) -> str:
    """``+01:00`` for ISO 8601."""
    text = moment.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def parse_duration(text: str) -> int:
    """``30s``, ``90m``, ``12h``, ``7d`` or ``2w`` as milliseconds; ``0`` needs no unit.

    Any other number needs one: ``--warmup 7`` meant to be a week was taken as 7 seconds,
    which silently left the detectors cold and the report without alerts."""
    match = _DURATION.match(text)
    if not match:
        raise TimeFormatError(f"expected a duration such as 0, 90m, 12h, 7d or 2w, got {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    if not unit and number != 0:
        raise TimeFormatError(
            f"{text.strip()!r} has no unit: write {match.group(1)}s, {match.group(1)}m, "
            f"{match.group(1)}h, {match.group(1)}d or {match.group(1)}w"
        )
    return round(number * _UNITS_MS[unit])


def show_time(ms: int, zone: tzinfo = UTC) -> str:
    """``2015-02-22 11:58 PST``: minutes are what buckets resolve; the zone says which clock."""
    moment = datetime.fromtimestamp(ms / 1000, zone)
    return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or "UTC")


def iso_utc(ms: int) -> str:
    """``2015-02-22T19:58:00Z`` (for CSV files: unambiguous and sortable)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_ms(text: str) -> int:
    """The ISO 8601 times of alert records (``2015-02-22T19:58:00.000Z``) as epoch ms."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def show_duration(ms: int) -> str:
    """``45 min``, ``3 h 05 min``, ``2 d 4 h``: how long, for people."""
    sign = "-" if ms < 0 else ""
    minutes = round(abs(ms) / MINUTE_MS)
    if minutes < 60:
        return f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h"
