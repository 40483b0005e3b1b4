"""Negative reach: an author's followers count once per bucket, and storms do not teach the
usual reach."""

from __future__ import annotations

import json

from detectors.brand import BrandDetector
from detectors.buckets import MAX_AUTHORS_PER_BUCKET, OpenBucket
from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent
from detectors.events import MentionEvent
from detectors.timeslots import hour_of_day
from tests.detector_support import DAY, HOUR, MINUTE, T0, daily_rate, stream


def _negative(author: str | None, followers: int, n: int) -> MentionEvent:
    return MentionEvent(
        "acme", T0, "negative", followers=followers, author=author, mention_id=f"m{n}"
    )


def test_an_author_posting_often_counts_once_per_bucket() -> None:
    bucket = OpenBucket(T0)
    for n in range(168):
        bucket.add(_negative("bigmouth", 250_000, n), 4, 5)
    bucket.add(_negative("someone", 100, 1000), 4, 5)
    bucket.add(_negative(None, 7, 1001), 4, 5)  # no author: counted per post
    bucket.add(_negative(None, 7, 1002), 4, 5)
    assert bucket.negative == 171
    assert bucket.reach_negative == 250_000 + 100 + 14
    restored = OpenBucket.from_state(json.loads(json.dumps(bucket.to_state())))
    restored.add(_negative("bigmouth", 250_000, 2000), 4, 5)
    assert restored.reach_negative == bucket.reach_negative


def test_past_the_author_cap_a_new_author_counts_per_post() -> None:
    bucket = OpenBucket(T0)
    for n in range(MAX_AUTHORS_PER_BUCKET):
        bucket.add(_negative(f"a{n}", 1, n), 4, 5)
    bucket.add(_negative("late", 10, 10_000), 4, 5)
    bucket.add(_negative("late", 10, 10_001), 4, 5)
    bucket.add(_negative("a0", 1, 10_002), 4, 5)  # known: still once
    assert bucket.reach_negative == MAX_AUTHORS_PER_BUCKET + 20


def test_a_state_saved_before_negative_authors_were_kept_restores() -> None:
    bucket = OpenBucket(T0)
    bucket.add(_negative("bigmouth", 250_000, 1), 4, 5)
    state = json.loads(json.dumps(bucket.to_state()))
    del state["negative_authors"]
    assert OpenBucket.from_state(state).negative_authors == set()


def test_a_storm_does_not_teach_the_usual_negative_reach() -> None:
    calm = list(stream("acme", T0, 4 * 1440, lambda t: daily_rate(hour_of_day(t), 1.0)))
    storm_at = T0 + 3 * DAY + 14 * HOUR
    storm = [
        MentionEvent(
            "acme",
            e.event_ms,
            e.sentiment,
            followers=250_000 if e.sentiment == "negative" else e.followers,
            author=e.author,
            mention_id=e.mention_id,
        )
        for e in stream("acme", storm_at, 120, lambda t: 12.0, negative_share=0.85, seed=5)
    ]
    events = sorted([*calm, *storm], key=lambda e: (e.event_ms, e.mention_id))
    detector = BrandDetector("acme", DetectorConfig())
    before = None
    opened = False
    for e in events:
        if before is None and e.event_ms >= storm_at:
            before = detector.reach.mean
        detector.observe(e)
        for out in detector.advance(e.event_ms - MINUTE):
            opened = opened or (isinstance(out, EpisodeEvent) and out.type == "opened")
    assert opened and before is not None
    # The storm opened within minutes: the build-up before it is all the storm taught.
    assert detector.reach.mean < 3 * before
