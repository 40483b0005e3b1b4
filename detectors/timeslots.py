"""Calendar slots for seasonal baselines, computed from epoch milliseconds in UTC."""

from __future__ import annotations

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
HOURS_PER_WEEK = 168
#: 1970-01-01 was a Thursday; shifting by three days puts Monday 00:00 at hour-of-week 0.
_EPOCH_WEEKDAY_OFFSET_HOURS = 72


def hour_of_day(event_ms: int, utc_offset_minutes: int = 0) -> int:
    """0..23 in the brand's local time (a fixed offset from UTC)."""
    return ((event_ms + utc_offset_minutes * MINUTE_MS) // HOUR_MS) % 24


def hour_of_week(event_ms: int, utc_offset_minutes: int = 0) -> int:
    """0..167, Monday 00:00-01:00 is 0, in the brand's local time (a fixed offset from UTC)."""
    hours = (event_ms + utc_offset_minutes * MINUTE_MS) // HOUR_MS
    return (hours + _EPOCH_WEEKDAY_OFFSET_HOURS) % HOURS_PER_WEEK


def bucket_start(event_ms: int, bucket_ms: int) -> int:
    """Start of the tumbling bucket holding an event time (buckets are aligned to the epoch)."""
    return event_ms - event_ms % bucket_ms
