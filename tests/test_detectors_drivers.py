"""What an episode says it is about: the opening bucket's terms, the language mix of a restored
bucket, and list lengths after a retune."""

from __future__ import annotations

from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent
from detectors.replay import replay
from detectors.timeslots import hour_of_day
from tests.detector_support import DAY, HOUR, MINUTE, T0, daily_rate, stream


def test_a_buzz_episode_counts_the_terms_of_the_bucket_that_opened_it() -> None:
    """A viral burst that fits in one 5-minute bucket: the storm machine starts from the recent
    negative terms, which hold its opening bucket, but buzz has no such seed and never counted
    that bucket's terms. Its episode named the quiet hour after the burst ("nice weather
    today"), and nothing at all when it opened."""
    config = DetectorConfig.from_dict({"bucket_minutes": 5})
    normal = stream("acme", T0, 8 * 1440, lambda t: daily_rate(hour_of_day(t), 1.0))
    burst_at = T0 + 7 * DAY + 15 * HOUR
    burst_texts = ["love the brilliant campaign", "brilliant campaign love it"]
    burst = stream("acme", burst_at, 5, lambda t: 60.0, 0.02, 0.9, seed=9, texts=burst_texts)
    after = stream(
        "acme",
        burst_at + 5 * MINUTE,
        60,
        lambda t: 3.0,
        0.02,
        0.9,
        seed=10,
        texts=["nice weather today"],
    )
    events = sorted([*normal, *burst, *after], key=lambda e: (e.event_ms, e.mention_id))
    buzz = [
        o
        for o in replay(events, config)
        if isinstance(o, EpisodeEvent) and o.episode["kind"] == "buzz"
    ]
    assert buzz[0].type == "opened" and buzz[-1].type == "resolved"
    for event in (buzz[0], buzz[-1]):
        words = [w["term"] for w in event.episode["drivers"]["words"]]
        assert {"brilliant", "campaign"} <= set(words[:3]), (event.type, words)
    phrases = [p["term"] for p in buzz[-1].episode["drivers"]["phrases"]]
    assert phrases[0] == "brilliant campaign"
