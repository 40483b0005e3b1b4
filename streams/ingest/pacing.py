"""When each record is sent: at once, at a fixed rate, or on the input's own clock sped up."""

from __future__ import annotations

from collections.abc import Sequence


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
