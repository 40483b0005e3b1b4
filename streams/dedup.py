"""Drop mentions whose id was already seen within an event-time window, in bounded memory.

The store is any mutable mapping; the worker passes a changelog-backed Faust table so a restarted
worker still remembers what it saw. Entries are ``[event_ms, partition, offset]`` of the first
occurrence:

- the same id from a *different* record is a duplicate (a feed redelivered the post);
- the same id from the *same* record (partition and offset) is Kafka redelivering it after a crash
  before the offset was committed. That is not a duplicate: dropping it could lose the mention if
  its output had not been written yet.

Entries expire once the partition's event-time watermark (highest event time seen) has moved more
than the window past them, so memory is bounded by the ids seen per window, not by history. Expiry
only deletes keys first seen on the current partition, because a Faust table writes each change to
the changelog partition of the event being processed.

One record may record several keys (validation records one per brand the mention goes to);
:meth:`forget` un-records all the keys the failed record recorded, :meth:`forget_key` one of
them (one brand's copy was dead-lettered).
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping

Entry = list[int]  # [event_ms, partition, offset]


class Deduplicator:
    def __init__(self, store: MutableMapping[str, Entry], window_ms: int) -> None:
        self.store = store
        self.window_ms = window_ms
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._watermarks: dict[int, int] = {}
        self._generation: object = None
        #: (partition, offset) of the record that recorded last, and the ids it recorded, for
        #: :meth:`forget`.
        self._last: tuple[int, int, list[str]] | None = None

    def rebuild(self, generation: object) -> None:
        """Re-index the store (after a restart or a rebalance brought other partitions)."""
        if generation == self._generation:
            return
        self._generation = generation
        self._heaps = {}
        for key, entry in list(self.store.items()):
            event_ms, partition = int(entry[0]), int(entry[1])
            self._heaps.setdefault(partition, []).append((event_ms, key))
            self._watermarks[partition] = max(self._watermarks.get(partition, event_ms), event_ms)
        for heap in self._heaps.values():
            heapq.heapify(heap)

    def is_duplicate(self, mention_id: str, event_ms: int, partition: int, offset: int) -> bool:
        """Record the id, or say it is a duplicate; expire old entries of this partition."""
        if self.window_ms <= 0:
            return False
        watermark = max(self._watermarks.get(partition, event_ms), event_ms)
        self._watermarks[partition] = watermark
        self._expire(partition, watermark - self.window_ms)
        entry = self.store.get(mention_id)
        if entry is not None and abs(event_ms - int(entry[0])) <= self.window_ms:
            return not (int(entry[1]) == partition and int(entry[2]) == offset)
        self.store[mention_id] = [event_ms, partition, offset]
        heapq.heappush(self._heaps.setdefault(partition, []), (event_ms, mention_id))
        if self._last is not None and self._last[:2] == (partition, offset):
            self._last[2].append(mention_id)
        else:
            self._last = (partition, offset, [mention_id])
        return False

    def forget(self, partition: int, offset: int) -> None:
        """Un-record the ids that the record at (partition, offset) recorded last, if it did: the
        record failed and went to the dead-letter topic, and once re-sent from there it must
        not be dropped as a copy of itself."""
        if self._last is None or self._last[:2] != (partition, offset):
            return
        mention_ids = self._last[2]
        self._last = None
        for mention_id in mention_ids:
            entry = self.store.get(mention_id)
            if entry is not None and (int(entry[1]), int(entry[2])) == (partition, offset):
                del self.store[mention_id]

    def forget_key(
        self,
        mention_id: str,
        partition: int,
        offset: int,
        store: MutableMapping[str, Entry] | None = None,
    ) -> None:
        """Un-record ``mention_id`` if the record at (partition, offset) recorded it: one of
        the record's copies went to the dead-letter topic instead of on (validation records a
        key per brand), and that copy, ingested again once the cause is fixed, must not be
        dropped as a copy of itself. A key another record has recorded since is kept.
        ``store``: the same entries written another way (a view of a Faust table for the
        record's partition, when this runs outside the record's processing)."""
        target = self.store if store is None else store
        entry = target.get(mention_id)
        if entry is not None and (int(entry[1]), int(entry[2])) == (partition, offset):
            del target[mention_id]

    def _expire(self, partition: int, cutoff_ms: int) -> None:
        heap = self._heaps.get(partition)
        while heap and heap[0][0] < cutoff_ms:
            event_ms, key = heapq.heappop(heap)
            entry = self.store.get(key)
            if entry is not None and int(entry[0]) == event_ms and int(entry[1]) == partition:
                del self.store[key]

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())
