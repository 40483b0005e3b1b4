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

**Records dropped between the seek and the resume.** Faust's stream queues (between the
consumer and each stream) are emptied, and puts waiting for room in them cancelled, whenever
``app.flow_control.resume()`` is called, not only when flow comes back after a suspension.
After an assignment Faust resumes flow while it recovers the tables, then seeks the stream
partitions to their committed offsets and calls ``resume()`` once more. Records fetched from
the committed offset in between are already on their way to a stream, and that second call
throws them away while the consumer has read past them: the stream goes on with the next
records. Strict commits keep the dropped ones uncommitted, so they are processed after the
next rebalance, behind newer records, or, without one, not at all while the worker runs (its
commits of that partition stop there). In ``test_chaos_rebalance`` the scoring stage dropped
records 46 to 49 of a partition and went on from 50; the four mentions reached the detect
stage an hour of event time behind their partition. In other runs Southwest's episode opened
five minutes early, on 14 mentions instead of 17, and the validation stage dropped 581 of
United's mentions, which no stage ever processed (the commits stopped at offset 1,298).
``resume()`` now empties the queues only when flow really was suspended; what is queued then
belongs to the old generation.

**Holes in what reaches a stream.** With the resume fixed, one run of five still lost 1,113 of
Southwest's and 1,641 of US Airways' mentions: the validation stage skipped 1,654 records of a
partition and went on after them, and that worker never committed the partition again. Its
logs do not say which path dropped them, and there are several between the fetch and the
stream: Faust's fetch loop drops every record below the partition's *read offset* (the last
one it handed on), and a record it was still handing on when the seek set that offset back
sets it forward again once through (logging the consumers showed the loop dropping up to 948
records of a partition after one rebalance, records it had handed on before the seek). So the
consumer now guarantees the order itself. It keeps, per source partition, the next offset the
streams may be given: set by the seek to committed offsets, forgotten when the partition is
revoked (records fetched until the next seek has set it are dropped, and that seek ends by
fetching from the new offsets once more), and advanced only by the record
at exactly that offset, which is handed on with Faust's read offset cleared so that its
filter cannot drop it. A record beyond that offset means records in between were lost on the
way: the partition is fetched again from the missing one, once. A log may really have no
record at an offset (a transaction marker, a deleted segment); if the refetch still starts
past it, such offsets count as processed, so that the strict commit can pass them (kept as
ranges: a group behind retention can meet millions at once). A gap with no record after it (a
transactional collector's last commit marker) shows only in the consumer's fetch position, which
counts the markers it skipped: once a fetch's records are handed on, a position past the next
offset is fetched again the same way, and counted as a hole if it stays. Every source partition
reaches the streams from its committed offset, in order and without holes.

**Offsets committed ahead of the changelogs.** Faust flushes its producer before it commits
offsets, so that every table write of a committed record is in its changelog. But its buffer's
``flush`` returns as soon as 0.1 s pass without a message leaving the buffer: on a busy worker
(the buffer held over 5,000 messages in ``tests/test_detect_stage.py``) it returns with writes
still queued, and a kill right after the commit loses table writes of committed records, which
Kafka will not deliver again. The flush now waits until every message put in the buffer has been
handed to the Kafka client (whose own flush then waits for delivery), and raises if the buffer
makes no progress for ``FLUSH_STALL_S``: a failed commit redoes work, a premature one loses it.

**Offsets committed for records Kafka refused.** Faust's ``topic.send`` does not wait for Kafka's
answer, and a refusal (a record over the destination topic's ``max.message.bytes``) was set on a
future nobody held: asyncio logged "FutureMessage exception was never retrieved", and the
offset of the record it came from was committed. The validate and score stages now forward
through ``streams.forwarding``, and the producer's flush, after delivering, waits until each
forwarded record was acknowledged or dead-lettered, and raises when one was neither: the
commit does not happen.

**Offsets committed past table writes Kafka refused.** A table's changelog write went the same
way: Faust's ``send_changelog`` puts it in the producer's buffer and nobody waits for Kafka's
answer. A record over the changelog topic's ``max.message.bytes``, a delivery timeout, or a
topic the worker may not write failed only the write's future (Faust logged a warning, asyncio
"exception was never retrieved"), and the flush before the commit, which waits for every batch to
be answered, not delivered, let the offsets through: the restarted worker's table lacked the
write, and the record that made it was never read again. Each changelog write is now held until
Kafka answered it (``streams.table_writes``); a failed one is logged (``table.write_failed``) and
counted, stops the worker, and fails the flush, so that nothing more is committed. A write the
client refuses at once (over the producer's ``max_request_size``) crashed the buffer's task, and
so the worker, before; it does still, and now the write's future says why as well, so that the
log names the table and the key.

**A busy loop while the brokers are down.** ``tests/test_chaos_broker_restart.py`` found that
aiokafka's metadata synchroniser retries at once after a failed update (a failed connection
asks for a new update, which wakes it again): during a 30 s broker outage the worker wrote
about 250,000 error lines (40 MB) to its log and used 30 CPU seconds, a whole core. A failed
update now waits the client's ``retry_backoff_ms`` before the next, as every other aiokafka
retry does: under 1 CPU second for the same outage. (``log_setup.RepeatFilter`` holds back the
client libraries' repeated warnings that remain.)

**A stop that hangs while the brokers are down.** A worker sent SIGTERM 40 s into a broker
outage took 62 s to exit, longer than the 30 s compose (and Kubernetes) give before SIGKILL.
aiokafka's ``Fetcher.close`` cancels its pending fetches and awaits each one; a fetch that had
failed and was sleeping its retry back-off raises ``CancelledError`` out of ``close`` instead of
returning. The consumer thread then never told Faust it had stopped, and Faust waited 60 s for
it. ``close`` now awaits the cancelled fetches without letting their cancellation escape: the
same worker exits in about 1.5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.errors import IllegalStateError
from faust.tables.base import Collection
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.transport.producer import ProducerBuffer
from faust.utils.functional import consecutive_numbers
from mode.utils.queues import FlowControlEvent

from streams.forwarding import flush_settled
from streams.log_setup import get_logger
from streams.table_writes import table_writes

log = get_logger(__name__)

_MARK = "_stormvarsel_fixed"
#: Attribute on Faust's producer buffer: messages put and not yet handed to the Kafka client.
_UNSENT = "_stormvarsel_unsent"
#: A flush that sees no message leave the buffer for this long gives up (and so does the commit).
FLUSH_STALL_S = 120.0
#: Attribute on Faust's consumer: TP -> the next offset to process before anything is committed.
_NEXT = "_stormvarsel_next_offset"


#: Attribute on Faust's consumer: TP -> the next offset the streams may be given.
_DELIVER = "_stormvarsel_next_delivery"
#: Attribute on Faust's consumer: TP -> the offset last fetched again because it was missing.
_REFETCHED = "_stormvarsel_refetched"
#: Attribute on Faust's consumer: TP -> ranges of offsets the log has no record for.
_HOLES = "_stormvarsel_holes"


def _offsets(consumer: Any, name: str) -> MutableMapping[Any, int]:
    table: MutableMapping[Any, int] | None = getattr(consumer, name, None)
    if table is None:
        table = {}
        setattr(consumer, name, table)
    return table


def _next_offsets(consumer: Any) -> MutableMapping[Any, int]:
    return _offsets(consumer, _NEXT)


def _is_source_topic(app: Any, topic: str) -> bool:
    """A topic an agent consumes with acks (not a table's changelog)."""
    return bool(app.topics.acks_enabled_for(topic)) and not topic.endswith("-changelog")


def strict_new_offset(consumer: Any, tp: Any) -> int | None:
    """The offset to commit for ``tp``: the end of the run of acked offsets and holes
    (:func:`ack_hole`) that starts at the partition's next offset to process, or None while
    that offset has not been acked."""
    acked: list[int] = consumer._acked[tp]
    holes = _holes(consumer).get(tp)
    if not acked and not holes:
        return None
    nexts = _next_offsets(consumer)
    expected = start = nexts[tp]
    index: set[int] = consumer._acked_index[tp]
    acked.sort()
    if holes:
        holes.sort()
    while True:
        stale = 0
        while stale < len(acked) and acked[stale] < expected:
            stale += 1
        if stale:  # processed again after a seek back: already counted in ``expected``
            index.difference_update(acked[:stale])
            del acked[:stale]
        while holes and holes[0][1] <= expected:
            holes.pop(0)
        if holes and holes[0][0] <= expected:
            expected = holes.pop(0)[1]
        elif acked and acked[0] == expected:
            batch = next(consecutive_numbers(acked))
            del acked[: len(batch)]
            index.difference_update(batch)
            expected = batch[-1] + 1
        else:
            break
    if holes is not None and not holes:
        _holes(consumer).pop(tp, None)
    if expected == start:
        return None
    nexts[tp] = expected
    return expected


class Delivery(enum.Enum):
    """What to do with a fetched record of a source partition."""

    DELIVER = "deliver"  # the next record: hand it to the streams
    DROP = "drop"  # handed out already, or before the seek that follows an assignment
    REFETCH = "refetch"  # records before it are missing: fetch again from the first one
    PAST_HOLE = "past_hole"  # fetched again, still missing: the log has none; hand it on


def next_delivery(
    deliver: MutableMapping[Any, int], refetched: MutableMapping[Any, int], tp: Any, offset: int
) -> Delivery:
    """Decide on a fetched record so that each partition reaches the streams in order, once.

    ``deliver`` holds each partition's next offset (set by the seek to committed offsets,
    removed when the partition is revoked). A record past it means records in between were
    lost on the way; they are fetched again, once: if the broker still answers with a later
    offset, the log really has no record there (a transaction marker, a deleted segment)."""
    want = deliver.get(tp)
    if want is None or offset < want:
        return Delivery.DROP
    if offset > want and refetched.get(tp) != want:
        refetched[tp] = want
        return Delivery.REFETCH
    deliver[tp] = offset + 1
    refetched.pop(tp, None)
    return Delivery.PAST_HOLE if offset > want else Delivery.DELIVER


def ack_hole(consumer: Any, tp: Any, start: int, end: int) -> None:
    """Count offsets ``start`` to ``end - 1``, which the log has no record for, as processed,
    so that the strict commit can pass them once the records before them are processed. Kept
    as a range: a group behind retention meets millions of deleted offsets at once, and one
    entry per offset cost hundreds of megabytes and seconds of the event loop."""
    if end <= start:
        return
    _holes(consumer).setdefault(tp, []).append((start, end))
    consumer._acked.setdefault(tp, [])  # Faust commits only partitions with an entry there


def _holes(consumer: Any) -> MutableMapping[Any, list[tuple[int, int]]]:
    table: MutableMapping[Any, list[tuple[int, int]]] | None = getattr(consumer, _HOLES, None)
    if table is None:
        table = {}
        setattr(consumer, _HOLES, table)
    return table


def fetch_position(aiokafka_consumer: Any, tp: Any) -> int | None:
    """aiokafka's position for ``tp``: the offset after the last one it consumed, control
    batches (transaction markers) included, which it never hands out. None when unknown."""
    try:
        state = aiokafka_consumer._subscription.subscription.assignment.state_value(tp)
    except AttributeError:  # no assignment (a rebalance), or another aiokafka
        return None
    if state is None or state.paused or not state.has_valid_position:
        return None
    return int(state.position)


def trailing_gap(
    deliver: MutableMapping[Any, int], refetched: MutableMapping[Any, int], tp: Any, position: int
) -> Delivery | None:
    """Decide on a partition whose fetch position is past its next offset with nothing more
    handed out: the offsets in between were consumed but not delivered. Fetched again once,
    like a hole before a record (:func:`next_delivery`); still so, the log has no records
    there: a transaction marker at the end of the partition, which no later record would
    ever show to be one (its offset stayed uncommitted, the lag at 1 and the detect timer's
    upstream check held, until the next transaction, which ends with a marker again)."""
    want = deliver.get(tp)
    if want is None or position <= want:
        return None
    if refetched.get(tp) != want:
        refetched[tp] = want
        return Delivery.REFETCH
    deliver[tp] = position
    refetched.pop(tp, None)
    return Delivery.PAST_HOLE


def install() -> None:
    """Patch Faust's consumer and producer buffer, and aiokafka's client, once per process
    (idempotent)."""
    _install_strict_commits()
    _install_ordered_delivery()
    _install_complete_flush()
    _install_settled_flush()
    _install_held_table_writes()
    _install_metadata_backoff()
    _install_resume_without_clearing()
    _install_fetcher_close()


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
        except Exception as exc:
            # The client refused the message at once (say over ``max_request_size``): the
            # buffer's task crashes, and the worker with it, as before; the message's future
            # says why, for whoever holds it (a table write: ``streams.table_writes``).
            if not fut.done():
                fut.set_exception(exc)
            raise
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


def _install_settled_flush() -> None:
    if getattr(AIOKafkaProducer.flush, _MARK, False):
        return
    original: Callable[[Any], Awaitable[None]] = AIOKafkaProducer.flush

    async def flush(self: Any) -> None:
        """Deliver what is buffered, then wait for the forwards' outcomes (dead letters). Raises
        when a table's changelog write failed (``streams.table_writes``)."""
        writes = table_writes(self.app)

        async def delivered() -> None:
            marked = writes.mark()
            await original(self)
            await writes.settle(marked)

        await flush_settled(self.app, delivered)

    setattr(flush, _MARK, True)
    AIOKafkaProducer.flush = flush  # type: ignore[method-assign]


def _install_held_table_writes() -> None:
    original: Callable[..., Any] = Collection.send_changelog
    if getattr(original, _MARK, False):
        return

    def send_changelog(self: Any, *args: Any, **kwargs: Any) -> Any:
        """Faust's write to the table's changelog, held until Kafka answered it."""
        future = original(self, *args, **kwargs)
        table_writes(self.app).track(self.name, future)
        return future

    setattr(send_changelog, _MARK, True)
    Collection.send_changelog = send_changelog  # type: ignore[method-assign]


def _seek_each(consumer: Any, offsets: Mapping[Any, int]) -> None:
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)


async def _close_trailing_gaps(
    consumer: Any,
    deliver: MutableMapping[Any, int],
    refetched: MutableMapping[Any, int],
    refetching: set[Any],
) -> None:
    """After a fetch's records are handed on: partitions whose position is past their next
    offset (see :func:`trailing_gap`) are fetched again, or their hole is counted."""
    thread = consumer._thread
    aiokafka_consumer = thread._ensure_consumer()
    for tp in list(deliver):
        if tp in refetching:
            continue
        position = fetch_position(aiokafka_consumer, tp)
        want = deliver.get(tp)
        if position is None or want is None:
            continue
        decision = trailing_gap(deliver, refetched, tp, position)
        if decision is Delivery.REFETCH:
            log.info(
                "consumer.refetch",
                partition=f"{tp.topic}:{tp.partition}",
                expected=want,
                position=position,
            )
            try:
                await thread.call_thread(aiokafka_consumer.seek, tp, want)
            except IllegalStateError:  # revoked meanwhile: its next owner seeks anyway
                deliver.pop(tp, None)
        elif decision is Delivery.PAST_HOLE:
            log.info(
                "consumer.hole",
                partition=f"{tp.topic}:{tp.partition}",
                missing=[want, position - 1],
            )
            ack_hole(consumer, tp, want, position)


def _install_ordered_delivery() -> None:
    original_getmany: Callable[[Any, float], AsyncIterator[tuple[Any, Any]]] = Consumer.getmany
    if getattr(original_getmany, _MARK, False):
        return
    original_revoked: Callable[[Any, Any], Awaitable[None]] = Consumer.on_partitions_revoked

    async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        deliver = _offsets(self, _DELIVER)
        refetched = _offsets(self, _REFETCHED)
        refetching: set[Any] = set()  # in this batch: the rest of it is stale
        async for tp, message in original_getmany(self, timeout):
            if not _is_source_topic(self.app, tp.topic):
                yield tp, message
                continue
            if tp in refetching:
                continue
            want = deliver.get(tp)
            decision = next_delivery(deliver, refetched, tp, message.offset)
            if decision is Delivery.REFETCH:
                refetching.add(tp)
                log.info(
                    "consumer.refetch",
                    partition=f"{tp.topic}:{tp.partition}",
                    expected=refetched[tp],
                    fetched=message.offset,
                )
                thread = self._thread
                try:
                    await thread.call_thread(thread._ensure_consumer().seek, tp, refetched[tp])
                except IllegalStateError:  # revoked meanwhile: its next owner seeks anyway
                    deliver.pop(tp, None)
            elif decision is not Delivery.DROP:
                if decision is Delivery.PAST_HOLE and want is not None:
                    log.info(
                        "consumer.hole",
                        partition=f"{tp.topic}:{tp.partition}",
                        missing=[want, message.offset - 1],
                    )
                    ack_hole(self, tp, want, message.offset)
                # Faust's own filter drops records below the partition's last delivered
                # offset, which its fetch loop can set after a seek from a record of before
                # it; this guard keeps that order instead.
                self._read_offset[tp] = None
                yield tp, message
        await _close_trailing_gaps(self, deliver, refetched, refetching)

    async def on_partitions_revoked(self: Any, revoked: Any) -> None:
        for table in (_offsets(self, _DELIVER), _offsets(self, _REFETCHED), _holes(self)):
            for tp in revoked:
                table.pop(tp, None)
        await original_revoked(self, revoked)

    setattr(getmany, _MARK, True)
    Consumer.getmany = getmany  # type: ignore[method-assign,assignment]
    Consumer.on_partitions_revoked = on_partitions_revoked  # type: ignore[method-assign]


def _install_resume_without_clearing() -> None:
    original: Callable[[FlowControlEvent], None] = FlowControlEvent.resume
    if getattr(original, _MARK, False):
        return

    def resume(self: FlowControlEvent) -> None:
        """Resume flow; empty the managed queues only when flow was suspended."""
        if not self.is_active():
            original(self)
        # Already flowing: the queues hold records of this generation, in order.

    setattr(resume, _MARK, True)
    FlowControlEvent.resume = resume  # type: ignore[method-assign]


def _install_fetcher_close() -> None:
    original: Callable[[Any], Awaitable[None]] = Fetcher.close
    if getattr(original, _MARK, False):
        return

    async def close(self: Any) -> None:
        try:
            await original(self)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the close itself was cancelled
            # A cancelled fetch's own CancelledError, raised out of the loop that awaits them:
            # cancel and await the others without letting theirs escape.
            for fetch in self._pending_tasks:
                fetch.cancel()
            await asyncio.gather(*self._pending_tasks, return_exceptions=True)

    setattr(close, _MARK, True)
    Fetcher.close = close  # type: ignore[method-assign]


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
        deliver = _offsets(self.consumer, _DELIVER)
        refetched = _offsets(self.consumer, _REFETCHED)
        nexts.clear()
        deliver.clear()
        refetched.clear()
        _holes(self.consumer).clear()
        for tp in sources:
            offset = committed[tp]
            nexts[tp] = deliver[tp] = int(starts[tp]) if tp in starts else int(offset or 0)
        if sources:
            # Records fetched while this seek ran were dropped (no next offset yet): fetch
            # from the next offsets once more, or a quiet partition would wait for new records.
            with contextlib.suppress(IllegalStateError):  # a new rebalance: it seeks again
                await self.call_thread(_seek_each, self._ensure_consumer(), dict(deliver))
        return committed

    setattr(new_offset, _MARK, True)
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
    Consumer.ack = ack  # type: ignore[method-assign]
    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign,assignment]
