"""Consumer lag as a metric: how far the worker's consumer group is behind on its source topics.

Faust exports no lag of its own, so a timer asks Kafka, like an external lag exporter would: the
group's committed offsets and the partitions' end offsets. Each worker reports only the
partitions assigned to it, so summing over workers never counts a partition twice. The Kafka
calls are blocking (kafka-python) and run in a thread, off the event loop.

The same check tells whether the brokers can be reached: ``stormvarsel_kafka_up`` drops to 0
and ``stormvarsel_kafka_checks_failed_total`` counts while they cannot, and the log says when
an outage began (``kafka.unreachable``) and how long it lasted (``kafka.reachable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

import faust
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from streams import metrics
from streams.kafka_clients import ClosingAdminClient, client_config
from streams.log_setup import get_logger
from streams.settings import Settings

log = get_logger(__name__)


class LagProbe:
    """Reads committed and end offsets for one consumer group (blocking; one per worker)."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = group
        self._admin: KafkaAdminClient | None = None

    def lag(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offset minus committed offset, for each of the given partitions.

        A partition without a commit is read from its start (the group's offset reset is
        ``earliest``), so its lag is end minus start offset: 0 for one nothing has reached yet.
        Every owned partition thus has a series, and one that no worker reports is one nobody
        consumes. A partition whose offsets Kafka cannot list (a topic deleted meanwhile) is
        left out.

        Raises when Kafka cannot be asked, also when there is nothing to measure (a worker that
        owns no partition, or is between assignments): ``stormvarsel_kafka_up`` must come from
        a real answer, and an outage is what often takes a worker's partitions away."""
        wanted = {TopicPartition(topic, part) for topic, part in partitions}
        if self._admin is None:
            self._admin = ClosingAdminClient(
                **client_config(self.settings, "stormvarsel-lag"),
                request_timeout_ms=10_000,
                bootstrap_timeout_ms=10_000,  # within the timer's interval or so
            )
        if not wanted:
            self._admin.describe_cluster()
            return {}
        offsets = self._admin.list_group_offsets({self.group: sorted(wanted)}).get(self.group, {})
        read_from = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        fresh = sorted(tp for tp in wanted if tp not in read_from)
        if fresh:
            read_from |= self._offsets(fresh, OffsetSpec.EARLIEST)
        ends = self._offsets(sorted(read_from), OffsetSpec.LATEST)
        return {(tp.topic, tp.partition): max(0, end - read_from[tp]) for tp, end in ends.items()}

    def _offsets(self, partitions: list[TopicPartition], spec: Any) -> dict[TopicPartition, int]:
        """The partitions' offsets of ``spec``; without those Kafka does not know, so one gone
        topic does not hide the others' lag (asked one topic at a time after a refusal)."""
        assert self._admin is not None
        if not partitions:
            return {}
        try:
            found = self._admin.list_partition_offsets({tp: spec for tp in partitions})
            return {tp: found[tp].offset for tp in partitions if tp in found}
        except KafkaError:
            topics = {tp.topic for tp in partitions}
            if len(topics) == 1:
                self._admin.describe_cluster()  # an outage still raises
                return {}
            out: dict[TopicPartition, int] = {}
            for topic in sorted(topics):
                out |= self._offsets([tp for tp in partitions if tp.topic == topic], spec)
            return out

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self._admin = None


def register(
    app: faust.App, settings: Settings, topics: Iterable[str], interval_s: float = 15.0
) -> None:
    """Update ``stormvarsel_consumer_lag_records`` every ``interval_s`` for the source topics."""
    sources = set(topics)
    probe = LagProbe(settings, settings.app_id)
    reported: set[tuple[str, int]] = set()
    failures = [0]
    outage_began: list[float | None] = [None]
    metrics.KAFKA_UP.set(1)  # the worker starts only once it has reached Kafka

    @app.timer(interval=interval_s)
    async def measure_consumer_lag() -> None:
        owned = [(tp.topic, tp.partition) for tp in app.consumer.assignment()]
        owned = [(topic, part) for topic, part in owned if topic in sources]
        try:
            lag: dict[tuple[str, int], int] = await asyncio.to_thread(probe.lag, owned)
        except Exception as exc:  # a metric must never take the worker down
            failures[0] += 1
            metrics.KAFKA_UP.set(0)
            metrics.KAFKA_CHECKS_FAILED.inc()
            if failures[0] == 1:  # once per outage
                outage_began[0] = time.monotonic()
                log.warning(
                    "kafka.unreachable",
                    error=f"{type(exc).__name__}: {exc}",
                    hint="the worker keeps running and resumes when the brokers are back",
                )
            with contextlib.suppress(Exception):
                await asyncio.to_thread(probe.close)
            return
        if failures[0]:
            began = outage_began[0] or time.monotonic()
            log.info(
                "kafka.reachable",
                down_s=round(time.monotonic() - began, 1),
                failed_checks=failures[0],
            )
        failures[0] = 0
        metrics.KAFKA_UP.set(1)
        for key in reported - set(lag):
            metrics.CONSUMER_LAG.remove(key[0], str(key[1]))
        for (topic, part), value in lag.items():
            metrics.CONSUMER_LAG.labels(topic=topic, partition=str(part)).set(value)
        reported.clear()
        reported.update(lag)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust types reject async receivers
    async def close_probe(sender: Any, *args: Any, **kwargs: Any) -> None:
        await asyncio.to_thread(probe.close)
