"""Quiet brands: a brand with a few posts a day must not page on ordinary traffic, nor on a
handful of angry posts at night. Every score of negative evidence (spike, build-up and the
sustained excess) is gated at ``storm.min_negative`` negatives in the last hour."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from detectors.episodes import BucketSummary, EpisodeEvent, Output
from detectors.replay import replay
from tests.detector_support import DAY, HOUR, T0, angry_posts_at_4am, stream


def storms(outputs: Iterable[Output]) -> list[EpisodeEvent]:
    return [o for o in outputs if isinstance(o, EpisodeEvent) and o.episode["kind"] == "storm"]


@pytest.mark.parametrize("per_day", [1.5, 4.0])
def test_poisson_traffic_of_a_quiet_brand_opens_no_storm(per_day: float) -> None:
    """Three weeks of constant-rate Poisson mentions, a quarter of them negative, no storm at
    all. Before the sustained score was gated, one negative post against a six-hour
    expectation of a few hundredths was z = 5: 1.5 posts a day opened 5 storms in these three
    weeks (one critical), 4 a day opened 1."""
    events = list(stream("quiet", T0, 21 * 1440, lambda t: per_day / 1440, seed=5))
    outputs = list(replay(events))
    assert storms(outputs) == []
    summaries = [o for o in outputs if isinstance(o, BucketSummary)]
    assert max(s.negative_score for s in summaries) == 0.0


def test_six_angry_posts_at_4am_for_a_brand_with_four_posts_a_day_open_nothing() -> None:
    quiet = list(stream("tiny", T0, 7 * 1440, lambda t: 0.003, seed=3))  # about 4 posts a day
    angry = angry_posts_at_4am("tiny", 6)  # fewer than storm.min_negative (10) in the hour
    events = sorted(quiet + angry, key=lambda e: (e.event_ms, e.mention_id))
    outputs = list(replay(events))
    assert [e for e in outputs if isinstance(e, EpisodeEvent)] == []
    night = [
        o
        for o in outputs
        if isinstance(o, BucketSummary)
        and T0 + 7 * DAY + 4 * HOUR <= o.start_ms < T0 + 7 * DAY + 5 * HOUR
    ]
    assert len(night) == 6 and max(s.negative_score for s in night) == 0.0
