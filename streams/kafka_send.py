"""Sending a record with Faust's producer and keeping Kafka's answer; fitting the producer's
record batches to the topics it writes."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.log_setup import get_logger

log = get_logger(__name__)

#: Attribute on the Faust app: the latest record limit read of each topic the worker writes.
_BATCH_LIMITS = "_stormvarsel_batch_limits"
#: Attribute on the Faust app: the batch size configured, before any limit lowered it.
_BATCH_CONFIGURED = "_stormvarsel_batch_configured"


async def publish(topic: Any, **fields: Any) -> asyncio.Future[Any]:
    """Hand a record (``key``, ``value``, ``timestamp``, ``headers``) to the producer as Faust's
    ``topic.send`` does (publish-on-commit is off), and return the future that carries Kafka's
    answer. ``send`` returns the Kafka client's future instead and leaves Faust's own without a
    reader: when Kafka refused the record, asyncio logged "FutureMessage exception was never
    retrieved" beside the error the caller handled."""
    pending: asyncio.Future[Any] = topic.as_future_message(**fields)
    await topic.publish_message(pending)
    return pending


def fit_batches(app: Any, topic: str, max_bytes: int) -> int:
    """Keep the producer's record batches within ``max_bytes``, the limit just read of ``topic``
    (and within every other topic's latest limit); the batch size now set.

    Kafka applies a topic's ``max.message.bytes`` to a whole record batch, and aiokafka packs the
    records sent to a partition within its linger into batches of up to Faust's
    ``producer_max_batch_size`` (16,384 bytes): records that each fit a smaller limit were
    refused together. The producer's batch size is one for all topics, so it is the smallest of
    the configured size and the limits read; it rises again when a limit does. It applies to the
    batches the running producer begins from now on (its accumulator's size), and to a producer
    Faust makes later. A record larger than the batch size still goes, alone in its batch."""
    limits: dict[str, int] = app.__dict__.setdefault(_BATCH_LIMITS, {})
    configured: int = app.__dict__.setdefault(
        _BATCH_CONFIGURED, int(app.conf.producer_max_batch_size)
    )
    limits[topic] = max_bytes
    size = min(configured, *limits.values())
    producer = app.producer
    if producer.max_batch_size != size:
        log.info("producer.batch_size", bytes=size, topic=topic, topic_limit=max_bytes)
    producer.max_batch_size = size
    # aiokafka's producer, once Faust started it: new batches take the accumulator's size.
    accumulator = getattr(getattr(producer, "_producer", None), "_message_accumulator", None)
    if accumulator is not None:
        accumulator._batch_size = size
    return size
