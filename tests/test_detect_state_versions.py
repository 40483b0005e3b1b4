"""A saved detector state the code cannot read whole (a rollback, a rolling upgrade, a damaged
record) costs that one brand its history, never the partition: the rebuild runs while Faust
completes a rebalance, and an exception there stopped the worker on every restart.

Each test rebuilds a partition of two brands, ``acme`` (an open storm, its state altered) and
``globex`` (untouched), and checks the good brand comes back as it was saved."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client import REGISTRY

from detectors.brand import STATE_VERSION, BrandDetector, StateMismatch
from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent
from streams.agents import detect_state
from tests.detector_support import DAY, MINUTE, T0, stream

DISCARDED = "stormvarsel_detector_states_discarded_total"
LATENESS_MS = 60_000


def _detector(brand: str, storm: bool, seed: int) -> BrandDetector:
    events = list(stream(brand, T0, 2 * 1440, lambda t: 2.0, 0.2, seed=seed))
    if storm:
        events += stream(brand, T0 + 2 * DAY, 20, lambda t: 12.0, 0.8, seed=seed + 10)
    else:
        events += stream(brand, T0 + 2 * DAY, 20, lambda t: 2.0, 0.2, seed=seed + 10)
    d = BrandDetector(brand)
    for e in events:
        d.observe(e)
        d.advance(e.event_ms - LATENESS_MS)
    return d


@pytest.fixture(scope="module")
def saved() -> dict[str, dict[str, Any]]:
    acme, globex = _detector("acme", True, 1), _detector("globex", False, 2)
    assert "storm" in acme.episodes and not globex.episodes
    mark = T0 + 2 * DAY + 20 * MINUTE
    return {
        d.brand: {"partition": 0, "state": d.to_state(), "max": mark, "adv": None, "offset": 99}
        for d in (acme, globex)
    }


def _rebuild(states: dict[str, dict[str, Any]]) -> detect_state.PartitionState:
    parts = detect_state.rebuild(sorted(states.items()), [], {0}, DetectorConfig(), LATENESS_MS)
    return parts[0]


def _discarded() -> float:
    return REGISTRY.get_sample_value(DISCARDED) or 0.0


def _assert_good_brand_survives(
    part: detect_state.PartitionState, saved: dict[str, dict[str, Any]]
) -> None:
    globex = part.replayer.detectors["globex"]
    assert globex.to_state() == saved["globex"]["state"]
    assert part.saved_offset["globex"] == 99


def test_an_unknown_key_in_an_episode_is_ignored(saved: dict[str, dict[str, Any]]) -> None:
    states = copy.deepcopy(saved)
    states["acme"]["state"]["episodes"]["storm"]["new_field"] = [1, 2]
    states["acme"]["state"]["new_top_level"] = {"x": 1}
    before = _discarded()
    part = _rebuild(states)
    assert _discarded() == before
    _assert_good_brand_survives(part, saved)
    acme = part.replayer.detectors["acme"]
    assert acme.to_state() == saved["acme"]["state"]  # the unknown keys are gone, nothing else


def test_a_missing_optional_field_takes_its_default(saved: dict[str, dict[str, Any]]) -> None:
    states = copy.deepcopy(saved)
    acme = states["acme"]["state"]
    for key in ("brand_replies", "peak_figures", "escalations", "end_ms"):
        del acme["episodes"]["storm"][key]
    for key in ("reach", "share_positives", "late", "buzz_held"):
        del acme[key]
    before = _discarded()
    part = _rebuild(states)
    assert _discarded() == before
    _assert_good_brand_survives(part, saved)
    episode = part.replayer.detectors["acme"].episodes["storm"]
    assert episode.brand_replies == 0 and episode.escalations == [] and episode.end_ms is None
    assert part.abandoned == []


@pytest.mark.parametrize(
    "garbage",
    [
        "not a state",
        None,
        {"version": STATE_VERSION, "brand": "acme"},
        "closed_until",  # a field of the wrong type (see below)
        "episode",
    ],
)
def test_a_garbage_state_drops_that_brand_only(
    saved: dict[str, dict[str, Any]], garbage: Any
) -> None:
    states = copy.deepcopy(saved)
    if garbage == "closed_until":
        states["acme"]["state"]["closed_until"] = "yesterday"
    elif garbage == "episode":
        states["acme"]["state"]["episodes"]["storm"]["start_ms"] = {"no": "time"}
    else:
        states["acme"]["state"] = garbage
    before = _discarded()
    part = _rebuild(states)
    assert _discarded() == before + 1
    _assert_good_brand_survives(part, saved)
    assert "acme" not in part.replayer.detectors
    assert part.dropped == ["acme"]
    if garbage == "closed_until":
        # Its episodes cannot be dated: nothing to abandon (no crash either).
        assert part.abandoned == []


def test_an_unreadable_state_abandons_the_episodes_it_can_read(
    saved: dict[str, dict[str, Any]],
) -> None:
    states = copy.deepcopy(saved)
    states["acme"]["state"]["baseline"] = "broken"
    part = _rebuild(states)
    _assert_good_brand_survives(part, saved)
    assert [(e.type, e.episode["kind"]) for e in part.abandoned if isinstance(e, EpisodeEvent)] == [
        ("abandoned", "storm")
    ]


def test_a_newer_state_version_is_refused_with_what_to_do(
    saved: dict[str, dict[str, Any]],
) -> None:
    states = copy.deepcopy(saved)
    states["acme"]["state"]["version"] = STATE_VERSION + 1
    with pytest.raises(StateMismatch, match=r"upgrade every worker.*reset-state"):
        BrandDetector.from_state(states["acme"]["state"], DetectorConfig(), retune=True)
    before = _discarded()
    part = _rebuild(states)
    assert _discarded() == before + 1
    _assert_good_brand_survives(part, saved)
    assert "acme" not in part.replayer.detectors
    assert [e.type for e in part.abandoned if isinstance(e, EpisodeEvent)] == ["abandoned"]
