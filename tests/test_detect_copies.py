"""The detect stage's check for copies that upstream stages wrote twice after redoing work."""

from __future__ import annotations

from detectors.events import MentionEvent
from streams.agents.detect import COPY_WINDOW_RECORDS, is_copy
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
