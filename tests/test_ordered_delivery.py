"""Each source partition reaches the streams in order, without holes (``streams/kafka_fixes.py``).

A record fetched past the partition's next offset means records before it were lost on the
way to the streams (emptied queues, Faust's read-offset filter); delivering it would let the
stream run ahead, and the lost ones would come later, behind newer mentions, or never. The
consumer fetches again from the next offset instead. Runs Faust's own ``Consumer.getmany``
(the aiokafka driver's consumer) with the fetch replaced by canned records.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.transport.drivers.aiokafka import Consumer
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP

from streams import kafka_fixes
from streams.kafka_fixes import Delivery, next_delivery

SOURCE = TP("app.mentions.valid", 0)
CHANGELOG = TP("app-detector-state-changelog", 0)


def test_a_partition_is_delivered_from_its_seek_in_order() -> None:
    deliver: dict[Any, int] = {}
    refetched: dict[Any, int] = {}
    assert next_delivery(deliver, refetched, SOURCE, 46) is Delivery.DROP  # before the seek
    deliver[SOURCE] = 46  # the seek to the committed offset
    assert [next_delivery(deliver, refetched, SOURCE, o) for o in (46, 47, 47, 45)] == [
        Delivery.DELIVER,
        Delivery.DELIVER,
        Delivery.DROP,  # handed out already
        Delivery.DROP,
    ]
    assert deliver[SOURCE] == 48


def test_a_hole_is_fetched_again_once() -> None:
    deliver: dict[Any, int] = {SOURCE: 46}
    refetched: dict[Any, int] = {}
    assert next_delivery(deliver, refetched, SOURCE, 50) is Delivery.REFETCH
    assert deliver[SOURCE] == 46
    assert next_delivery(deliver, refetched, SOURCE, 46) is Delivery.DELIVER  # fetched again
    # A log without a record at 47 (a transaction marker): after one refetch, go on.
    assert next_delivery(deliver, refetched, SOURCE, 48) is Delivery.REFETCH
    assert next_delivery(deliver, refetched, SOURCE, 48) is Delivery.PAST_HOLE
    assert deliver[SOURCE] == 49 and refetched == {}


class Fetched:
    """Faust's aiokafka consumer with canned fetches and a recording seek."""

    def __init__(self, batches: list[list[tuple[TP, int]]]) -> None:
        kafka_fixes.install()
        consumer: Any = object.__new__(Consumer)
        consumer.app = SimpleNamespace(
            topics=SimpleNamespace(acks_enabled_for=lambda topic: "changelog" not in topic),
            consumer_generation_id=3,
            monitor=SimpleNamespace(track_tp_end_offset=lambda tp, offset: None),
        )
        consumer.flow_active = True
        consumer._stopped = consumer._crashed = asyncio.Event()  # a running service
        consumer.scheduler = DefaultSchedulingStrategy()  # type: ignore[abstract]
        consumer._buffered_partitions = set()
        consumer._read_offset = defaultdict(lambda: None)
        consumer._acked = defaultdict(list)
        consumer._acked_index = defaultdict(set)
        consumer.highwater = lambda tp: 10_000
        self.seeks: list[tuple[TP, int]] = []
        self.batches = batches

        async def wait_next_records(timeout: float) -> tuple[dict[TP, list[Any]], None]:
            records: dict[TP, list[Any]] = defaultdict(list)
            for tp, offset in self.batches.pop(0):
                records[tp].append(
                    ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])
                )
            return records, None

        async def call_thread(fun: Any, *args: Any) -> Any:
            return fun(*args)

        aiokafka = SimpleNamespace(seek=lambda tp, offset: self.seeks.append((tp, offset)))
        consumer._wait_next_records = wait_next_records
        consumer._thread = SimpleNamespace(
            call_thread=call_thread, _ensure_consumer=lambda: aiokafka
        )
        self.consumer = consumer

    def fetch(self) -> list[tuple[TP, int]]:
        async def collect() -> list[tuple[TP, int]]:
            return [(tp, m.offset) async for tp, m in self.consumer.getmany(1.0)]

        return asyncio.run(collect())


def test_records_past_a_hole_wait_for_the_refetch() -> None:
    fetched = Fetched(
        [
            [(SOURCE, 50), (SOURCE, 51), (CHANGELOG, 7)],  # 46 to 49 went missing
            [(SOURCE, 46), (SOURCE, 47), (SOURCE, 48), (SOURCE, 49), (SOURCE, 50)],
        ]
    )
    setattr(fetched.consumer, kafka_fixes._DELIVER, {SOURCE: 46})
    assert fetched.fetch() == [(CHANGELOG, 7)]  # a changelog is not held back
    assert fetched.seeks == [(SOURCE, 46)]
    assert fetched.fetch() == [(SOURCE, o) for o in range(46, 51)]


def test_a_hole_in_the_log_is_passed_and_counted_for_the_commit() -> None:
    # Offset 47 holds a transaction marker: the broker never returns a record for it.
    fetched = Fetched([[(SOURCE, 46), (SOURCE, 48)], [(SOURCE, 48), (SOURCE, 49)]])
    setattr(fetched.consumer, kafka_fixes._DELIVER, {SOURCE: 46})
    setattr(fetched.consumer, kafka_fixes._NEXT, {SOURCE: 46})
    assert fetched.fetch() == [(SOURCE, 46)]
    assert fetched.seeks == [(SOURCE, 47)]
    assert fetched.fetch() == [(SOURCE, 48), (SOURCE, 49)]
    for offset in (46, 48, 49):  # the agents process what they were given
        fetched.consumer._acked[SOURCE].append(offset)
        fetched.consumer._acked_index[SOURCE].add(offset)
    assert kafka_fixes.strict_new_offset(fetched.consumer, SOURCE) == 50


def test_faust_read_offset_cannot_drop_the_next_records() -> None:
    # Faust's fetch loop drops records below ``_read_offset``; after a seek back it can still
    # hold the offset of a record delivered before the seek.
    fetched = Fetched([[(SOURCE, 3320), (SOURCE, 3321)]])
    setattr(fetched.consumer, kafka_fixes._DELIVER, {SOURCE: 3320})
    fetched.consumer._read_offset[SOURCE] = 4127
    it = fetched.consumer.getmany(1.0)

    async def first() -> tuple[TP, Any]:
        result: tuple[TP, Any] = await it.__anext__()
        return result

    _tp, message = asyncio.run(first())
    assert message.offset == 3320
    assert fetched.consumer._read_offset[SOURCE] is None  # what the fetch loop reads next


def test_a_revoked_partition_is_held_until_its_next_seek() -> None:
    fetched = Fetched([[(SOURCE, 46)]])
    setattr(fetched.consumer, kafka_fixes._DELIVER, {SOURCE: 46})
    fetched.consumer.app.rebalancing = False

    async def revoke() -> None:
        revoked = kafka_fixes.Consumer.on_partitions_revoked
        # Faust's own bookkeeping after ours needs a started consumer.
        with contextlib.suppress(AttributeError):
            await revoked(fetched.consumer, {SOURCE})

    asyncio.run(revoke())
    assert getattr(fetched.consumer, kafka_fixes._DELIVER) == {}
    assert fetched.fetch() == []


class Position:
    """aiokafka's partition state as :func:`kafka_fixes.fetch_position` reads it."""

    def __init__(self, position: int) -> None:
        self.position = position
        self.paused = False
        self.has_valid_position = True


def with_positions(fetched: Fetched, positions: dict[TP, Position]) -> None:
    """Give the stand-in aiokafka consumer fetch positions; a seek moves them."""

    def seek(tp: TP, offset: int) -> None:
        fetched.seeks.append((tp, offset))
        positions[tp].position = offset

    assignment = SimpleNamespace(state_value=positions.get)
    aiokafka = SimpleNamespace(
        seek=seek,
        _subscription=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)),
    )
    fetched.consumer._thread._ensure_consumer = lambda: aiokafka


def test_a_transaction_marker_at_the_end_of_a_partition_is_committed_past() -> None:
    """A transactional collector ends each transaction with a marker, which the consumer never
    hands out: with no record after it, nothing showed it to be one, so the group's commit
    stayed one short of the end (lag 1, and the detect timer's upstream check held for good)."""
    fetched = Fetched([[(SOURCE, 46), (SOURCE, 47), (SOURCE, 48)], []])
    setattr(fetched.consumer, kafka_fixes._DELIVER, {SOURCE: 46})
    setattr(fetched.consumer, kafka_fixes._NEXT, {SOURCE: 46})
    state = Position(50)  # the fetch consumed 46 to 48 and the marker at 49
    with_positions(fetched, {SOURCE: state})
    assert fetched.fetch() == [(SOURCE, o) for o in (46, 47, 48)]
    assert fetched.seeks == [(SOURCE, 49)]  # fetched again once: it could be a lost record
    state.position = 50  # the refetch brought the marker only
    assert fetched.fetch() == []
    assert fetched.seeks == [(SOURCE, 49)]
    for offset in (46, 47, 48):
        fetched.consumer._acked[SOURCE].append(offset)
        fetched.consumer._acked_index[SOURCE].add(offset)
    assert kafka_fixes.strict_new_offset(fetched.consumer, SOURCE) == 50


def test_a_position_at_the_next_offset_changes_nothing() -> None:
    fetched = Fetched([[(SOURCE, 46), (SOURCE, 47)], []])
    setattr(fetched.consumer, kafka_fixes._DELIVER, {SOURCE: 46})
    with_positions(fetched, {SOURCE: Position(48)})
    assert fetched.fetch() == [(SOURCE, 46), (SOURCE, 47)]
    assert fetched.fetch() == []
    assert fetched.seeks == []


def test_a_hole_of_millions_of_offsets_is_one_range() -> None:
    """A group behind retention: the log starts 5 million offsets after the committed one. Each
    offset was appended to Faust's acked list and index (374 MB more and seconds of the event
    loop in the reviewer's run)."""
    fetched = Fetched([])
    consumer = fetched.consumer
    setattr(consumer, kafka_fixes._NEXT, {SOURCE: 3})
    kafka_fixes.ack_hole(consumer, SOURCE, 3, 5_000_003)
    assert len(consumer._acked[SOURCE]) == 0 and len(consumer._acked_index[SOURCE]) == 0
    assert kafka_fixes.strict_new_offset(consumer, SOURCE) == 5_000_003
    # Holes and processed records interleave; the run stops at the first offset missing.
    kafka_fixes.ack_hole(consumer, SOURCE, 5_000_010, 5_000_020)
    for offset in [*range(5_000_003, 5_000_010), *range(5_000_020, 5_000_025), 5_000_030]:
        consumer._acked[SOURCE].append(offset)
        consumer._acked_index[SOURCE].add(offset)
    assert kafka_fixes.strict_new_offset(consumer, SOURCE) == 5_000_025
    assert consumer._acked[SOURCE] == [5_000_030]
    assert kafka_fixes.strict_new_offset(consumer, SOURCE) is None
