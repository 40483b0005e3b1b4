"""Helpers of the tests on what a worker forwards to topics with limits of their own
(``max.message.bytes``, timestamp ranges): a burst of records, a topic setting changed while
the worker runs, and what it forwarded and dead-lettered."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from tests.running_worker import RunningWorker


def burst(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Produce ``values`` to partition 0 together (one fetch for the worker, so that it sends
    its records on in a burst, which aiokafka batches)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    try:
        for value in values:
            producer.send(topic, value=value, partition=0)
        producer.flush()
    finally:
        producer.close()


def set_topic_config(admin: KafkaAdminClient, topic: str, name: str, value: int) -> None:
    """Change one of ``topic``'s settings while the worker runs (after it has read them)."""
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {name: str(value)})])
    time.sleep(2)  # the broker applies a topic's new config within a moment


def accounted(worker: RunningWorker, forwarded: int, lettered: int) -> tuple[Any, list[Any]]:
    """The records on ``mentions.valid`` and the dead letters, once there are as many as
    expected (or 90 s passed)."""
    valid: list[Any] = []
    letters: list[dict[str, Any]] = []

    def arrived() -> bool:
        nonlocal valid, letters
        valid = worker.consume("mentions.valid", forwarded, timeout_s=3)
        letters = [json.loads(r.value) for r in worker.consume("mentions.dlq", 0, timeout_s=2)]
        return len(valid) >= forwarded and len(letters) >= lettered

    deadline = time.monotonic() + 90
    while not arrived() and time.monotonic() < deadline and worker.process.poll() is None:
        time.sleep(1)
    return valid, letters
