"""The largest record a topic takes, read from Kafka, for every producer that writes mentions.

``stormvarsel ingest`` and the worker's ``POST /mentions`` both check a record against this
before sending it: a record over the topic's ``max.message.bytes`` is refused by the broker, and
told only as ``MessageSizeTooLargeError``, without its size or the limit (kafka-python then fails
the records sent after it to the same partition too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError

from streams.log_setup import get_logger
from streams.mention import Rejection

log = get_logger(__name__)

#: What a record alone in a record batch takes beyond its key and value. The batch header is 61
#: bytes, the record's own fields 3 more, plus three varints (the record's length, the key's and
#: the value's): 70 to 73 bytes for keys and values under 1 MiB, measured against a real broker
#: (the largest value a topic with ``max.message.bytes`` 2,000 takes with an 8-byte key is 1,922
#: bytes; 300,000 takes 299,920). The rest is a margin; ``tests/test_intake_kafka_limits.py``
#: checks both against the broker.
RECORD_BATCH_OVERHEAD = 100

TOO_LARGE_FOR_TOPIC = "too_large_for_topic"


def batch_bytes(key: bytes, value: bytes) -> int:
    """The bytes a record takes alone in a Kafka record batch, with a margin."""
    return len(key) + len(value) + RECORD_BATCH_OVERHEAD


@dataclass(frozen=True)
class RecordLimit:
    """The largest record batch the destination takes, and the setting it comes from."""

    max_bytes: int
    setting: str  # e.g. "max.message.bytes of topic 'mentions'", for the user

    def refusal(self, key: bytes, value: bytes) -> Rejection | None:
        """Why this record cannot be sent (Kafka would refuse it), or None when it fits."""
        size = batch_bytes(key, value)
        if size <= self.max_bytes:
            return None
        return Rejection(
            TOO_LARGE_FOR_TOPIC,
            f"the record takes {size:,} bytes in a Kafka record batch (key and value "
            f"{size - RECORD_BATCH_OVERHEAD:,} + {RECORD_BATCH_OVERHEAD} for the batch); the "
            f"limit is {self.max_bytes:,} ({self.setting})",
        )


def config_values(
    admin: KafkaAdminClient, kind: ConfigResourceType, name: str, keys: Sequence[str]
) -> dict[str, int]:
    """Integer settings of a topic or broker, in one request; those that cannot be read are
    left out (all of them when the request fails).

    kafka-python raises for a broker that has no DescribeConfigs (or none at all), but leaves a
    resource the broker refused (an ACL) out of its answer or empty.
    """
    resource = ConfigResource(kind, name, list(keys))
    try:
        described = admin.describe_configs([resource], config_filter="all")
        entries = described[kind.name.lower()][name]
    except (KafkaError, KeyError, TypeError, AttributeError) as exc:
        log.debug("kafka.config_unread", resource=name, keys=list(keys), error=repr(exc))
        return {}
    values: dict[str, int] = {}
    for key in keys:
        try:
            values[key] = int(entries[key]["value"])
        except (KeyError, TypeError, ValueError) as exc:
            log.debug("kafka.config_unread", resource=name, keys=[key], error=repr(exc))
    return values


def _broker_id(admin: KafkaAdminClient) -> str | None:
    try:
        brokers = admin.describe_cluster()["brokers"]
        first = brokers[0]
        return str(first.get("node_id", first.get("broker_id")))
    except (KafkaError, KeyError, IndexError, TypeError, AttributeError) as exc:
        log.debug("kafka.brokers_unread", error=repr(exc))
        return None


def record_limit(
    admin: KafkaAdminClient,
    topic: str,
    producer: tuple[int, str],
    *,
    warning: str = "ingest.topic_limit_unknown",
) -> RecordLimit:
    """The largest record batch ``topic`` takes from a producer whose own limit is
    ``producer`` (bytes, and the setting's name).

    The topic's ``max.message.bytes`` (its own, or the broker's default it inherits); when that
    cannot be read, the broker's ``message.max.bytes``; the producer's limit when it is smaller,
    or when neither can be read (then with one ``warning``).
    """
    read = config_values(admin, ConfigResourceType.TOPIC, topic, ["max.message.bytes"])
    topic_limit = read.get("max.message.bytes")
    found: tuple[int, str] | None = None
    if topic_limit is not None:
        found = (topic_limit, f"max.message.bytes of topic {topic!r}")
    else:
        broker = _broker_id(admin)
        if broker is not None:
            read = config_values(admin, ConfigResourceType.BROKER, broker, ["message.max.bytes"])
            if "message.max.bytes" in read:
                found = (read["message.max.bytes"], f"message.max.bytes of broker {broker}")
    if found is None:
        log.warning(
            warning,
            topic=topic,
            hint="neither the topic's max.message.bytes nor the broker's message.max.bytes "
            "could be read (no DescribeConfigs permission, or an old broker); a record over the "
            "limit will fail as send_failed:MessageSizeTooLargeError, and may fail records sent "
            "after it to the same partition",
        )
        return RecordLimit(*producer)
    return RecordLimit(*min(found, producer, key=lambda limit: limit[0]))
