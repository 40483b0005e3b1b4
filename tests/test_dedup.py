from __future__ import annotations

from streams.dedup import Deduplicator

HOUR = 3_600_000


def test_repeated_id_within_window_is_a_duplicate() -> None:
    dedup = Deduplicator({}, window_ms=24 * HOUR)
    assert dedup.is_duplicate("x:1", 0, partition=0, offset=10) is False
    assert dedup.is_duplicate("x:1", 0, partition=0, offset=11) is True  # feed redelivered it
    assert dedup.is_duplicate("x:1", HOUR, partition=2, offset=5) is True  # any partition
    assert dedup.is_duplicate("x:2", 0, partition=0, offset=12) is False


def test_same_record_redelivered_by_kafka_is_not_a_duplicate() -> None:
    dedup = Deduplicator({}, window_ms=HOUR)
    assert dedup.is_duplicate("x:1", 0, partition=1, offset=7) is False
    # The worker crashed before committing offset 7 and reads it again: pass it on again.
    assert dedup.is_duplicate("x:1", 0, partition=1, offset=7) is False


def test_entries_expire_with_the_event_time_watermark() -> None:
    store: dict[str, list[int]] = {}
    dedup = Deduplicator(store, window_ms=HOUR)
    for i in range(100):
        assert dedup.is_duplicate(f"x:{i}", i * 60_000, partition=0, offset=i) is False
    # 100 minutes of ids, 1 hour window: only the last hour is remembered.
    assert 55 <= len(store) <= 62
    assert len(dedup) == len(store)
    assert dedup.is_duplicate("x:0", 100 * 60_000, partition=0, offset=500) is False  # forgotten
    assert dedup.is_duplicate("x:99", 100 * 60_000, partition=0, offset=501) is True


def test_memory_stays_bounded_over_a_long_stream() -> None:
    store: dict[str, list[int]] = {}
    dedup = Deduplicator(store, window_ms=HOUR)
    for i in range(20_000):
        dedup.is_duplicate(f"x:{i}", i * 1000, partition=i % 3, offset=i)
    assert len(store) <= 3 * 3700


def test_rebuild_after_restart_keeps_expiring() -> None:
    store: dict[str, list[int]] = {}
    first = Deduplicator(store, window_ms=HOUR)
    for i in range(10):
        first.is_duplicate(f"x:{i}", i * 60_000, partition=0, offset=i)
    # A new worker recovers the table from the changelog and rebuilds its index.
    second = Deduplicator(store, window_ms=HOUR)
    second.rebuild(generation=1)
    assert second.is_duplicate("x:3", 3 * 60_000, partition=0, offset=99) is True
    second.is_duplicate("x:new", 3 * HOUR, partition=0, offset=100)
    assert set(store) == {"x:new"}


def test_window_zero_disables() -> None:
    store: dict[str, list[int]] = {}
    dedup = Deduplicator(store, window_ms=0)
    assert dedup.is_duplicate("x:1", 0, 0, 0) is False
    assert dedup.is_duplicate("x:1", 0, 0, 1) is False
    assert store == {}


def test_a_record_that_failed_forgets_the_id_it_recorded() -> None:
    """A record dead-lettered after its id was recorded: re-sent from the dead-letter topic
    (another offset), it is taken, not dropped as a duplicate of its failed self."""
    d = Deduplicator({}, window_ms=1000)
    assert not d.is_duplicate("x:1", 100, partition=0, offset=5)
    d.forget(partition=0, offset=5)
    assert not d.is_duplicate("x:1", 100, partition=0, offset=9)
    # Only the failed record's own id, and only if it recorded one.
    assert not d.is_duplicate("x:2", 100, partition=0, offset=10)
    d.forget(partition=0, offset=11)  # that record recorded nothing
    assert d.is_duplicate("x:2", 100, partition=0, offset=12)
    d.forget(partition=1, offset=10)  # same offset, another partition
    assert d.is_duplicate("x:2", 100, partition=0, offset=13)


def test_a_failed_record_forgets_every_id_it_recorded() -> None:
    """Validation records one key per brand a mention goes to: forget() un-records them all,
    and only those of the failed record."""
    d = Deduplicator({}, window_ms=1000)
    assert not d.is_duplicate("b/x:1", 100, partition=0, offset=4)
    assert not d.is_duplicate("a/x:1", 100, partition=0, offset=5)
    assert d.is_duplicate("b/x:1", 100, partition=0, offset=5)  # offset 4 recorded it
    assert not d.is_duplicate("c/x:1", 100, partition=0, offset=5)
    d.forget(partition=0, offset=5)
    assert not d.is_duplicate("a/x:1", 100, partition=0, offset=9)
    assert d.is_duplicate("b/x:1", 100, partition=0, offset=10)
    d.forget(partition=0, offset=10)  # recorded nothing: b/x:1 stays offset 4's
    assert not d.is_duplicate("c/x:1", 100, partition=0, offset=11)
    assert d.is_duplicate("b/x:1", 100, partition=0, offset=12)


def test_expiry_on_one_partition_keeps_a_key_another_partition_holds() -> None:
    """Expiry deletes only keys first seen on the partition being processed (a Faust table
    writes each change to that partition's changelog): a key forgotten on partition 0 and
    recorded again, with the same event time, on partition 1 is still held for partition 1
    when partition 0's watermark moves past it."""
    store: dict[str, list[int]] = {}
    d = Deduplicator(store, window_ms=HOUR)
    assert not d.is_duplicate("x:1", 1000, partition=0, offset=5)
    d.forget(partition=0, offset=5)  # dead-lettered: partition 0's heap still lists it
    assert not d.is_duplicate("x:1", 1000, partition=1, offset=7)
    d.is_duplicate("y:1", 1000 + 2 * HOUR, partition=0, offset=6)  # partition 0 moves on
    assert store["x:1"] == [1000, 1, 7]
    assert d.is_duplicate("x:1", 1000, partition=1, offset=8) is True


def test_a_rebuilt_index_remembers_each_partitions_watermark() -> None:
    """The watermark is the highest event time seen, before a restart too: after a rebuild,
    records dated more than the window behind it expire as they would have without the
    restart, not as if the partition's clock had gone back to them."""

    def run(restart: bool) -> set[str]:
        store: dict[str, list[int]] = {}
        d = Deduplicator(store, window_ms=HOUR)
        d.is_duplicate("a", 0, partition=0, offset=1)
        d.is_duplicate("b", 2 * HOUR, partition=0, offset=2)
        if restart:
            d = Deduplicator(store, window_ms=HOUR)
            d.rebuild(generation=1)
        d.is_duplicate("late", 30 * 60_000, partition=0, offset=3)
        d.is_duplicate("later", 30 * 60_000, partition=0, offset=4)
        return set(store)

    assert run(restart=False) == {"b", "later"}
    assert run(restart=True) == {"b", "later"}


def test_an_id_exactly_one_window_apart_is_still_a_duplicate() -> None:
    """Two copies of an id count as one when their event times are at most the window apart:
    exactly the window is a duplicate, a millisecond more is not."""
    d = Deduplicator({}, window_ms=HOUR)
    assert not d.is_duplicate("x:1", 0, partition=0, offset=1)
    # Other partitions: partition 0's entries are not expired by them.
    assert d.is_duplicate("x:1", HOUR, partition=1, offset=1) is True
    assert d.is_duplicate("x:1", -HOUR, partition=2, offset=1) is True
    assert d.is_duplicate("x:1", HOUR + 1, partition=3, offset=1) is False


def test_an_entry_expires_only_once_the_watermark_is_more_than_the_window_past_it() -> None:
    """Entries expire once the watermark has moved *more than* the window past them: at exactly
    the window the entry is kept (a copy then is still caught), a millisecond later it goes."""
    store: dict[str, list[int]] = {}
    d = Deduplicator(store, window_ms=HOUR)
    d.is_duplicate("x:1", 0, partition=0, offset=1)
    d.is_duplicate("y:1", HOUR, partition=0, offset=2)
    assert "x:1" in store
    d.is_duplicate("z:1", HOUR + 1, partition=0, offset=3)
    assert "x:1" not in store
    assert set(store) == {"y:1", "z:1"}
