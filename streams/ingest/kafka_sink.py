"""Sending to Kafka: an idempotent producer with acks=all, after checking that the topic exists."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaProducer
from kafka.admin import ConfigResourceType
from kafka.errors import KafkaError, UnknownError

from streams.ingest.errors import IngestError
from streams.ingest.mapping import Ready
from streams.kafka_clients import (
    KafkaUnreachable,
    client_config,
    connect_admin,
)
from streams.log_setup import get_logger
from streams.settings import ENV_PREFIX, Settings
from streams.topic_limit import RecordLimit, config_values, record_limit

log = get_logger(__name__)

DELIVERY_TIMEOUT_MS = 30_000  # Kafka must acknowledge a record within this, or it has failed
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 5  # never cut a delivery short
PRODUCER_MAX_REQUEST_SIZE = 1_048_576  # kafka-python's default max_request_size, set explicitly
PRODUCER_BATCH_SIZE = 16_384  # kafka-python's default; lowered for a topic that takes less
PRODUCER_LIMIT = (PRODUCER_MAX_REQUEST_SIZE, "the producer's max_request_size")


class Sink(Protocol):
    """Where records go: Kafka, or a list in tests."""

    def send(self, record: Ready, on_done: Callable[[Exception | None], None]) -> None: ...

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


class KafkaSink:
    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    def send(self, record: Ready, on_done: Callable[[Exception | None], None]) -> None:
        future = self._producer.send(
            self._topic, value=record.value, key=record.key, timestamp_ms=record.timestamp_ms
        )
        future.add_callback(lambda _metadata: on_done(None))
        future.add_errback(on_done)

    def flush(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` until Kafka has answered every record sent.

        A batch the broker refuses as too large (the topic's ``max.message.bytes``) is split by
        kafka-python and its halves sent again, but a flush under way then raises
        ``UnknownError('Future not done')`` at once: it waits on the batch that was split, which
        is never completed. Ingest then gave up on every record not yet answered, the good ones
        in that batch too, as "not confirmed". Flushing again waits for the halves.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._producer.flush(timeout=max(deadline - time.monotonic(), 0.0))
                return
            except UnknownError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        try:
            self._producer.close(timeout=5)
        except KafkaError:
            self._force_close()

    def _force_close(self) -> None:
        """Stop the producer's I/O thread without sending what is left.

        kafka-python's ``close()`` flushes first and raises while a batch is still unanswered
        (the broker went away; an idempotent producer then never expires it), leaving the thread
        running. Those records are already reported as not confirmed; let the process exit.
        """
        sender = getattr(self._producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(5)
        with contextlib.suppress(KafkaError):
            self._producer.close(timeout=0)


@dataclass
class Connection:
    sink: Sink
    retention_ms: int | None = None
    record_limit: RecordLimit | None = None  # None: records are not checked before sending


def unreachable_message(settings: Settings, wait_s: float, error: BaseException) -> str:
    return (
        f"no Kafka broker answered at {settings.kafka_bootstrap_servers} within {wait_s:.0f} s "
        f"({type(error).__name__}); start one with `stormvarsel kafka start` or set "
        f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"
    )


def connect_kafka(settings: Settings, topic: str, wait_s: float) -> Connection:
    """Check that the topic exists, then open an idempotent producer with acks=all."""
    admin = connect_admin(settings, timeout_s=wait_s)  # raises KafkaUnreachable
    try:
        if topic not in set(admin.list_topics()):
            raise IngestError(
                f"topic {topic!r} does not exist at {settings.kafka_bootstrap_servers}; create "
                "the pipeline topics with `stormvarsel topics create`, or check --topic and "
                f"{ENV_PREFIX}TOPIC_PREFIX"
            )
        retention = config_values(admin, ConfigResourceType.TOPIC, topic, ["retention.ms"])
        limit = record_limit(admin, topic, PRODUCER_LIMIT)
    except KafkaError as exc:
        raise KafkaUnreachable(unreachable_message(settings, wait_s, exc)) from None
    finally:
        admin.close()
    try:
        producer = KafkaProducer(
            **client_config(settings, "stormvarsel-ingest"),
            acks="all",
            linger_ms=20,
            bootstrap_timeout_ms=max(1_000, int(wait_s * 1000)),
            allow_auto_create_topics=False,
            max_block_ms=10_000,
            request_timeout_ms=10_000,
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
            max_request_size=PRODUCER_MAX_REQUEST_SIZE,
            # A batch of several records never exceeds batch_size (a record larger than it goes
            # alone), so none of them is refused for a batch the topic's limit does not take.
            batch_size=max(1, min(PRODUCER_BATCH_SIZE, limit.max_bytes)),
        )
    except (KafkaError, OSError) as exc:
        raise KafkaUnreachable(unreachable_message(settings, wait_s, exc)) from None
    log.debug(
        "ingest.connected",
        topic=topic,
        retention_ms=retention.get("retention.ms"),
        max_batch_bytes=limit.max_bytes,
        limit_from=limit.setting,
    )
    return Connection(KafkaSink(producer, topic), retention.get("retention.ms"), limit)
