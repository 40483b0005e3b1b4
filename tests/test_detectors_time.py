"""Event time at the edges: mentions dated far ahead, and the first buckets of a new brand."""

from __future__ import annotations

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary, Output
from detectors.events import MAX_AHEAD_MS, MentionEvent
from detectors.replay import Replayer
from tests.detector_support import DAY, MINUTE, T0

HOURLY = DetectorConfig.from_dict({"bucket_minutes": 60})
HOUR_MS = 60 * MINUTE
WEEK_BUCKETS = MAX_AHEAD_MS // HOUR_MS  # 168 hourly buckets


def summaries(outputs: list[Output], brand: str | None = None) -> list[BucketSummary]:
    return [
        o for o in outputs if isinstance(o, BucketSummary) and (brand is None or o.brand == brand)
    ]


def test_an_unstamped_mention_dated_a_year_ahead_is_dropped_and_moves_time_a_week_at_most() -> None:
    """A record without an arrival stamp dated a year ahead moved the watermark there: every
    brand closed a year of buckets in that one call (38 million 1-minute buckets for 2099)."""
    replayer = Replayer(HOURLY)
    replayer.feed(MentionEvent("acme", T0, "neutral", mention_id="a"))
    replayer.feed(MentionEvent("globex", T0 + HOUR_MS, "neutral", mention_id="g"))
    out = replayer.feed(MentionEvent("acme", T0 + 365 * DAY, "negative", mention_id="far"))
    for brand in ("acme", "globex"):
        assert len(summaries(out, brand)) <= WEEK_BUCKETS + 1
    acme = replayer.detectors["acme"]
    assert acme.dropped_total == 1 and acme.observed_total == 2 and acme.late_total == 0
    assert all(start < T0 + 8 * DAY for start in acme.open)
    assert replayer.max_event_ms == T0 + HOUR_MS + MAX_AHEAD_MS
    # Saved with the state, so a restarted stage goes on counting from it.
    restored = BrandDetector.from_state(acme.to_state(), HOURLY)
    assert restored.dropped_total == 1


def test_a_stamped_mention_dated_beyond_the_horizon_of_its_arrival_is_dropped() -> None:
    """Stamped, it cannot move the watermark (its clock is its arrival), but it stayed in an
    open bucket of its own, and the final flush closed every bucket up to it (60 days of them)."""
    replayer = Replayer()
    replayer.feed(MentionEvent("acme", T0, "neutral", mention_id="a", received_ms=T0))
    ahead = T0 + 60 * DAY
    replayer.feed(MentionEvent("acme", ahead, "neutral", mention_id="f", received_ms=T0 + 1000))
    acme = replayer.detectors["acme"]
    assert acme.dropped_total == 1 and list(acme.open) == [T0]
    assert len(replayer.flush()) == 1
    # An hour ahead of its arrival (Oslo time written with a Z) is still counted, in its bucket.
    soon = T0 + 61 * MINUTE
    replayer.feed(MentionEvent("acme", soon, "neutral", mention_id="s", received_ms=T0 + 2000))
    assert acme.dropped_total == 1 and soon - soon % MINUTE in acme.open


def test_flush_stops_a_week_past_the_clock_for_a_state_holding_a_far_bucket() -> None:
    """A state saved before far mentions were dropped can hold a bucket in 2099."""
    detector = BrandDetector("acme", HOURLY)
    detector.observe(MentionEvent("acme", T0, "neutral", mention_id="a"))
    detector.observe(MentionEvent("acme", T0 + 365 * DAY, "neutral", mention_id="far"))
    replayer = Replayer(HOURLY)
    replayer.detectors["acme"] = detector
    replayer.tick(T0)
    out = replayer.flush()
    assert 0 < len(out) <= WEEK_BUCKETS + 1
    assert summaries(out)[-1].end_ms <= T0 + MAX_AHEAD_MS + HOUR_MS


def test_a_stream_silent_for_longer_than_the_horizon_catches_up() -> None:
    """Without arrival stamps a silence of ten days looks like a mention dated ten days ahead:
    that first mention is dropped, but it moves the clock a week, so the stream is not stuck."""
    replayer = Replayer(HOURLY)
    out = replayer.feed(MentionEvent("acme", T0, "neutral", mention_id="a"))
    later = T0 + 10 * DAY
    for i in range(5):
        out += replayer.feed(
            MentionEvent("acme", later + i * HOUR_MS, "neutral", mention_id=f"b{i}")
        )
    out += replayer.flush()
    acme = replayer.detectors["acme"]
    assert acme.dropped_total == 1 and acme.late_total == 0
    assert sum(s.volume for s in summaries(out)) == 5  # all but the dropped one
    assert summaries(out)[-1].start_ms == later + 4 * HOUR_MS


def test_ticking_with_a_dropped_mention_moves_time_as_feeding_it_did() -> None:
    """A rebuilt worker only ticks with the mentions its brands' saved states hold: the
    watermark, and so every other brand's outputs, must come out the same."""
    far = MentionEvent("acme", T0 + 30 * DAY, "negative", mention_id="far")
    later = [
        MentionEvent("globex", T0 + 8 * DAY + i * HOUR_MS, "neutral", mention_id=f"g{i}")
        for i in range(3)
    ]

    def run(tick_only: bool) -> list[dict[str, object]]:
        replayer = Replayer(HOURLY)
        out = replayer.feed(MentionEvent("globex", T0, "neutral", mention_id="g"))
        out += replayer.tick(far.clock_ms) if tick_only else replayer.feed(far)
        for event in later:
            out += replayer.feed(event)
        return [s.to_dict() for s in summaries(out + replayer.flush(), "globex")]

    assert run(tick_only=True) == run(tick_only=False)


def test_a_new_brand_closes_no_bucket_the_watermark_has_not_passed() -> None:
    """Its first advance marked every bucket before its first mention closed, watermark or
    not: a mention in time for an earlier bucket was then counted late."""
    detector = BrandDetector("newco")
    detector.observe(MentionEvent("newco", T0 + 5 * MINUTE + 30_000, "negative", mention_id="a"))
    assert detector.advance(T0 + 4 * MINUTE) == []
    detector.observe(MentionEvent("newco", T0 + 4 * MINUTE + 50_000, "negative", mention_id="b"))
    assert detector.late_total == 0
    out = summaries(detector.advance(T0 + 6 * MINUTE))
    assert [(s.start_ms, s.volume) for s in out] == [(T0 + 4 * MINUTE, 1), (T0 + 5 * MINUTE, 1)]


def test_a_new_brand_in_a_replay_counts_its_in_time_mentions() -> None:
    replayer = Replayer(lateness_ms=90_000)
    replayer.feed(MentionEvent("old", T0, "neutral", mention_id="o1"))
    replayer.feed(MentionEvent("old", T0 + 6 * MINUTE + 10_000, "neutral", mention_id="o2"))
    replayer.feed(MentionEvent("newco", T0 + 6 * MINUTE + 30_000, "negative", mention_id="n1"))
    # The watermark is at 10:05:00: a mention at 10:05:40 is in time.
    replayer.feed(MentionEvent("newco", T0 + 5 * MINUTE + 40_000, "negative", mention_id="n2"))
    newco = replayer.detectors["newco"]
    assert newco.late_total == 0
    out = summaries(replayer.flush(), "newco")
    assert [(s.start_ms, s.volume) for s in out] == [(T0 + 5 * MINUTE, 1), (T0 + 6 * MINUTE, 1)]
