"""A brand state too large for a Kafka record is not saved (``detect_state.MAX_STATE_BYTES``):
the producer would refuse the changelog record and stop the worker, on every restart. Its
mentions stay pending instead, so a rebuild comes to the same detector."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from detectors.events import MentionEvent
from streams import encoded_values
from streams.agents import detect_state
from streams.agents.detect_state import Disposition, PartitionState
from streams.detector_seeds import SeedBook, covered
from tests.storm_scenario import BRAND, phases

OTHER = "globex"
UNSAVED = "stormvarsel_detector_states_unsaved_total"


def _records() -> list[dict[str, Any]]:
    scenario = phases()
    records = scenario["calm"][:3000]
    records += [{**r, "brand": OTHER, "id": f"o{n}"} for n, r in enumerate(records[::5])]
    return sorted(records, key=lambda r: r["created_at_ms"])


def _feed(
    state: PartitionState, records: list[dict[str, Any]], pending: dict[str, Any], start: int
) -> None:
    for offset, record in enumerate(records, start):
        mention = MentionEvent.from_record(record)
        detect_state.take(state, Disposition.FEED, offset, record, mention, pending, 0)


def _sizes(records: list[dict[str, Any]]) -> dict[str, int]:
    state = detect_state.fresh(DetectorConfig(), 60_000)
    states: dict[str, Any] = {}
    _feed(state, records, {}, 0)
    detect_state.save(0, state, states, {})
    return {brand: len(encoded_values.dumps(value)) for brand, value in states.items()}


def assert_rebuilds_the_same(
    state: PartitionState,
    states: dict[str, Any],
    pending: dict[str, Any],
    seed: SeedBook | None = None,
) -> dict[str, BrandDetector]:
    """A rebuild from the tables (through JSON, as Kafka keeps them, and with ``seed`` as after
    ``topics reset-state``) comes to the stage's detectors, brand for brand; returns the
    rebuilt ones."""
    rebuilt = detect_state.rebuild(
        json.loads(json.dumps(list(states.items()))),
        json.loads(json.dumps(list(pending.items()))),
        {0},
        DetectorConfig(),
        60_000,
        seed,
    )
    detectors = rebuilt[0].replayer.detectors
    assert set(detectors) == set(state.replayer.detectors)
    for brand, detector in state.replayer.detectors.items():
        assert detectors[brand].to_state() == detector.to_state(), brand
    return detectors


def _unsaved() -> float:
    return REGISTRY.get_sample_value(UNSAVED) or 0.0


def test_a_state_over_the_record_limit_stays_pending_and_rebuilds_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BRAND is saved once, then its state grows past the limit (lowered here to fall between
    the two brands' states): the next saves leave it out and keep its mentions pending, and a
    rebuild from the tables comes to the detector the stage had."""
    records = _records()
    first, second = len(records) // 3, 2 * len(records) // 3
    sizes = _sizes(records[:second])
    assert sizes[OTHER] < sizes[BRAND]
    state = detect_state.fresh(DetectorConfig(), 60_000)
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    _feed(state, records[:first], pending, 0)
    detect_state.save(0, state, states, pending)
    assert set(states) == {BRAND, OTHER}
    saved = states[BRAND]

    monkeypatch.setattr(detect_state, "MAX_STATE_BYTES", (sizes[OTHER] + sizes[BRAND]) // 2)
    _feed(state, records[first:second], pending, first)
    before = _unsaved()
    with capture_logs() as logs:
        detect_state.save(0, state, states, pending)
    assert states[BRAND] is saved and states[OTHER]["offset"] == second - 1
    assert _unsaved() == before + 1
    [line] = [e for e in logs if e["event"] == "detect.state_too_large"]
    assert line["log_level"] == "error" and line["brand"] == BRAND
    assert line["bytes"] == sizes[BRAND] and line["limit"] == detect_state.MAX_STATE_BYTES

    # More mentions and another save, which forgets the mentions the earlier saves covered:
    # BRAND's since its first save are all still pending.
    _feed(state, records[second:], pending, second)
    detect_state.save(0, state, states, pending)
    kept = [v for v in pending.values() if v["mention"]["brand"] == BRAND]
    assert len(kept) == sum(1 for r in records[first:] if r["brand"] == BRAND)

    # A restart rebuilds BRAND from its first save and its pending mentions: the detector the
    # stage had.
    assert_rebuilds_the_same(state, states, pending)

    # Under the limit again, BRAND's state is saved at its next save.
    monkeypatch.setattr(detect_state, "MAX_STATE_BYTES", 1_000_000)
    state.replayer.advance(records[-1]["created_at_ms"] + 10 * 60_000)
    detect_state.save(0, state, states, pending)
    assert states[BRAND] is not saved
    assert states[BRAND]["state"] == state.replayer.detectors[BRAND].to_state()


@pytest.mark.parametrize("other_first", [True, False], ids=["other-brand-first", "brand-first"])
def test_a_brand_whose_first_state_is_too_large_rebuilds_from_its_first_mention(
    monkeypatch: pytest.MonkeyPatch, other_first: bool
) -> None:
    """BRAND was never saved: its marker holds the watermark of its first mention (or none, if
    it came first on the partition). Without it the rebuild started from OTHER's later
    watermark, counted BRAND's mentions late, and came to another detector."""
    records = _records()
    if other_first:
        # OTHER alone for its first 200 mentions (hours), then both.
        since = [r for r in records if r["brand"] == OTHER][200]["created_at_ms"]
        records = [r for r in records if r["brand"] == OTHER or r["created_at_ms"] > since]
    half = len(records) // 2
    sizes = _sizes(records[:half])
    monkeypatch.setattr(detect_state, "MAX_STATE_BYTES", (sizes[OTHER] + sizes[BRAND]) // 2)
    state = detect_state.fresh(DetectorConfig(), 60_000)
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    _feed(state, records[:half], pending, 0)
    detect_state.save(0, state, states, pending)
    first = next(r for r in records if r["brand"] == BRAND)
    marker = states[BRAND]
    assert "state" not in marker and marker["unsaved"] is True
    if other_first:
        assert marker["max"] is not None and marker["max"] <= first["created_at_ms"]
    else:
        assert marker["max"] is None
    _feed(state, records[half:], pending, half)
    detect_state.save(0, state, states, pending)
    assert states[BRAND] == marker  # written once

    rebuilt = assert_rebuilds_the_same(state, states, pending)
    assert rebuilt[BRAND].late_total == state.replayer.detectors[BRAND].late_total == 0


def test_a_seeded_brand_whose_first_state_is_too_large_is_seeded_again_by_a_rebuild(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After ``topics reset-state`` a brand starts from its seed. If its first state is too
    large, its marker must not make it "known" to the tables: a rebuild then started it from
    nothing (600 mentions counted of its 2,600), without its baselines or episodes."""
    calm = phases()["calm"]
    seeding = detect_state.fresh(DetectorConfig(), 60_000)
    _feed(seeding, calm[:2000], {}, 0)
    seed_state = seeding.replayer.detectors[BRAND].to_state()
    seeds = json.loads(json.dumps({BRAND: {"state": seed_state}}))
    monkeypatch.setattr(detect_state, "MAX_STATE_BYTES", len(json.dumps(seed_state)) // 2)

    state = detect_state.fresh(DetectorConfig(), 60_000, SeedBook(seeds, DetectorConfig()), (), 0)
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    _feed(state, calm[2000:2600], pending, 0)
    detect_state.save(0, state, states, pending)
    assert states[BRAND]["unsaved"] is True
    assert state.replayer.detectors[BRAND].observed_total == 2600
    assert_rebuilds_the_same(state, states, pending, SeedBook(seeds, DetectorConfig()))
    # And `reset-state` run again names the pending mentions the seed does not hold yet.
    assert BRAND in covered(states, pending)


def _padded_dumps(value: Any) -> bytes:
    """``encoded_values.dumps`` under which BRAND's saved value counts as too large."""
    out = json.dumps(value, separators=(",", ":")).encode()
    state = value.get("state") if isinstance(value, dict) else None
    if isinstance(state, dict) and state.get("brand") == BRAND:
        return out + b" " * 2_000_000
    return out


def test_while_a_brand_is_unsaved_no_pending_mention_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An OTHER mention moves the partition's watermark ten minutes on, and BRAND's next
    mentions come in behind it (late). While BRAND is unsaved, OTHER's saves went on deleting
    the pending entries they covered, that mention's too: a rebuild replayed BRAND's mentions
    from its old watermark without it, and counted none of the 24 late."""
    calm = phases()["calm"]
    first = calm[:1500]
    jump = first[-1]["created_at_ms"] + 10 * 60_000

    def other(n: int, at_ms: int) -> dict[str, Any]:
        return {**first[0], "brand": OTHER, "id": f"o{n}", "created_at_ms": at_ms}

    state = detect_state.fresh(DetectorConfig(), 60_000)
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    records = [other(0, first[0]["created_at_ms"]), *first]
    _feed(state, records, pending, 0)
    detect_state.save(0, state, states, pending)
    monkeypatch.setattr(encoded_values, "dumps", _padded_dumps)
    more = [other(1, jump), *calm[1500:1530]]
    _feed(state, more, pending, len(records))
    detect_state.save(0, state, states, pending)  # OTHER saved, BRAND not
    _feed(state, [other(2, jump + 2 * 60_000)], pending, len(records) + len(more))
    detect_state.save(0, state, states, pending)  # deleted o1's entry before the fix
    assert any(v["mention"]["id"] == "o1" for v in pending.values())
    monkeypatch.undo()
    rebuilt = assert_rebuilds_the_same(state, states, pending)
    assert rebuilt[BRAND].late_total == state.replayer.detectors[BRAND].late_total == 24
