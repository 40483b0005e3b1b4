"""Sending to Kafka: an idempotent producer with acks=all, after checking that the topic exists."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError, UnknownError

from streams.ingest.errors import IngestError
from streams.ingest.mapping import Ready
from streams.kafka_clients import (
    KafkaUnreachable,
    client_config,
    connect_admin,
)
from streams.log_setup import get_logger
from streams.mention import Rejection
from streams.settings import ENV_PREFIX, Settings

log = get_logger(__name__)

DELIVERY_TIMEOUT_MS = 30_000  # Kafka must acknowledge a record within this, or it has failed
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 5  # never cut a delivery short
PRODUCER_MAX_REQUEST_SIZE = 1_048_576  # kafka-python's default max_request_size, set explicitly
PRODUCER_BATCH_SIZE = 16_384  # kafka-python's default; lowered for a topic that takes less

#: What a record alone in a record batch takes beyond its key and value. The batch header is 61
#: bytes, the record's own fields 3 more, plus three varints (the record's length, the key's and
#: the value's): 70 to 73 bytes for keys and values under 1 MiB, measured against a real broker
#: (the largest value a topic with ``max.message.bytes`` 2,000 takes with an 8-byte key is 1,922
#: bytes; 300,000 takes 299,920). The rest is a margin; ``tests/test_intake_kafka_limits.py``
#: checks both against the broker.
RECORD_BATCH_OVERHEAD = 100

TOO_LARGE_FOR_TOPIC = "too_large_for_topic"


class Sink(Protocol):
    """Where records go: Kafka, or a list in tests."""

    def send(self, record: Ready, on_done: Callable[[Exception | None], None]) -> None: ...

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


def batch_bytes(record: Ready) -> int:
    """The bytes ``record`` takes alone in a Kafka record batch, with a margin."""
    return len(record.key) + len(record.value) + RECORD_BATCH_OVERHEAD


@dataclass(frozen=True)
class RecordLimit:
    """The largest record batch the destination takes, and the setting it comes from."""

    max_bytes: int
    setting: str  # e.g. "max.message.bytes of topic 'mentions'", for the user

    def refusal(self, record: Ready) -> Rejection | None:
        """Why ``record`` cannot be sent (Kafka would refuse it), or None when it fits."""
        size = batch_bytes(record)
        if size <= self.max_bytes:
            return None
        return Rejection(
            TOO_LARGE_FOR_TOPIC,
            f"the record takes {size:,} bytes in a Kafka record batch (key and value "
            f"{size - RECORD_BATCH_OVERHEAD:,} + {RECORD_BATCH_OVERHEAD} for the batch); the "
            f"limit is {self.max_bytes:,} ({self.setting})",
        )


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


def _config_value(
    admin: KafkaAdminClient, kind: ConfigResourceType, name: str, key: str
) -> int | None:
    """One integer setting of a topic or broker, or None when it cannot be read.

    kafka-python raises for a broker that has no DescribeConfigs (or none at all), but leaves a
    resource the broker refused (an ACL) out of its answer or empty.
    """
    resource = ConfigResource(kind, name, [key])
    try:
        described = admin.describe_configs([resource], config_filter="all")
        return int(described[kind.name.lower()][name][key]["value"])
    except (KafkaError, KeyError, TypeError, ValueError, AttributeError) as exc:
        log.debug("ingest.config_unread", resource=name, key=key, error=repr(exc))
        return None


def _broker_id(admin: KafkaAdminClient) -> str | None:
    try:
        brokers = admin.describe_cluster()["brokers"]
        first = brokers[0]
        return str(first.get("node_id", first.get("broker_id")))
    except (KafkaError, KeyError, IndexError, TypeError, AttributeError) as exc:
        log.debug("ingest.brokers_unread", error=repr(exc))
        return None


def record_limit(admin: KafkaAdminClient, topic: str) -> RecordLimit:
    """The largest record batch ``topic`` takes from ingest's producer.

    The topic's ``max.message.bytes`` (its own, or the broker's default it inherits); when that
    cannot be read, the broker's ``message.max.bytes``; the producer's ``max_request_size``
    when it is smaller, or when neither can be read (then with one warning).
    """
    found: tuple[int, str] | None = None
    topic_limit = _config_value(admin, ConfigResourceType.TOPIC, topic, "max.message.bytes")
    if topic_limit is not None:
        found = (topic_limit, f"max.message.bytes of topic {topic!r}")
    else:
        broker = _broker_id(admin)
        broker_limit = (
            _config_value(admin, ConfigResourceType.BROKER, broker, "message.max.bytes")
            if broker is not None
            else None
        )
        if broker_limit is not None:
            found = (broker_limit, f"message.max.bytes of broker {broker}")
    producer = (PRODUCER_MAX_REQUEST_SIZE, "the producer's max_request_size")
    if found is None:
        log.warning(
            "ingest.topic_limit_unknown",
            topic=topic,
            hint="neither the topic's max.message.bytes nor the broker's message.max.bytes "
            "could be read (no DescribeConfigs permission, or an old broker); a record over the "
            "limit will fail as send_failed:MessageSizeTooLargeError, and may fail records sent "
            "after it to the same partition",
        )
        return RecordLimit(*producer)
    return RecordLimit(*min(found, producer, key=lambda limit: limit[0]))


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
        retention = _config_value(admin, ConfigResourceType.TOPIC, topic, "retention.ms")
        limit = record_limit(admin, topic)
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
        retention_ms=retention,
        max_batch_bytes=limit.max_bytes,
        limit_from=limit.setting,
    )
    return Connection(KafkaSink(producer, topic), retention, limit)
