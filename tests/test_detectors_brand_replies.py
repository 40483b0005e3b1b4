"""The brand's own answers (``is_brand_reply``) are counted apart from the public's posts."""

from __future__ import annotations

import json

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary, EpisodeEvent, canonical_json
from detectors.events import MentionEvent
from detectors.replay import replay
from detectors.timeslots import hour_of_day
from tests.detector_support import DAY, HOUR, MINUTE, T0, daily_rate, stream


def _public() -> list[MentionEvent]:
    calm = stream("acme", T0, 4 * 1440, lambda t: daily_rate(hour_of_day(t), 1.0))
    storm = stream(
        "acme", T0 + 3 * DAY + 14 * HOUR, 120, lambda t: 12.0, negative_share=0.85, seed=5
    )
    return sorted([*calm, *storm], key=lambda e: (e.event_ms, e.mention_id))


def _with_replies(public: list[MentionEvent]) -> list[MentionEvent]:
    """The official account answers every third complaint of the storm, a second later, with
    far more followers than anyone (and labelled negative, as an apology often is)."""
    storm_at = T0 + 3 * DAY + 14 * HOUR
    replies = [
        MentionEvent(
            "acme",
            e.event_ms + 1000,
            "negative",
            followers=900_000,
            author="acme_official",
            lang="en",
            platform="x",
            text="Sorry about the refund trouble, please send us a DM",
            mention_id=f"reply{i}",
            likes=500,
            is_brand_reply=True,
        )
        for i, e in enumerate(public)
        if e.sentiment == "negative" and storm_at <= e.event_ms < storm_at + 2 * HOUR and i % 3 == 0
    ]
    return sorted([*public, *replies], key=lambda e: (e.event_ms, e.mention_id))


def _without_reply_counts(output: object) -> str:
    if isinstance(output, BucketSummary):
        data = output.to_dict()
        data.pop("brand_replies", None)
        return canonical_json(data)
    assert isinstance(output, EpisodeEvent)
    data = output.to_dict()
    data["episode"] = {k: v for k, v in data["episode"].items() if k != "brand_replies"}
    return canonical_json(data)


def test_brand_replies_change_nothing_but_their_own_count() -> None:
    public = _public()
    events = _with_replies(public)
    replies = len(events) - len(public)
    assert replies > 100
    plain = list(replay(public))
    answered = list(replay(events))
    storms = [o for o in answered if isinstance(o, EpisodeEvent) and o.episode["kind"] == "storm"]
    assert storms, "the storm must open"
    # Volume, sentiment counts, reach, authors, mix, scores, drivers, top posts and authors:
    # all exactly as without the brand's answers.
    assert [_without_reply_counts(o) for o in answered] == [_without_reply_counts(o) for o in plain]
    summaries = [o for o in answered if isinstance(o, BucketSummary)]
    assert sum(s.to_dict().get("brand_replies", 0) for s in summaries) == replies
    last = storms[-1].episode
    assert last.get("brand_replies", 0) > 0
    authors = [a["author"] for a in last["drivers"]["top_authors"]]
    assert "acme_official" not in authors


def test_a_state_saved_before_brand_replies_were_counted_restores() -> None:
    events = _with_replies(_public())
    cut = T0 + 3 * DAY + 14 * HOUR + 30 * MINUTE
    detector = BrandDetector("acme")
    for e in events:
        if e.event_ms >= cut:
            break
        detector.observe(e)
        detector.advance(e.event_ms - MINUTE)
    state = json.loads(json.dumps(detector.to_state()))
    assert state["episodes"], "mid-storm"
    for bucket in state["open"]:
        del bucket["brand_replies"]
    for episode in state["episodes"].values():
        del episode["brand_replies"]
    restored = BrandDetector.from_state(state, DetectorConfig())
    assert all(b.brand_replies == 0 for b in restored.open.values())
    assert all(e.brand_replies == 0 for e in restored.episodes.values())
