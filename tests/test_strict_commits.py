"""Commits never pass a source record that no agent processed (``streams/kafka_fixes.py``).

Runs Faust's own consumer bookkeeping (``Consumer.ack`` and the commit offset) on messages the
way a stream leaves them: *tracked* once handed to an agent, untracked when the stream skipped
them during a rebalance (old generation, paused flow) and acked them anyway.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any
from weakref import WeakSet

from faust.transport.drivers.aiokafka import Consumer
from faust.types.tuples import TP, ConsumerMessage

from streams import kafka_fixes

SOURCE = TP("app.mentions.scored", 3)


def consumer_expecting(next_offset: int) -> Any:
    """Faust's aiokafka consumer with only the state its ack and commit bookkeeping use."""
    kafka_fixes.install()
    consumer: Any = object.__new__(Consumer)
    consumer.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True))
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._acked = defaultdict(list)
    consumer._acked_index = defaultdict(set)
    consumer._n_acked = 0
    consumer._unacked_messages = WeakSet()
    consumer._waiting_for_ack = None
    setattr(consumer, kafka_fixes._NEXT, {SOURCE: next_offset})
    return consumer


def finish(consumer: Any, offset: int, *, processed: bool, tp: TP = SOURCE) -> None:
    """A stream lets go of a record: processed by an agent, or skipped."""
    message = ConsumerMessage(tp.topic, tp.partition, offset, 0.0, 0, [], b"k", b"v", None)
    message.refcount = 1
    message.tracked = processed  # what Faust's stream sets once past its skip checks
    message.ack(consumer)


def test_skipped_records_hold_the_commit_until_they_are_processed() -> None:
    consumer = consumer_expecting(540)
    finish(consumer, 540, processed=True)
    for offset in range(541, 2022):  # prefetched, then skipped when a rebalance began
        finish(consumer, offset, processed=False)
    assert consumer._new_offset(SOURCE) == 541, "a commit past records never processed"
    assert consumer._new_offset(SOURCE) is None

    # After the rebalance the seek fetches them again, and this time they are processed.
    for offset in range(541, 2023):
        finish(consumer, offset, processed=True)
    assert consumer._new_offset(SOURCE) == 2023


def test_changelog_records_are_acked_as_faust_does() -> None:
    consumer = consumer_expecting(0)
    changelog = TP("app-detector-state-changelog", 3)
    finish(consumer, 7, processed=False, tp=changelog)
    assert consumer._acked[changelog] == [7]
