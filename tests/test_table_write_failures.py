"""A table write Kafka refuses stops the worker before its record's offset is committed
(``streams/table_writes.py``).

Before: Faust writes a table's changelog with ``send_soon`` and nobody waited for Kafka's answer.
A changelog topic that refused the record (here its ``max.message.bytes`` is below any
``mention-ids`` record) failed only the write's future; the producer's flush before the commit
waited for the batch to be answered, not delivered, and the worker committed every mention while
the changelog stayed empty: a restart restores a table without those writes, and never reads
the mentions again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.transport.producer import ProducerBuffer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from streams import kafka_fixes
from streams.kafka_local import LocalKafka
from streams.table_writes import TableWriteFailed, TableWrites
from tests.running_worker import committed_offset, start_worker

TINY_LIMIT = 100  # max.message.bytes of the mention-ids changelog: below any of its records
MENTIONS = 3


class Write(asyncio.Future[Any]):
    """Stands for Faust's ``FutureMessage`` of a changelog write."""

    def __init__(self, key: bytes, value: bytes) -> None:
        super().__init__()
        channel = SimpleNamespace(get_topic_name=lambda: "app-mention-ids-changelog")
        self.message = SimpleNamespace(key=key, value=value, partition=2, channel=channel)


class App:
    def __init__(self) -> None:
        self.crashed: list[BaseException] = []

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)


def failed_count(table: str) -> float:
    labels = {"table": table}
    return REGISTRY.get_sample_value("stormvarsel_table_writes_failed_total", labels) or 0.0


def test_acknowledged_writes_let_the_flush_through() -> None:
    async def run() -> App:
        app = App()
        writes = TableWrites(app)
        write = Write(b'"k"', b"[1]")
        writes.track("mention-ids", write)
        marked = writes.mark()
        asyncio.get_running_loop().call_later(0.05, write.set_result, None)
        await writes.settle(marked)
        assert writes.in_flight == 0 and not writes.failed
        return app

    assert asyncio.run(run()).crashed == []


def test_a_refused_write_is_logged_counted_and_fails_every_flush_after() -> None:
    before = failed_count("mention-ids")

    async def run() -> tuple[App, list[dict[str, Any]]]:
        app = App()
        writes = TableWrites(app)
        write = Write(b'"nordlys-energi/x:m-0"', b"x" * 500)
        with capture_logs() as logs:
            writes.track("mention-ids", write)
            marked = writes.mark()
            write.set_exception(MessageSizeTooLargeError())
            with pytest.raises(TableWriteFailed, match="mention-ids"):
                await writes.settle(marked)
            with pytest.raises(TableWriteFailed):  # and every flush after: nothing is committed
                await writes.settle(set())
        await asyncio.sleep(0)  # the crash
        return app, logs

    app, logs = asyncio.run(run())
    [failed] = [entry for entry in logs if entry["event"] == "table.write_failed"]
    assert failed["log_level"] == "error"
    assert failed["table"] == "mention-ids"
    assert failed["topic"] == "app-mention-ids-changelog" and failed["partition"] == 2
    assert failed["key"] == '"nordlys-energi/x:m-0"'
    assert failed["bytes"] == 22 + 500
    assert failed["error"].startswith("MessageSizeTooLargeError")
    assert failed_count("mention-ids") == before + 1
    [reason] = app.crashed
    assert isinstance(reason, TableWriteFailed)
    assert "mention-ids" in str(reason) and "MessageSizeTooLargeError" in str(reason)


def test_a_write_not_answered_in_time_fails_the_flush() -> None:
    async def run() -> None:
        writes = TableWrites(App(), settle_timeout_s=0.05)
        writes.track("detector-state", Write(b'"b"', b"{}"))
        with pytest.raises(TableWriteFailed, match="not answered"):
            await writes.settle(writes.mark())

    asyncio.run(run())


def test_a_send_the_client_refuses_at_once_tells_the_writes_future() -> None:
    """Over the producer's ``max_request_size`` aiokafka raises at once: the buffer's task
    still crashes (the worker stops, as before), and the write's future says why, so that the
    table's write is reported with its key."""
    kafka_fixes.install()

    class Refusing:
        async def publish_message(self, fut: Any, wait: bool = False) -> None:
            raise ProducerSendError("Error while sending: MessageSizeTooLargeError()")

    async def run() -> Write:
        buffer = ProducerBuffer()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        write = Write(b'"acme"', b"x")
        write.message.channel = Refusing()
        with pytest.raises(ProducerSendError):
            await buffer._send_pending(write)  # type: ignore[arg-type]
        return write

    write = asyncio.run(run())
    assert isinstance(write.exception(), ProducerSendError)


# On the real Kafka.


def changelog_records(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    try:
        consumer.assign([TopicPartition(topic, 0)])
        return list(consumer)
    finally:
        consumer.close()


def send_mentions(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for index in range(MENTIONS):
            item = {
                "id": f"m-{index}",
                "platform": "x",
                "created_at": time.time(),
                "text": "Strømmen er borte igjen",
                "brand": "nordlys-energi",
            }
            producer.send(topic, key=item["id"].encode(), value=json.dumps(item).encode())
        producer.flush()
    finally:
        producer.close()


@pytest.mark.integration
def test_a_changelog_write_kafka_refuses_stops_the_worker_before_the_commit(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    group = f"test-{prefix.rstrip('.')}"
    changelog = f"{group}-mention-ids-changelog"
    compact = {"cleanup.policy": "compact"}
    tiny = {**compact, "max.message.bytes": str(TINY_LIMIT)}
    admin.create_topics([NewTopic(changelog, 1, 1, topic_configs=tiny)])
    for run in ("first", "again"):
        (tmp_path / run).mkdir()
    worker = start_worker(
        kafka, tmp_path / "first", prefix=prefix, STORMVARSEL_TOPIC_PARTITIONS="1"
    )
    mentions = worker.topic("mentions")
    try:
        send_mentions(kafka.bootstrap, mentions)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.process.poll() is None:
            if committed_offset(kafka.bootstrap, group, mentions) > 0:
                break  # the old code: committed past the refused writes
            time.sleep(0.5)
        committed = committed_offset(kafka.bootstrap, group, mentions)
        assert changelog_records(kafka.bootstrap, changelog) == []
        assert committed == 0, (
            f"{committed} mention(s) committed while their mention-ids writes were refused"
        )
        assert worker.process.wait(timeout=30) != 0
        failed = [
            json.loads(line)
            for line in worker.log.read_text().splitlines()
            if '"table.write_failed"' in line
        ]
        assert failed, worker.log_tail()
        assert failed[0]["table"] == "mention-ids" and failed[0]["topic"] == changelog
        assert failed[0]["key"].startswith('"nordlys-energi/x:m-')
        assert "MessageSizeTooLargeError" in failed[0]["error"]
    finally:
        worker.stop()

    # The operator raises the limit: the restarted worker reads the mentions again.
    admin.alter_configs(
        [
            ConfigResource(
                ConfigResourceType.TOPIC, changelog, {**compact, "max.message.bytes": "1048588"}
            )
        ]
    )
    time.sleep(2)  # the broker applies a topic's new config within a moment
    again = start_worker(kafka, tmp_path / "again", prefix=prefix, STORMVARSEL_TOPIC_PARTITIONS="1")
    try:
        again.wait(
            lambda: committed_offset(kafka.bootstrap, group, mentions) == MENTIONS,
            60,
            "the mentions committed after the restart",
        )
        keys = {record.key for record in changelog_records(kafka.bootstrap, changelog)}
        assert keys == {f'"nordlys-energi/x:m-{index}"'.encode() for index in range(MENTIONS)}
    finally:
        again.stop()
