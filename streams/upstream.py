"""Whether the stages before detection have caught up: the detect stage's wall-clock timer asks
this before it closes a quiet partition's buckets.

The timer moves a quiet partition's watermark on with wall time, so that a brand that went
silent still resolves its storm. But a partition can look quiet because the records for it are
stuck upstream: the brokers were down, or the scoring stage restarted behind a backlog. Closing
its buckets then would count every one of those mentions late when they arrive (kept out of
their buckets, and so out of the detection). So the timer closes only once the consumer group
has committed, on every partition of ``mentions`` and ``mentions.valid``, at least the end
offsets those partitions had ``settle_s`` earlier: whatever had arrived upstream by then has
gone through. A steady flow passes (its commits trail the end offsets by a commit interval);
a stall or a growing backlog does not, and an unreachable Kafka holds the timer too.

The probe samples only when the timer asks, and the timer asks only while a partition is quiet,
so the first ask of a quiet spell has no sample ``settle_s`` old to compare with. It does not
answer "not caught up" for that alone: if the group has already committed everything there is
now, nothing can be waiting upstream; otherwise it samples again (every ``poll_s``, blocking the
timer's thread, not the event loop) until the group has committed the end offsets of its first
sample, or ``settle_s`` has passed and that sample is the usual reference. Either comparison is
stricter than the usual one (its reference is newer), so the meaning stays: a steady flow passes
within a commit interval, a stall still holds.

The hold is global: ``mentions`` is keyed by mention id, so a stalled partition there may hold
any brand's mentions. One stuck partition upstream therefore keeps every quiet brand's buckets
open (and its storm from resolving) until it moves again; the consumer-lag alerts name it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec

from streams.kafka_clients import ClosingAdminClient, client_config
from streams.log_setup import get_logger
from streams.settings import Settings

log = get_logger(__name__)

Offsets = Mapping[tuple[str, int], int]


def caught_up(committed: Offsets, earlier_ends: Offsets, starts: Offsets | None = None) -> bool:
    """Every partition's committed offset has reached the end offset it had earlier. A
    partition without a commit counts as read up to its first offset (``starts``; 0 if not
    given): one that retention emptied is never read, so never committed. No partitions at
    all tells nothing, and is not caught up."""
    starts = starts or {}
    return bool(earlier_ends) and all(
        committed.get(tp, starts.get(tp, 0)) >= end for tp, end in earlier_ends.items()
    )


class UpstreamProbe:
    """Samples the group's committed and the end offsets of the upstream topics (blocking: run
    it in a thread). One per worker; :meth:`caught_up` is what the detect timer calls."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        topics: list[str],
        settle_s: float = 10.0,
        max_age_s: float = 120.0,
    ) -> None:
        self.settings = settings
        self.group = group
        self.topics = topics
        self.settle_s = settle_s
        self.max_age_s = max_age_s
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()  # the timer's thread against the shutdown's close
        self._closed = False
        self._closing = threading.Event()  # set by close(): a first ask stops waiting
        #: How often the first ask of a quiet spell samples again while it waits (see above).
        self.poll_s = 1.0
        #: (monotonic time, end offsets) of earlier samples, oldest first.
        self._samples: deque[tuple[float, dict[tuple[str, int], int]]] = deque()

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = ClosingAdminClient(
                **client_config(self.settings, "stormvarsel-upstream"),
                request_timeout_ms=10_000,
                bootstrap_timeout_ms=10_000,  # the timer waits for this answer
            )
        return self._admin

    def sample(self) -> tuple[dict[tuple[str, int], int], ...]:
        """(committed, first, end) offsets of every partition of the upstream topics."""
        admin = self._client()
        partitions = [
            # kafka-python 3's field names ("topic" and "partition" in older releases)
            TopicPartition(topic["name"], p["partition_index"])
            for topic in admin.describe_topics(self.topics)
            for p in topic["partitions"]
        ]
        offsets = admin.list_group_offsets({self.group: partitions}).get(self.group, {})
        committed = {
            (tp.topic, tp.partition): m.offset for tp, m in offsets.items() if m.offset >= 0
        }
        firsts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        return (
            committed,
            {(tp.topic, tp.partition): info.offset for tp, info in firsts.items()},
            {(tp.topic, tp.partition): info.offset for tp, info in ends.items()},
        )

    def caught_up(self, now: float | None = None) -> bool:
        """Whether the group has gone through everything that was upstream ``settle_s`` ago.
        Without a sample that old (the first ask of a quiet spell), whether it has gone through
        everything there is now, or, within ``settle_s``, everything its first sample saw.
        False while Kafka cannot be asked, and after :meth:`close`. Blocking: for up to
        ``settle_s`` when the first ask finds records not yet committed."""
        started = time.monotonic()
        now = started if now is None else now
        with self._lock:
            if self._closed:
                return False
            current = self._sample_or_none()
            if current is None:
                return False
            committed, starts, ends = current
            samples = self._samples
            # The reference is the newest sample at least settle_s old (kept at the front); one
            # older than max_age_s says nothing about the last few minutes, and is dropped.
            while len(samples) >= 2 and now - samples[1][0] >= self.settle_s:
                samples.popleft()
            while samples and now - samples[0][0] > self.max_age_s:
                samples.popleft()
            earlier = samples[0][1] if samples and now - samples[0][0] >= self.settle_s else None
            samples.append((now, ends))
            if earlier is not None:
                return caught_up(committed, earlier, starts)
            # No reference yet. What is upstream now is a newer (so stricter) one: once the
            # group has committed it, whatever was there settle_s ago has gone through too.
            while not caught_up(committed, ends, starts):
                waited = time.monotonic() - started
                if waited >= self.settle_s:
                    return False  # the first sample is settle_s old now: a real hold
                if self._closing.wait(min(self.poll_s, self.settle_s - waited)):
                    return False
                current = self._sample_or_none()
                if current is None:
                    return False
                committed, starts, _ = current
            return True

    def read_to(self, topic: str, partitions: Collection[int]) -> dict[int, int] | None:
        """How far the group has gone through ``partitions`` of ``topic``: each one's committed
        offset (the next it is to process), or its first offset where it committed none (one
        that retention emptied is never read). None while Kafka cannot be asked, and after
        :meth:`close`. Blocking. The detect timer asks it of its own source after a rebuild
        (``detect_state.resume``)."""
        with self._lock:
            if self._closed:
                return None
            try:
                admin = self._client()
                tps = [TopicPartition(topic, part) for part in partitions]
                offsets = admin.list_group_offsets({self.group: tps}).get(self.group, {})
                firsts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
            except Exception as exc:  # Kafka unreachable or slow: asked again next round
                log.info("detect.read_position_unknown", error=f"{type(exc).__name__}: {exc}")
                self._close_client()
                return None
        committed = {tp.partition: m.offset for tp, m in offsets.items() if m.offset >= 0}
        return {
            tp.partition: committed.get(tp.partition, info.offset) for tp, info in firsts.items()
        }

    def _sample_or_none(self) -> tuple[dict[tuple[str, int], int], ...] | None:
        """:meth:`sample`, or None (logged, and the client closed) if Kafka does not answer."""
        try:
            return self.sample()
        except Exception as exc:  # Kafka unreachable or slow: hold the timer, retry later
            log.info("detect.upstream_unknown", error=f"{type(exc).__name__}: {exc}")
            self._close_client()
            return None

    def close(self) -> None:
        """At shutdown: after the call in flight, if any (one waiting for commits stops
        waiting); later calls answer False."""
        self._closing.set()
        with self._lock:
            self._closed = True
            self._close_client()

    def _close_client(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
        self._admin = None
