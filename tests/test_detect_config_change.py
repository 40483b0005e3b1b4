"""A worker restarted with another detector configuration keeps watching (no crash, no blind
spell where it can be avoided): states continue under changed thresholds, and only a state whose
bucket or window sizes changed is started afresh, with an error and a metric."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from detectors.brand import BrandDetector, StateMismatch
from detectors.config import DetectorConfig
from detectors.events import MentionEvent
from detectors.replay import Replayer
from detectors.timeslots import hour_of_day
from streams.agents import detect_state
from streams.agents.detect_state import PartitionState
from tests.detector_support import T0, daily_rate, stream
from tests.test_detect_state import LATENESS_MS, ChangelogTable, run_stage

RETUNED = "stormvarsel_detector_states_retuned_total"
DISCARDED = "stormvarsel_detector_states_discarded_total"


def as_record(event: MentionEvent) -> dict[str, Any]:
    return {
        "id": event.mention_id,
        "text": event.text,
        "created_at_ms": event.event_ms,
        "brand": event.brand,
        "platform": event.platform,
        "lang": event.lang,
        "author": {"id": event.author, "handle": None, "followers": event.followers},
        "engagement": {"likes": 0, "shares": 0, "replies": 0},
        "is_brand_reply": False,
        "sentiment": {"label": event.sentiment, "model": "test"},
    }


@pytest.fixture(scope="module")
def saved() -> tuple[ChangelogTable, ChangelogTable, int]:
    """Two brands' detectors after two days, saved by the stage under the default config."""
    events = [
        e
        for brand, seed in (("acme", 1), ("globex", 2))
        for e in stream(brand, T0, 2 * 1440, lambda t: daily_rate(hour_of_day(t), 1.0), seed=seed)
    ]
    events.sort(key=lambda e: (e.event_ms, e.mention_id))
    records = [as_record(e) for e in events]
    states, pending = ChangelogTable(), ChangelogTable()
    run_stage(records, states, pending, PartitionState(Replayer(None, LATENESS_MS)), 0)
    return states, pending, len(records)


def count(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def rebuilt(
    saved: tuple[ChangelogTable, ChangelogTable, int], config: DetectorConfig
) -> PartitionState:
    states, pending, _ = saved
    partitions = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, config, LATENESS_MS
    )
    return partitions[0]


def test_changed_thresholds_continue_the_saved_history(
    saved: tuple[ChangelogTable, ChangelogTable, int],
) -> None:
    before = count(RETUNED), count(DISCARDED)
    stricter = DetectorConfig.from_dict({"states": {"watch_enter": 1.3, "watch_exit": 0.6}})
    state = rebuilt(saved, stricter)
    assert count(RETUNED) == before[0] + 2
    assert count(DISCARDED) == before[1]
    _, _, n = saved
    detectors = state.replayer.detectors
    assert sorted(detectors) == ["acme", "globex"]
    # Every mention of the two days is still counted, and the baseline is warm: no blind spell.
    assert sum(d.observed_total for d in detectors.values()) == n
    assert all(d.baseline.warm for d in detectors.values())
    assert all(d.config == stricter for d in detectors.values())


def test_other_bucket_sizes_start_the_brands_afresh(
    saved: tuple[ChangelogTable, ChangelogTable, int],
) -> None:
    before = count(DISCARDED)
    state = rebuilt(saved, DetectorConfig.from_dict({"bucket_minutes": 5}))
    assert count(DISCARDED) == before + 2
    _, pending, _ = saved
    # The saved states are dropped; the mentions pending since the last save go to fresh
    # detectors, and no record is skipped as "in the saved state" any more.
    fed = sum(d.observed_total for d in state.replayer.detectors.values())
    assert fed == len(pending)
    assert state.saved_offset == {}
    assert all(not d.baseline.warm for d in state.replayer.detectors.values())


def test_without_retune_a_changed_configuration_is_refused() -> None:
    detector = BrandDetector("acme")
    state = detector.to_state()
    other = DetectorConfig.from_dict({"states": {"watch_enter": 1.3}})
    with pytest.raises(StateMismatch, match="different configuration"):
        BrandDetector.from_state(state, other)
    assert BrandDetector.from_state(state, other, retune=True).config == other
    del state["layout"]  # saved before layouts were recorded
    with pytest.raises(StateMismatch, match="cannot continue"):
        BrandDetector.from_state(state, other, retune=True)
