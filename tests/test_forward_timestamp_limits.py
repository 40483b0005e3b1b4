"""A mention dated outside the timestamps the next topic takes does not take its batch-mates down.

Before: a ``mentions.valid`` with ``message.timestamp.type`` ``CreateTime`` and a
``message.timestamp.before.max.ms`` (or ``message.timestamp.difference.max.ms`` before Kafka 4.0)
refuses a record dated further back, and Kafka refuses the whole record batch that holds it
(``InvalidTimestampError``). The validation stage forwards a mention with its event time as the
record's timestamp, so one old mention in a burst had the valid mentions aiokafka batched with it
dead-lettered as ``refused_by_kafka`` too. Now the stage reads the topic's timestamp settings
with its size limit and dead-letters a mention outside them as ``timestamp_outside_topic_range``
without sending it; a record Kafka refuses for its timestamp anyway (the setting changed since
it was read) whose own timestamp lies inside the range read again is sent once more.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

from streams.kafka_local import LocalKafka
from tests.forward_limits_support import accounted, burst, set_topic_config
from tests.running_worker import start_worker, topics_made_first

pytestmark = pytest.mark.integration

BEFORE_MAX_MS = 3_600_000  # mentions.valid takes records dated up to an hour back
OLD = 20  # the index of the mention dated three hours back, amid 40 recent ones


def mentions(first: int, count: int, *, old: int | None = None) -> list[bytes]:
    """``count`` valid mentions of the last ten minutes; the one of index ``old`` three hours
    old (valid: the validation stage takes old mentions; the topic does not)."""
    recent = datetime.now(UTC) - timedelta(minutes=10)
    return [
        json.dumps(
            {
                "id": f"ts-{index}",
                "text": "Nordlys Energi svarer ikke",
                "created_at": (
                    datetime.now(UTC) - timedelta(hours=3)
                    if index == old
                    else recent + timedelta(seconds=index)
                ).isoformat(),
                "brand": "nordlys-energi",
            }
        ).encode()
        for index in range(first, first + count)
    ]


def original_id(letter: dict[str, Any]) -> str:
    return str(json.loads(base64.b64decode(letter["original_b64"]))["id"])


def test_an_old_mention_in_a_burst_is_dead_lettered_alone(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    prefix = topics_made_first(
        admin,
        {
            "mentions.valid": {
                "message.timestamp.type": "CreateTime",
                "message.timestamp.before.max.ms": str(BEFORE_MAX_MS),
            }
        },
    )
    worker = start_worker(kafka, tmp_path, prefix=prefix, STORMVARSEL_TOPIC_PARTITIONS="1")
    try:
        burst(kafka.bootstrap, worker.topic("mentions"), mentions(0, 41, old=OLD))
        valid, letters = accounted(worker, 40, 1)
        assert worker.process.poll() is None, worker.log_tail()
        assert sorted(json.loads(r.value)["id"] for r in valid) == sorted(
            f"ts-{i}" for i in range(41) if i != OLD
        )
        assert [(letter["reason"], original_id(letter)) for letter in letters] == [
            ("timestamp_outside_topic_range", f"ts-{OLD}")
        ]
        message = letters[0]["message"]
        assert "message.timestamp.before.max.ms=3600000" in message, message
        assert f"topic '{worker.topic('mentions.valid')}'" in message, message
        log = worker.log.read_text()
        assert "forward.lost" not in log and '"forward.refused"' not in log
    finally:
        worker.stop()


def test_a_timestamp_range_set_while_the_worker_runs_refuses_only_the_old_mention(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    """The worker read ``mentions.valid``'s settings (no timestamp bound) before the bound was
    set: Kafka refuses the batch that holds the old mention; the worker reads the range again,
    sends the recent mentions refused with it once more, and dead-letters the old one."""
    worker = start_worker(kafka, tmp_path, STORMVARSEL_TOPIC_PARTITIONS="1")
    try:
        burst(kafka.bootstrap, worker.topic("mentions"), mentions(100, 1))
        worker.consume("mentions.valid", 1, timeout_s=60)  # the range is read and kept a minute
        set_topic_config(
            admin, worker.topic("mentions.valid"), "message.timestamp.before.max.ms", BEFORE_MAX_MS
        )
        burst(kafka.bootstrap, worker.topic("mentions"), mentions(0, 41, old=OLD))
        valid, letters = accounted(worker, 41, 1)
        assert worker.process.poll() is None, worker.log_tail()
        assert sorted(json.loads(r.value)["id"] for r in valid) == sorted(
            ["ts-100", *(f"ts-{i}" for i in range(41) if i != OLD)]
        )
        assert [(letter["reason"], original_id(letter)) for letter in letters] == [
            ("refused_by_kafka", f"ts-{OLD}")
        ]
        message = letters[0]["message"]
        assert "InvalidTimestampError" in message, message
        assert "message.timestamp.before.max.ms=3600000" in message, message
        assert '"forward.sent_again"' in worker.log.read_text()
    finally:
        worker.stop()
