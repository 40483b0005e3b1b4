"""Naive local times (no UTC offset) read on a zone's clock, around the changes of offset.

Python reads a naive time in a zone without a word when the clock skips it (spring forward: 02:30
on the night the clocks go from 02:00 to 03:00) or shows it twice (fall back: 02:30 before and
after the clocks go from 03:00 back to 02:00), picking one reading an hour off what may have been
meant. Here a skipped time is refused (:class:`SkippedLocalTime`) and a repeated one is either
refused (:func:`strict_local`, for a time typed on a command line) or placed by the times read
before it (:class:`LocalClock`, for an export read in file order).

Used by ``stormvarsel ingest --timezone``, ``stormvarsel replay --from/--to`` and
``stormvarsel eval airline`` (:mod:`detectors.datasets`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo


class LocalTimeError(ValueError):
    """A naive time the zone's clock skips or (when refused) shows twice."""

    def __init__(self, message: str, naive: datetime, zone: tzinfo) -> None:
        super().__init__(message)
        self.naive = naive
        self.zone = zone


class SkippedLocalTime(LocalTimeError):
    """The clock of ``zone`` skips ``naive``: it goes from ``gap_start`` to ``gap_end``."""

    def __init__(self, naive: datetime, zone: tzinfo) -> None:
        self.gap_start, self.gap_end = _gap(naive, zone)
        super().__init__(
            f"{naive.isoformat()} does not exist in {zone}: the clocks skip from "
            f"{self.gap_start:%H:%M} to {self.gap_end:%H:%M} on {self.gap_start:%Y-%m-%d}",
            naive,
            zone,
        )


class RepeatedLocalTime(LocalTimeError):
    """The clock of ``zone`` shows ``naive`` twice: ``first`` and then ``second``."""

    def __init__(self, naive: datetime, zone: tzinfo, first: datetime, second: datetime) -> None:
        super().__init__(
            f"{naive.isoformat()} happens twice in {zone} (the clocks go back)", naive, zone
        )
        self.first = first
        self.second = second


def occurrences(naive: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """``naive`` in ``zone`` as (the first, the second) occurrence, aware; the same instant
    twice when the clock shows it once. Raises :class:`SkippedLocalTime` when the clock skips it.
    ``naive`` must have no tzinfo."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first, first
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise SkippedLocalTime(naive, zone)
    return first, second


def strict_local(naive: datetime, zone: tzinfo) -> datetime:
    """``naive`` in ``zone``, refused when the clock skips it or shows it twice."""
    first, second = occurrences(naive, zone)
    if first is not second:
        raise RepeatedLocalTime(naive, zone, first, second)
    return first


class LocalClock:
    """Reads the naive times of one input in ``zone``, in the order they come (file order).

    A time the clock skips raises :class:`SkippedLocalTime`. A time it shows twice is placed where
    the time does not go back: exports are nearly always in time order. That is the first
    occurrence, unless the previous time read (in UTC) is already after it: then the second.
    The first time read, when repeated, is the first occurrence. A time that repeats the
    previous one exactly (a minute's many rows) stays in the previous one's occurrence.

    So an export in time order through the night the clocks go back is read as it was written:
    02:00-02:59 summer time, then 02:00-02:59 winter time, an hour apart in UTC. An export out of
    order in that hour cannot be told apart from one in order, and may be read an hour off:
    give such times with their UTC offset.

    ``newest_first``: the input runs back in time (newest first), and the rule is mirrored: the
    time does not go forward. The second occurrence, unless the previous time read is before it
    (then the first); the first time read, when repeated, is the second occurrence.
    """

    def __init__(self, zone: tzinfo, *, newest_first: bool = False) -> None:
        self.zone = zone
        self.newest_first = newest_first
        #: The previous time read, in UTC (None before the first).
        self.previous: datetime | None = None

    def read(self, naive: datetime) -> datetime:
        """``naive`` as an aware time in the clock's zone (see the class)."""
        first, second = occurrences(naive, self.zone)
        moment = first
        if first is not second:
            # Compared in UTC: aware times of one tzinfo compare by their wall clocks, folds
            # ignored, which would make both occurrences equal.
            previous = self.previous
            if self.newest_first:
                if previous is None or previous >= second.astimezone(UTC):
                    moment = second
            elif previous is not None and previous > first.astimezone(UTC):
                moment = second
        self.previous = moment.astimezone(UTC)
        return moment


def runs_newest_first(times: Iterable[datetime | None]) -> bool:
    """Whether a sequence of naive local times (None: not one) mostly runs back in time: more of
    its steps from one time to the next go back than forward. Exports of some tools are newest
    first (the airline tweets: newest first within each airline)."""
    back = forward = 0
    previous: datetime | None = None
    for moment in times:
        if moment is None:
            continue
        if previous is not None:
            back += moment < previous
            forward += moment > previous
        previous = moment
    return back > forward


def _gap(naive: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The local clock times where the skip around ``naive`` starts and ends (``02:00``,
    ``03:00``). ``naive`` must be in a gap."""
    before, after = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    # In a gap, fold 0 reads with the offset before the change, fold 1 with the one after: the
    # change lies between the two readings in UTC. Find it to the second.
    low, high = sorted((before.astimezone(UTC), after.astimezone(UTC)))
    offset_after = after.utcoffset()
    if low.astimezone(zone).utcoffset() == offset_after:  # not expected; say what is known
        return naive, naive
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset_after:
            high = middle
        else:
            low = middle
    change = high.replace(microsecond=0)
    start = (change + (before.utcoffset() or timedelta(0))).replace(tzinfo=None)
    end = (change + (offset_after or timedelta(0))).replace(tzinfo=None)
    return start, end
