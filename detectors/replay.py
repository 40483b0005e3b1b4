"""Run many brands' detectors over one ordered stream of mentions, as the live pipeline would.

The watermark is the highest event time seen (each no later than the mention's arrival, when the
record says: :attr:`MentionEvent.clock_ms`) minus the allowed lateness, shared by all brands
(like the worker's wall-clock timer, it closes a quiet brand's buckets too). Whenever it enters
a new bucket, every brand's detector advances to it, in brand order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from detectors.episodes import Output
from detectors.events import (
    MAX_AHEAD_MS,
    MentionEvent,
    ahead_reference,
    too_far_ahead,
    watermark_clock,
)


@dataclass(frozen=True)
class Carried:
    """What a brand new to a replayer brings from elsewhere: the detector it goes on with, or
    None to start afresh; and when a carried detector cannot go on (too old, or another bucket
    size), the ``abandoned`` events of its open episodes, so their alerts end rather than fire
    until they expire."""

    detector: BrandDetector | None = None
    ended: tuple[Output, ...] = ()


#: Given a brand new to a replayer and its first mention's event time, what it carries over.
Seed = Callable[[str, int], Carried | None]


class Replayer:
    """Brand detectors created on first sight of a brand, advanced by a shared watermark."""

    def __init__(
        self,
        config: DetectorConfig | None = None,
        lateness_ms: int = 0,
        seed: Seed | None = None,
    ) -> None:
        self.config = config or DetectorConfig()
        self.lateness_ms = lateness_ms
        self.bucket_ms = round(self.config.bucket_minutes * 60_000)
        self.detectors: dict[str, BrandDetector] = {}
        self.max_event_ms: int | None = None
        self._advanced_to: int | None = None
        #: Where a brand new here may come from before it starts afresh (:class:`Carried`). The
        #: worker carries brands' detectors over when the topics get more partitions.
        self.seed = seed

    def clock_ms(self) -> int | None:
        """The stream's clock: the highest mention time seen (as far as each moved it), or
        where the wall-clock timer has moved the watermark since, if that is further."""
        clock = self.max_event_ms
        if self._advanced_to is not None:
            timer = self._advanced_to + self.lateness_ms
            clock = timer if clock is None else max(clock, timer)
        return clock

    def feed(self, event: MentionEvent) -> list[Output]:
        # The hot path: once per mention. The stream's clock is needed only for a mention
        # dated over MAX_AHEAD_MS past the highest time seen (the clock is never behind that),
        # and the shared watermark moves only for a mention past the highest time seen.
        max_ms = self.max_event_ms
        event_ms = event.event_ms
        now = None
        if max_ms is None or event_ms - max_ms > MAX_AHEAD_MS:
            now = self.clock_ms()
        detector = self.detectors.get(event.brand)
        ended: list[Output] = []
        if detector is None:
            detector = self._new_detector(event, now, ended)
        if detector.closed_until is None:
            self._place_new_brand(detector, event)
        detector.observe(event, now)
        received = event.received_ms
        clock = event_ms if received is None else watermark_clock(event_ms, received)
        if max_ms is not None and clock <= max_ms:
            return ended
        advanced = self.tick(clock)
        if ended:
            ended.extend(advanced)
            return ended
        return advanced

    def _new_detector(
        self, event: MentionEvent, now: int | None, ended: list[Output]
    ) -> BrandDetector:
        """The detector of a brand this replayer sees for the first time: carried over by
        :attr:`seed` (its abandoned episodes' events go to ``ended``), else a fresh one."""
        # A mention dated too far ahead (dropped by its detector) says nothing about when its
        # brand appeared: a carried-over detector is judged by the stream's clock instead.
        reference = ahead_reference(event, now)
        seen_ms = event.event_ms
        if reference is not None and too_far_ahead(event, now):
            seen_ms = reference
        carried = self.seed(event.brand, seen_ms) if self.seed is not None else None
        if carried is not None:
            ended.extend(carried.ended)
        seeded = carried.detector if carried is not None else None
        detector = seeded or BrandDetector(event.brand, self.config)
        self.detectors[event.brand] = detector
        return detector

    def _place_new_brand(self, detector: BrandDetector, event: MentionEvent) -> None:
        """Where the buckets of a brand that has not closed one yet start (a no-op once it
        has: both cases below need ``closed_until`` unset)."""
        advanced_to = self._advanced_to
        if advanced_to is not None:
            # On this replayer's bucket grid, whatever set it: a brand started off the grid
            # would never close a bucket that holds a mention.
            advanced_to -= advanced_to % self.bucket_ms
        if advanced_to is not None and event.event_ms < advanced_to:
            # A brand not yet advanced (new here) whose mention is older than the shared
            # watermark: its buckets before the watermark are closed, as every other brand's
            # are, so the mention is late. Else a first mention dated a year back would make it
            # close a year of empty buckets at the next tick.
            detector.start_at(advanced_to)
        elif not detector.open and event.clock_ms < event.event_ms:
            # A new brand whose first mention is dated ahead of its arrival: its buckets start
            # where that arrival is, as if the mention had been dated then. Starting at the
            # mention's own bucket would make the brand's current mentions late until real
            # time got there. Set in the brand's own state, so a rebuild keeps it.
            start = event.clock_ms - event.clock_ms % self.bucket_ms
            detector.start_at(max(start, advanced_to) if advanced_to is not None else start)

    def tick(self, event_ms: int) -> list[Output]:
        """Move the shared watermark as a mention at ``event_ms`` does (``feed`` calls this after
        observing it). A replay that leaves some brands out ticks with their mentions, so the
        brands it keeps see the very watermark, and give the very outputs, of a full run.

        One mention moves the clock at most ``MAX_AHEAD_MS`` ahead: a mention dated in 2099
        (without an arrival stamp) is dropped by its detector, and moves every brand a week
        on, not to 2099 one bucket at a time. A stream that really went silent for longer
        catches up a week per mention. The clock alone decides, so a rebuild that only ticks
        with a mention its brand's saved state holds moves it exactly as ``feed`` did."""
        max_ms = self.max_event_ms
        if max_ms is None or event_ms > max_ms:
            if max_ms is None or event_ms - max_ms > MAX_AHEAD_MS:
                now = self.clock_ms()
                if now is not None and event_ms - now > MAX_AHEAD_MS:
                    event_ms = now + MAX_AHEAD_MS
            self.max_event_ms = event_ms
            watermark = event_ms - self.lateness_ms
            boundary = watermark - watermark % self.bucket_ms
            if self._advanced_to is None or boundary > self._advanced_to:
                self._advanced_to = boundary
                return self.advance(boundary)
        return []

    def advance(self, watermark_ms: int) -> list[Output]:
        out: list[Output] = []
        for brand in sorted(self.detectors):
            out.extend(self.detectors[brand].advance(watermark_ms))
        return out

    def flush(self) -> list[Output]:
        """Close every bucket up to the end of the last one that holds a mention (a mention
        dated ahead of its arrival can be in a bucket past the watermark's reach), but no
        further than ``MAX_AHEAD_MS`` past the stream's clock: no mention kept now is dated
        later, and a state saved before mentions that far ahead were dropped may hold one."""
        now = self.clock_ms()
        if now is None:
            return []
        latest = max([now, *(max(d.open) for d in self.detectors.values() if d.open)])
        latest = min(latest, now + MAX_AHEAD_MS)
        end = latest - latest % self.bucket_ms + self.bucket_ms
        return self.advance(end)


def replay(
    events: Iterable[MentionEvent], config: DetectorConfig | None = None, lateness_ms: int = 0
) -> Iterator[Output]:
    """Every output of a whole replay, in order (bucket summaries and episode events)."""
    replayer = Replayer(config, lateness_ms)
    for event in events:
        yield from replayer.feed(event)
    yield from replayer.flush()
