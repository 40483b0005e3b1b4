"""Replaying the real airline tweets (Feb 2015): the 22 February storms, and quiet days."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from detectors.datasets import airline_tweets
from detectors.episodes import EpisodeEvent, canonical_json
from detectors.replay import replay
from tests.detector_support import DATA

AIRLINE = DATA / "sentiment" / "airline_tweets.csv"
pytestmark = pytest.mark.skipif(
    not AIRLINE.exists(), reason=f"airline tweets not found at {AIRLINE} (../shared/data is absent)"
)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d")


@pytest.fixture(scope="module")
def events() -> list[EpisodeEvent]:
    return [o for o in replay(airline_tweets(AIRLINE)) if isinstance(o, EpisodeEvent)]


def test_storms_on_22_february(events: list[EpisodeEvent]) -> None:
    opened = [e.episode for e in events if e.type == "opened" and e.episode["kind"] == "storm"]
    on_22 = {ep["brand"] for ep in opened if _day(ep["start_ms"]) == "02-22"}
    assert {"American", "Delta", "US Airways"} <= on_22


def test_no_episodes_on_17_and_18_february(events: list[EpisodeEvent]) -> None:
    early = [
        (e.episode["brand"], e.episode["kind"], e.episode["start"])
        for e in events
        if e.type == "opened" and _day(e.episode["start_ms"]) in ("02-16", "02-17", "02-18")
    ]
    assert early == []


def test_american_drivers_name_the_complaints(events: list[EpisodeEvent]) -> None:
    resolved = [
        e.episode
        for e in events
        if e.type == "resolved"
        and e.episode["kind"] == "storm"
        and e.episode["brand"] == "American"
    ]
    assert resolved, "American's storm never resolved"
    drivers = resolved[0]["drivers"]
    top = [t["term"] for t in drivers["words"][:10]] + [t["term"] for t in drivers["phrases"][:10]]
    text = " | ".join(top)
    assert re.search(r"cancel", text), top
    assert re.search(r"\bhold\b", text), top
    assert re.search(r"book", text), top
    assert resolved[0]["peak_severity"] == "critical"


def test_replay_is_byte_identical() -> None:
    events = airline_tweets(AIRLINE)[:6000]
    first = "\n".join(
        canonical_json(o.to_dict()) for o in replay(events) if isinstance(o, EpisodeEvent)
    )
    second = "\n".join(
        canonical_json(o.to_dict()) for o in replay(events) if isinstance(o, EpisodeEvent)
    )
    assert first.encode() == second.encode()
