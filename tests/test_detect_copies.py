"""The detect stage's check for copies that upstream stages wrote twice after redoing work."""

from __future__ import annotations

from typing import Any

from detectors.config import DetectorConfig
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents import detect_state
from streams.agents.detect import COPY_WINDOW_RECORDS, admit, is_copy
from streams.agents.detect_state import PartitionState
from streams.dedup import Deduplicator

DAY_MS = 86_400_000


def mention(mention_id: str, event_ms: int, brand: str = "united") -> MentionEvent:
    return MentionEvent(brand, event_ms, "negative", platform="x", mention_id=mention_id)


def test_a_copy_is_recognised_however_much_event_time_the_records_between_span() -> None:
    """A backlog caught up at speed crosses days of event time in a few thousand records; the
    copy written by a redone upstream stage must still be dropped (it was counted twice when
    the window was in event time)."""
    ids = Deduplicator({}, COPY_WINDOW_RECORDS)
    assert not is_copy(ids, mention("a", 0), 0, 10, None)
    for offset in range(11, 3_000):
        event_ms = offset * 3 * DAY_MS // 3_000
        assert not is_copy(ids, mention(f"m{offset}", event_ms), 0, offset, None)
    assert is_copy(ids, mention("a", 0), 0, 3_000, None)


def test_the_same_record_read_again_is_not_a_copy() -> None:
    """A redelivery (same partition and offset) is not a second mention; only another offset is."""
    ids = Deduplicator({}, COPY_WINDOW_RECORDS)
    assert not is_copy(ids, mention("a", 5), 1, 7, None)
    assert not is_copy(ids, mention("a", 5), 1, 7, None)
    assert is_copy(ids, mention("a", 5), 1, 8, None)


def test_the_same_id_of_another_brand_is_its_own_mention() -> None:
    ids = Deduplicator({}, COPY_WINDOW_RECORDS)
    assert not is_copy(ids, mention("a", 5, "united"), 0, 1, None)
    assert not is_copy(ids, mention("a", 5, "delta"), 0, 2, None)


def test_memory_is_bounded_by_the_window_in_records() -> None:
    window = 100
    ids = Deduplicator({}, window)
    for offset in range(1_000):
        is_copy(ids, mention(f"m{offset}", offset), 0, offset, None)
    assert len(ids) <= window + 1
    assert len(ids.store) <= window + 1
    # An id older than the window is forgotten: a record that far back is not a redone copy.
    assert not is_copy(ids, mention("m0", 0), 0, 1_000, None)


def test_mentions_without_an_id_are_never_copies() -> None:
    ids = Deduplicator({}, COPY_WINDOW_RECORDS)
    assert not is_copy(ids, mention("", 5), 0, 1, None)
    assert not is_copy(ids, mention("", 5), 0, 2, None)


def test_a_copy_is_dropped_even_if_the_kill_lost_its_originals_id() -> None:
    """The ids table's changelog is flushed apart from the others: a kill can keep a record's
    pending entry and lose its id. The rebuild replays the record and Kafka redelivers it
    (skipped: counted already); a copy of it the redone upstream stages wrote after it was
    counted a second time, as the skipped record never wrote its id again."""
    t0 = 1_772_409_600_000
    records = [
        {
            "id": f"p{i}",
            "text": "x",
            "created_at_ms": t0 + i * 1000,
            "brand": "acme",
            "platform": "x",
            "sentiment": {"label": "negative"},
        }
        for i in range(10)
    ]

    def run(
        state: PartitionState, dedup: Deduplicator, generation: str, start: int
    ) -> PartitionState:
        for offset in range(start, len(records)):
            mention = MentionEvent.from_record(records[offset])
            kind = admit(state, dedup, mention, 0, offset, generation)
            if kind is not None:
                detect_state.take(state, kind, offset, records[offset], mention, pending, 0)
        return state

    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    ids: dict[str, Any] = {}
    run(PartitionState(Replayer(None, 60_000)), Deduplicator(ids, COPY_WINDOW_RECORDS), "g1", 0)
    # Killed with offsets 0-5 committed; the ids of offsets 7-9 lost, the pending entries kept.
    kept_ids = {key: entry for key, entry in ids.items() if entry[2] <= 6}
    records.extend([records[8], records[9]])  # the copies, at offsets 10 and 11
    rebuilt = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, DetectorConfig(), 60_000
    )[0]
    state = run(rebuilt, Deduplicator(kept_ids, COPY_WINDOW_RECORDS), "g2", 6)
    assert state.replayer.detectors["acme"].observed_total == 10
