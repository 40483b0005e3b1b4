"""Calendar slots for seasonal baselines, computed from epoch milliseconds in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
HOURS_PER_WEEK = 168
#: 1970-01-01 was a Thursday; shifting by three days puts Monday 00:00 at hour-of-week 0.
_EPOCH_WEEKDAY_OFFSET_HOURS = 72


def hour_of_day(event_ms: int, utc_offset_minutes: int = 0) -> int:
    """0..23 in the brand's local time, ``utc_offset_minutes`` ahead of UTC."""
    return ((event_ms + utc_offset_minutes * MINUTE_MS) // HOUR_MS) % 24


def hour_of_week(event_ms: int, utc_offset_minutes: int = 0) -> int:
    """0..167, Monday 00:00-01:00 is 0, in the brand's local time."""
    hours = (event_ms + utc_offset_minutes * MINUTE_MS) // HOUR_MS
    return (hours + _EPOCH_WEEKDAY_OFFSET_HOURS) % HOURS_PER_WEEK


def bucket_start(event_ms: int, bucket_ms: int) -> int:
    """Start of the tumbling bucket holding an event time (buckets are aligned to the epoch)."""
    return event_ms - event_ms % bucket_ms


class TimeZoneError(ValueError):
    """A time zone name that the IANA database (``zoneinfo``) does not know."""


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (e.g. ``Europe/Oslo``), or :class:`TimeZoneError` saying why not."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeZoneError(f"{name!r} is not an IANA time zone (e.g. Europe/Oslo, UTC)") from None


#: Offsets are looked up once per quarter of an hour of UTC time: every zone in use changes its
#: offset on a quarter-hour boundary, and a baseline asks about the same hour many times.
_OFFSET_BLOCK_MS = 15 * MINUTE_MS
_OFFSET_CACHE_SIZE = 4096


class LocalClock:
    """How far the brand's wall clock is ahead of UTC at an instant, in minutes.

    With a zone, the offset follows its summer time, so a brand's 08:00 rush stays in the 08:00
    slot when the clocks change; without one it is the fixed ``fixed_offset_minutes``.
    """

    def __init__(self, timezone: str = "", fixed_offset_minutes: int = 0) -> None:
        self.zone = load_zone(timezone) if timezone else None
        self.fixed = fixed_offset_minutes
        self._cache: dict[int, int] = {}

    def offset_minutes(self, event_ms: int) -> int:
        if self.zone is None:
            return self.fixed
        block = event_ms // _OFFSET_BLOCK_MS
        offset = self._cache.get(block)
        if offset is None:
            if len(self._cache) >= _OFFSET_CACHE_SIZE:
                self._cache.clear()
            instant = datetime.fromtimestamp(block * _OFFSET_BLOCK_MS / 1000, UTC)
            delta = instant.astimezone(self.zone).utcoffset()
            offset = int(delta.total_seconds() // 60) if delta is not None else 0
            self._cache[block] = offset
        return offset
