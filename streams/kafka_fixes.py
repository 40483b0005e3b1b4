"""Fixes for Kafka client bugs the chaos tests found, installed by ``build_app``.

**Lost records after a rebalance.** ``tests/test_chaos_rebalance.py`` lost hundreds of
mentions in some runs when a second worker joined or left while mentions were flowing. What
happens (faust-streaming 0.15, aiokafka 0.14):

1. A rebalance starts while records of a partition sit prefetched in the consumer. Faust skips
   them (their generation is old, or flow is paused).
2. After the assignment Faust "seeks stream partitions to committed offsets", so that skipped
   records are fetched again. But aiokafka's ``seek_to_committed`` only seeks when the group has
   committed an offset above 0: a partition with no commit yet (a new topic or group, a partition
   that only just received its first records) keeps its fetch position *after* the skipped
   records.
3. Faust commits the highest run of consecutive acked offsets. It checks for a hole before that
   run only when it knows a committed offset above 0, and even then lets a hole of exactly one
   record through (``min(acked) - committed > 1``). The records in the hole are never processed.

4. Faust *acks* the records a stream skips (so that the lag does not grow), although no agent
   processed them. A run of skipped records that starts right after the last processed one is
   then committed like any other: a worker that kept a partition through a rebalance committed
   1,482 records it had prefetched and skipped, and never processed them (a run of
   ``test_chaos_rebalance`` lost 1,721 of United's and 331 of Delta's mentions; the detect
   stage logged ``detect.resumed`` with ``first_offset`` 2022 against ``replayed_to`` 539).

Three changes make commits strict, and the pipeline at-least-once again:

- after Faust's seek to committed offsets, partitions of the agents' source topics without a
  committed offset are sought to their beginning (what ``auto_offset_reset=earliest`` does on a
  first start), so skipped records are fetched again;
- the consumer remembers, per partition, the next offset that must be processed (the committed
  offset, or the beginning) and commits only a run of acked offsets that starts exactly there;
- an ack of a source record that no stream took in (Faust marks a record *tracked* when a stream
  hands it to an agent, after the skip) is not counted, so the commit stops before a skipped
  record until the seek after the rebalance has fetched it again.

Records processed twice because of this are handled like any redelivery after a crash: the
detect stage drops copies of a mention it already counted.

**Offsets committed ahead of the changelogs.** Faust flushes its producer before it commits
offsets, so that every table write of a committed record is in its changelog. But its buffer's
``flush`` returns as soon as 0.1 s pass without a message leaving the buffer: on a busy worker
(the buffer held over 5,000 messages in ``tests/test_detect_stage.py``) it returns with writes
still queued, and a kill right after the commit loses table writes of committed records, which
Kafka will not deliver again. The flush now waits until every message put in the buffer has been
handed to the Kafka client (whose own flush then waits for delivery), and raises if the buffer
makes no progress for ``FLUSH_STALL_S``: a failed commit redoes work, a premature one loses it.

**A busy loop while the brokers are down.** ``tests/test_chaos_broker_restart.py`` found that
aiokafka's metadata synchroniser retries at once after a failed update (a failed connection
asks for a new update, which wakes it again): during a 30 s broker outage the worker wrote
about 250,000 error lines (40 MB) to its log and used 30 CPU seconds, a whole core. A failed
update now waits the client's ``retry_backoff_ms`` before the next, as every other aiokafka
retry does: under 1 CPU second for the same outage. (``log_setup.RepeatFilter`` holds back the
client libraries' repeated warnings that remain.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from aiokafka.client import AIOKafkaClient
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer
from faust.utils.functional import consecutive_numbers

from streams.log_setup import get_logger

log = get_logger(__name__)

_MARK = "_stormvarsel_fixed"
#: Attribute on Faust's producer buffer: messages put and not yet handed to the Kafka client.
_UNSENT = "_stormvarsel_unsent"
#: A flush that sees no message leave the buffer for this long gives up (and so does the commit).
FLUSH_STALL_S = 120.0
#: Attribute on Faust's consumer: TP -> the next offset to process before anything is committed.
_NEXT = "_stormvarsel_next_offset"


def _next_offsets(consumer: Any) -> MutableMapping[Any, int]:
    table: MutableMapping[Any, int] | None = getattr(consumer, _NEXT, None)
    if table is None:
        table = {}
        setattr(consumer, _NEXT, table)
    return table


def _is_source_topic(app: Any, topic: str) -> bool:
    """A topic an agent consumes with acks (not a table's changelog)."""
    return bool(app.topics.acks_enabled_for(topic)) and not topic.endswith("-changelog")


def strict_new_offset(consumer: Any, tp: Any) -> int | None:
    """The offset to commit for ``tp``: the end of the run of acked offsets that starts at the
    partition's next offset to process, or None while that offset has not been acked."""
    acked: list[int] = consumer._acked[tp]
    if not acked:
        return None
    expected = _next_offsets(consumer)[tp]
    acked.sort()
    index: set[int] = consumer._acked_index[tp]
    stale = 0
    while stale < len(acked) and acked[stale] < expected:
        stale += 1
    if stale:  # processed again after a seek back: already counted in ``expected``
        index.difference_update(acked[:stale])
        del acked[:stale]
    if not acked or acked[0] != expected:
        return None
    batch = next(consecutive_numbers(acked))
    del acked[: len(batch)]
    index.difference_update(batch)
    expected = batch[-1] + 1
    _next_offsets(consumer)[tp] = expected
    return expected


def install() -> None:
    """Patch Faust's consumer and producer buffer, and aiokafka's client, once per process
    (idempotent)."""
    _install_strict_commits()
    _install_complete_flush()
    _install_metadata_backoff()


class FlushStalled(RuntimeError):
    """The producer buffer made no progress: committing now could lose table writes."""


def _install_complete_flush() -> None:
    if getattr(ProducerBuffer.flush, _MARK, False):
        return
    original_put: Callable[[Any, Any], None] = ProducerBuffer.put
    original_send: Callable[[Any, Any], Awaitable[None]] = ProducerBuffer._send_pending

    def put(self: Any, fut: Any) -> None:
        setattr(self, _UNSENT, getattr(self, _UNSENT, 0) + 1)
        original_put(self, fut)

    async def send_pending(self: Any, fut: Any) -> None:
        try:
            await original_send(self, fut)
        finally:
            setattr(self, _UNSENT, getattr(self, _UNSENT, 0) - 1)

    async def flush(self: Any) -> None:
        """Return once every message put so far has been handed to the Kafka client."""
        if self.app is not None and self.app.conf.producer_threaded:
            await self.flush_atmost(None)  # not used here: Faust's own behaviour
            return
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        left = getattr(self, _UNSENT, 0)
        while left > 0:
            if self.state != "running":
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)
            now_left = getattr(self, _UNSENT, 0)
            if now_left < left:
                last_progress = loop.time()
            elif loop.time() - last_progress > FLUSH_STALL_S:
                raise FlushStalled(
                    f"{now_left} messages stuck in the producer buffer for {FLUSH_STALL_S:.0f} s"
                )
            left = now_left

    for function in (put, send_pending, flush):
        setattr(function, _MARK, True)
    ProducerBuffer.put = put  # type: ignore[method-assign]
    ProducerBuffer._send_pending = send_pending  # type: ignore[method-assign]
    ProducerBuffer.flush = flush  # type: ignore[method-assign]


def _install_metadata_backoff() -> None:
    original: Callable[[Any, Any, Any], Awaitable[bool]] = AIOKafkaClient._metadata_update
    if getattr(original, _MARK, False):
        return

    async def metadata_update(self: Any, cluster_metadata: Any, topics: Any) -> bool:
        updated = await original(self, cluster_metadata, topics)
        if not updated:
            await asyncio.sleep(self._retry_backoff)
        return updated

    setattr(metadata_update, _MARK, True)
    AIOKafkaClient._metadata_update = metadata_update  # type: ignore[method-assign]


def _install_strict_commits() -> None:
    if getattr(Consumer._new_offset, _MARK, False):
        return
    original_new_offset: Callable[[Any, Any], int | None] = Consumer._new_offset
    original_ack: Callable[[Any, Any], bool] = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        # A stream marks a record *tracked* only once it is past the generation and flow checks
        # that skip it: an untracked source record was never processed, and committing it
        # would lose it (see the module notes).
        if not message.tracked and _is_source_topic(self.app, message.topic):
            return False
        return original_ack(self, message)

    original_seek: Callable[[Any], Awaitable[Mapping[Any, int | None]]]
    original_seek = AIOKafkaConsumerThread.seek_to_committed

    def new_offset(self: Any, tp: Any) -> int | None:
        if tp in _next_offsets(self):
            return strict_new_offset(self, tp)
        return original_new_offset(self, tp)  # not a source partition of ours

    async def seek_to_committed(self: Any) -> Mapping[Any, int | None]:
        committed = await original_seek(self)
        sources = [tp for tp in committed if _is_source_topic(self.app, tp.topic)]
        fresh = sorted(
            (tp for tp in sources if (committed[tp] or 0) <= 0),
            key=lambda tp: (tp.topic, tp.partition),
        )
        starts: Mapping[Any, int] = {}
        if fresh:
            await self.seek_to_beginning(*fresh)
            starts = await self.call_thread(self._ensure_consumer().beginning_offsets, fresh)
            log.info(
                "consumer.rewound_uncommitted",
                partitions=[f"{tp.topic}:{tp.partition}" for tp in fresh],
            )
        nexts = _next_offsets(self.consumer)
        nexts.clear()
        for tp in sources:
            offset = committed[tp]
            nexts[tp] = int(starts[tp]) if tp in starts else int(offset or 0)
        return committed

    setattr(new_offset, _MARK, True)
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
    Consumer.ack = ack  # type: ignore[method-assign]
    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign,assignment]
