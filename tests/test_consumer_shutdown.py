"""A consumer stopped during a broker outage stops cleanly (see ``streams.kafka_fixes``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from streams import kafka_fixes
from tests.conftest import make_broker

pytestmark = pytest.mark.integration


def _asleep(task: asyncio.Task[object]) -> bool:
    """Whether ``task`` waits in ``asyncio.sleep`` (a failed fetch's retry back-off)."""
    waiting = getattr(task.get_coro(), "cr_await", None)
    return not task.done() and getattr(waiting, "__name__", "") == "sleep"


def test_a_consumer_stops_cleanly_while_its_fetch_waits_out_an_outage(tmp_path: Path) -> None:
    """Before: ``Fetcher.close`` raised the CancelledError of a fetch sleeping its retry
    back-off, so Faust's consumer thread never reported itself stopped, and a SIGTERM during an
    outage took 62 s (compose kills after 30 s)."""
    kafka_fixes.install()
    broker = make_broker(tmp_path / "kafka")  # its own: this test stops it
    broker.start(timeout_s=90)
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("outage", 1, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        producer.send("outage", b"x").get(timeout=30)
        producer.close()

        async def scenario() -> str | None:
            consumer = AIOKafkaConsumer(
                "outage",
                bootstrap_servers=broker.bootstrap,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=5_000,  # a fetch is in flight when the broker goes
                retry_backoff_ms=30_000,  # and then sleeps out its back-off
            )
            await consumer.start()
            assert await consumer.getone()

            async def poll() -> None:  # as Faust's consumer thread does, all the time
                while True:
                    with contextlib.suppress(Exception):
                        await consumer.getmany(timeout_ms=1_000)

            polling = asyncio.ensure_future(poll())
            await asyncio.sleep(1.0)
            assert broker.stop()
            fetcher = consumer._fetcher
            deadline = time.monotonic() + 20
            while not any(map(_asleep, fetcher._pending_tasks)):  # the case that hung
                assert time.monotonic() < deadline, "no failed fetch during the outage"
                await asyncio.sleep(0.2)
            polling.cancel()
            try:
                await consumer.stop()
            except asyncio.CancelledError:
                return "consumer.stop() raised CancelledError"
            left = [task for task in fetcher._pending_tasks if not task.done()]
            return f"{len(left)} fetches still pending" if left else None

        problem = asyncio.run(scenario())
    finally:
        broker.stop()
    assert problem is None
