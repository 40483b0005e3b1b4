"""Sending a record with Faust's producer and keeping Kafka's answer."""

from __future__ import annotations

import asyncio
from typing import Any


async def publish(topic: Any, **fields: Any) -> asyncio.Future[Any]:
    """Hand a record (``key``, ``value``, ``timestamp``, ``headers``) to the producer as Faust's
    ``topic.send`` does (publish-on-commit is off), and return the future that carries Kafka's
    answer. ``send`` returns the Kafka client's future instead and leaves Faust's own without a
    reader: when Kafka refused the record, asyncio logged "FutureMessage exception was never
    retrieved" beside the error the caller handled."""
    pending: asyncio.Future[Any] = topic.as_future_message(**fields)
    await topic.publish_message(pending)
    return pending
