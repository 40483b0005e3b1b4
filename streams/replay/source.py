"""Reading a time range of a topic: offsets by record timestamp, records in consumption order.

Nothing here joins a consumer group or commits an offset: every consumer is assigned its
partition by hand (``group_id=None``), so a replay is invisible to the live worker.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams.errors import ConfigError, StormvarselError
from streams.kafka_clients import KafkaUnreachable, client_config, diagnose_access
from streams.log_setup import get_logger
from streams.replay.engine import SourceRecord
from streams.settings import Settings

log = get_logger(__name__)

CLIENT_ID = "stormvarsel-replay"
#: Records are read until at least this long past the end of the range, so a record that arrived
#: a little out of timestamp order (a collector's retry) is not cut off by the first one past the
#: end. A replay reads further when the allowed lateness needs it (:func:`grace_ms`).
END_GRACE_MS = 15 * 60_000
#: A partition that yields nothing for this long before its planned end offset is an error.
STALL_S = 30.0
#: Records sampled after a partition's planned end to see whether its timestamps go back there.
PROBES = 8
#: Records read on past a partition's planned end (a bounded forward scan): a mention of the
#: range sent a little after it, as a collector catching up sends it, shows the partition is out
#: of order, and the partition is read to its log end.
LOOKAHEAD = 1000


class ReplayError(StormvarselError):
    """The replay cannot run; the message is one line saying why and what to do."""


class NoMentions(ReplayError):
    """The requested range holds no data (or none of the requested brands)."""


class ReplayOptionError(ConfigError):
    """An option the replay cannot use (exit status 2, like any configuration error)."""


@dataclass(frozen=True)
class Span:
    """Offsets ``[start, end)`` of one partition to read.

    Record timestamps are event times, so a partition fed out of time order (a history sent
    unsorted, a collector catching up) can hold records of the range after the first one dated
    past it. ``log_end`` is where such a partition is read on to once that shows; ``reordered``
    says the plan already reads to it.
    """

    partition: int
    start: int
    end: int
    log_end: int = -1
    reordered: bool = False
    #: The partition's first offset: ``start`` is it when the partition holds no older record.
    log_start: int = 0

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class Plan:
    topic: str
    spans: list[Span]
    #: How far past the end of the range the spans reach (:func:`grace_ms`).
    grace_ms: int = END_GRACE_MS

    @property
    def total(self) -> int:
        return sum(span.size for span in self.spans)

    @property
    def from_first_record(self) -> bool:
        """Whether the topic holds no record before those planned (every partition is read from
        its first offset): it then holds no history older than the oldest record read."""
        return all(span.start <= span.log_start for span in self.spans)


#: How long the replay waits for a Kafka broker before it gives up.
CONNECT_TIMEOUT_S = 30.0


def consumer(settings: Settings, timeout_s: float = CONNECT_TIMEOUT_S) -> KafkaConsumer:
    """A consumer in no group, committing nothing; a clear error when Kafka cannot be reached."""
    refused = diagnose_access(settings, timeout_s=min(10.0, timeout_s))
    if refused is not None:
        raise KafkaUnreachable(refused)
    try:
        return KafkaConsumer(
            **client_config(settings, CLIENT_ID),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1000,
            bootstrap_timeout_ms=int(timeout_s * 1000),
            request_timeout_ms=30_000,
        )
    except (KafkaError, OSError) as exc:
        raise KafkaUnreachable(
            f"no Kafka broker answered at {settings.kafka_bootstrap_servers} within "
            f"{timeout_s:.0f} s ({type(exc).__name__}); start one with `stormvarsel kafka start` "
            "or set STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS"
        ) from None


def partitions_of(client: KafkaConsumer, topic: str) -> list[int] | None:
    """The topic's partitions, or None when it does not exist."""
    found = client.partitions_for_topic(topic)
    if not found:
        # The first metadata request may only register our interest in the topic.
        with suppress(KafkaError):
            client.topics()
        found = client.partitions_for_topic(topic)
    return sorted(found) if found else None


def grace_ms(lateness_ms: int, bucket_ms: int) -> int:
    """How far past the end of the range to read: :data:`END_GRACE_MS`, and at least the allowed
    lateness plus a bucket. Live, the range's last bucket closed once the watermark (the newest
    mention's time minus the lateness) passed its end: only mentions dated that far past the end
    move it there, and a mention of the range that came before them was not yet late."""
    return max(END_GRACE_MS, lateness_ms + bucket_ms)


def plan_range(
    client: KafkaConsumer, topic: str, start_ms: int, end_ms: int, grace: int = END_GRACE_MS
) -> Plan:
    """Per partition: the first offset with a timestamp at or after ``start_ms`` up to the first
    at or after ``end_ms`` plus ``grace`` (:func:`grace_ms`; the log end when there is none).

    No record before the first offset is in the range, whatever the order; after the planned end
    one can be, in a partition out of time order. :data:`PROBES` records after it are sampled:
    when one is dated before ``end_ms`` the partition is planned to its log end (the engine skips
    what lies outside the range), and :func:`read_partition` reads on to it when the records
    it reads show the order is broken."""
    partitions = partitions_of(client, topic)
    if partitions is None:
        raise ReplayError(
            f"topic {topic!r} does not exist; check --topic and STORMVARSEL_TOPIC_PREFIX"
        )
    tps = [TopicPartition(topic, p) for p in partitions]
    last = client.end_offsets(tps)
    first_offsets = client.beginning_offsets(tps)
    starts = client.offsets_for_times({tp: start_ms for tp in tps})
    ends = client.offsets_for_times({tp: end_ms + grace for tp in tps})
    spans = []
    for tp in tps:
        first = starts.get(tp)
        stop = ends.get(tp)
        begin = first.offset if first is not None else last[tp]
        finish = stop.offset if stop is not None else last[tp]
        if begin < finish:
            # Nothing planned, nothing to look at: the samples alone say whether to read.
            finish = min(last[tp], finish + LOOKAHEAD)
        reordered = finish < last[tp] and _dated_before(client, tp, finish, last[tp], end_ms)
        if reordered:
            log.warning(
                "replay.out_of_order",
                topic=topic,
                partition=tp.partition,
                planned_end=finish,
                log_end=last[tp],
            )
            finish = last[tp]
        spans.append(
            Span(tp.partition, begin, max(begin, finish), last[tp], reordered, first_offsets[tp])
        )
    client.unsubscribe()
    return Plan(topic, spans, grace)


def _dated_before(
    client: KafkaConsumer, tp: TopicPartition, first: int, end: int, before_ms: int
) -> bool:
    """Whether any of :data:`PROBES` records spread over offsets ``[first, end)`` (the last one
    among them) has a timestamp before ``before_ms``."""
    count = end - first
    offsets = sorted({first + (count - 1) * k // (PROBES - 1) for k in range(PROBES)})
    for offset in offsets:
        stamp = _timestamp_at(client, tp, offset)
        if stamp is not None and stamp < before_ms:
            return True
    return False


@dataclass(frozen=True)
class Extent:
    """What a "no data in that range" message can say of a topic without reading it whole."""

    #: The newest record timestamp of the topic, exact whatever the order of its records.
    newest_ms: int
    #: The oldest among the partitions' first and last records: the oldest record is dated this
    #: or earlier (a partition out of time order can hold older ones in between).
    oldest_at_most_ms: int


def extent(client: KafkaConsumer, topic: str) -> Extent | None:
    """The topic's newest timestamp and a bound on its oldest, or None for an empty topic."""
    partitions = partitions_of(client, topic) or []
    tps = [TopicPartition(topic, p) for p in partitions]
    if not tps:
        return None
    first = client.beginning_offsets(tps)
    last = client.end_offsets(tps)
    stamps: list[int] = []
    for tp in tps:
        if last[tp] <= first[tp]:
            continue
        for offset in (first[tp], last[tp] - 1):
            stamp = _timestamp_at(client, tp, offset)
            if stamp is not None:
                stamps.append(stamp)
    client.unsubscribe()
    if not stamps:
        return None
    return Extent(_newest(client, tps, max(stamps)), min(stamps))


def _newest(client: KafkaConsumer, tps: list[TopicPartition], known_ms: int) -> int:
    """The newest record timestamp of the partitions, given one record dated ``known_ms``.

    ``offsets_for_times(t)`` answers whether any record is dated ``t`` or later, in any order:
    one request when the newest is the known one (a partition in order ends with its newest),
    else a search doubling, then halving, the distance (about 2 log2(distance in ms) requests).
    """

    def any_from(stamp: int) -> bool:
        found = client.offsets_for_times({tp: stamp for tp in tps})
        return any(offset is not None for offset in found.values())

    low, step = known_ms, 1
    while any_from(low + step):  # a record at or after low + step: look further
        low, step = low + step, step * 2
    high = low + step  # a record at or after low, none at or after high
    while high - low > 1:
        middle = (low + high) // 2
        if any_from(middle):
            low = middle
        else:
            high = middle
    return low


def _timestamp_at(client: KafkaConsumer, tp: TopicPartition, offset: int) -> int | None:
    client.assign([tp])
    client.seek(tp, offset)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in client.poll(timeout_ms=500, max_records=1).get(tp, []):
            return int(record.timestamp)
    return None


def read_partition(
    settings: Settings,
    topic: str,
    span: Span,
    on_reordered: Callable[[Span, int], None] | None = None,
    grace: int = END_GRACE_MS,
) -> Iterator[SourceRecord]:
    """The span's records in offset order, from a consumer of its own.

    A record dated more than ``grace`` (the plan's) before the newest one read before it shows the
    partition is out of time order: reading then goes on to ``span.log_end``, and
    ``on_reordered(span, records_added)`` is told."""
    if span.size == 0:
        return
    reader = consumer(settings)
    tp = TopicPartition(topic, span.partition)
    stop = span.end
    newest = None
    try:
        reader.assign([tp])
        reader.seek(tp, span.start)
        last_progress = time.monotonic()
        while reader.position(tp) < stop:
            batch = reader.poll(timeout_ms=1000).get(tp, [])
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > STALL_S:
                raise ReplayError(
                    f"{topic} partition {span.partition} stopped at offset "
                    f"{reader.position(tp)} before {stop} (deleted by retention meanwhile?)"
                )
            for message in batch:
                if message.offset >= stop:
                    return
                stamp = int(message.timestamp)
                if newest is not None and stamp < newest - grace and stop < span.log_end:
                    log.warning(
                        "replay.out_of_order",
                        topic=topic,
                        partition=span.partition,
                        offset=message.offset,
                        behind_ms=newest - stamp,
                        planned_end=stop,
                        log_end=span.log_end,
                    )
                    if on_reordered is not None:
                        on_reordered(span, span.log_end - stop)
                    stop = span.log_end
                newest = stamp if newest is None else max(newest, stamp)
                yield _record(message)
    finally:
        reader.close(autocommit=False)


def _record(message: Any) -> SourceRecord:
    return SourceRecord(
        partition=int(message.partition),
        offset=int(message.offset),
        timestamp_ms=int(message.timestamp),
        key=message.key,
        value=message.value,
    )


def read_plan(
    settings: Settings, plan: Plan, on_reordered: Callable[[Span, int], None] | None = None
) -> Iterator[SourceRecord]:
    """Every planned record; partitions merged by record timestamp (then partition, offset).

    Within a partition the offset order is kept whatever the timestamps. Across partitions the
    live consumption order is not recorded anywhere; timestamp order is what a real-time feed
    gives (see docs/replay.md).
    """
    readers = [
        read_partition(settings, plan.topic, span, on_reordered, plan.grace_ms)
        for span in plan.spans
        if span.size
    ]
    if len(readers) == 1:
        yield from readers[0]
        return
    yield from heapq.merge(
        *readers, key=lambda record: (record.timestamp_ms, record.partition, record.offset)
    )
