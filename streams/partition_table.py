"""A Faust table written for one partition's keys outside stream iteration.

Faust takes a table write's changelog partition from the current event: the detect stage's
timer has none, and a callback run when Kafka answers a send (the validation stage forgetting
a dead-lettered copy's id) may run after its event is gone.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any


class PartitionTable(MutableMapping[str, Any]):
    """A Faust table written outside stream iteration, for one partition's keys: Faust takes a
    write's changelog partition from the current event, which may be absent. Same store and
    same changelog records as a write in the stream of that partition. Needs the memory store
    (the app's): RocksDB picks its database by the current event too.
    ``tests/test_detect_timer_save.py`` proves it on the real Kafka."""

    def __init__(self, table: Any, partition: int) -> None:
        self.table = table
        self.partition = partition

    def __getitem__(self, key: str) -> Any:
        return self.table.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.table.data[key] = value
        self.table.send_changelog(self.partition, key, value)

    def __delitem__(self, key: str) -> None:
        del self.table.data[key]
        self.table.send_changelog(self.partition, key, None, value_serializer="raw")

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.data)

    def __len__(self) -> int:
        return len(self.table.data)
