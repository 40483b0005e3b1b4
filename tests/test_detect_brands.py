"""A brand the brands file no longer names is named in an error after a rebuild
(``detect_brands``): before, its storm resolved after the cool-down with nothing to say why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from detectors.config import DetectorConfig
from detectors.events import MentionEvent
from streams.agents import detect_state
from streams.agents.detect_brands import unfollowed
from streams.agents.detect_state import Disposition
from tests.storm_scenario import BRAND, phases

OTHER = "globex"


@pytest.fixture(scope="module")
def tables() -> tuple[dict[str, Any], dict[str, Any]]:
    """The stage's tables with BRAND's storm open and a calm OTHER brand beside it."""
    scenario = phases()
    records = scenario["calm"] + scenario["onset"] + scenario["escalation"]
    records += [{**r, "brand": OTHER, "id": f"o{n}"} for n, r in enumerate(records[::5])]
    records.sort(key=lambda r: r["created_at_ms"])
    state = detect_state.fresh(DetectorConfig(), 60_000)
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    for offset, record in enumerate(records):
        mention = MentionEvent.from_record(record)
        detect_state.take(state, Disposition.FEED, offset, record, mention, pending, 0)
        if offset == len(records) - 50:
            detect_state.save(0, state, states, pending)
    return json.loads(json.dumps(states)), json.loads(json.dumps(pending))


def test_a_brand_no_longer_followed_is_named_with_its_open_storm(
    tables: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    states, pending = tables
    rebuilt = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, DetectorConfig(), 60_000
    )
    with capture_logs() as logs:
        assert unfollowed(rebuilt, frozenset({OTHER})) == [BRAND]
    [line] = [e for e in logs if e["event"] == "detect.brand_not_followed"]
    assert line["brand"] == BRAND and line["open_episodes"] == ["storm"]
    assert line["log_level"] == "error" and "`id:`" in line["hint"]
    with capture_logs() as logs:
        assert unfollowed(rebuilt, frozenset({BRAND, OTHER})) == []
    assert not logs
