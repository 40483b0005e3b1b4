"""Records that each fit a topic's limit are not refused for the batch they travel in.

Before: Kafka applies ``max.message.bytes`` to a whole record batch, and aiokafka packs the
records a worker sends to a partition into batches of up to Faust's ``producer_max_batch_size``
(16,384 bytes). A ``mentions.valid`` of 3,000 bytes took 4 of a burst of 40 valid mentions of
about 830 bytes each and refused the other 36 (dead-lettered as ``refused_by_kafka``); a
``mentions.dlq`` of 2,500 bytes refused a burst of dead letters, and the worker stopped
(``forward.lost``). Now every limit the worker reads bounds its producer's batches
(``streams.kafka_send.fit_batches``), and a record refused as too large that fits the limit
read again alone is sent once more.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from streams.kafka_local import LocalKafka
from tests.forward_limits_support import accounted, burst, set_topic_config
from tests.running_worker import start_worker, topics_made_first

pytestmark = pytest.mark.integration

VALID_LIMIT = 3000  # max.message.bytes of mentions.valid: five forwarded mentions fit in it
DLQ_LIMIT = 2500  # of mentions.dlq: one dead letter of a 900-byte record fits, two do not


def valid_mentions(first: int, count: int) -> list[bytes]:
    """``count`` valid mentions of about 830 bytes forwarded (each fits ``VALID_LIMIT`` alone)."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    return [
        json.dumps(
            {
                "id": f"batch-{index}",
                "text": "Nordlys Energi svarer ikke " + "x" * 300,
                "created_at": (start + timedelta(seconds=index)).isoformat(),
                "brand": "nordlys-energi",
            }
        ).encode()
        for index in range(first, first + count)
    ]


def test_bursts_fit_topics_whose_limits_are_below_the_producers_batch_size(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    prefix = topics_made_first(
        admin,
        {
            "mentions.valid": {"max.message.bytes": str(VALID_LIMIT)},
            "mentions.dlq": {"max.message.bytes": str(DLQ_LIMIT)},
        },
    )
    worker = start_worker(kafka, tmp_path, prefix=prefix, STORMVARSEL_TOPIC_PARTITIONS="1")
    try:
        invalid = [b"not json " * 100 + str(i).encode() for i in range(30)]  # letters ~1,400 B
        burst(kafka.bootstrap, worker.topic("mentions"), valid_mentions(0, 40) + invalid)
        valid, letters = accounted(worker, 40, 30)
        assert worker.process.poll() is None, worker.log_tail()
        assert sorted(json.loads(r.value)["id"] for r in valid) == sorted(
            f"batch-{i}" for i in range(40)
        )
        assert [letter["reason"] for letter in letters] == ["invalid_json"] * 30
        log = worker.log.read_text()
        assert "forward.lost" not in log and '"forward.refused"' not in log
        assert '"producer.batch_size"' in log  # fitted to the smallest limit read
    finally:
        worker.stop()


def test_a_limit_lowered_below_the_batch_size_while_the_worker_runs_refuses_no_mention(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    """The worker read ``mentions.valid``'s limit (1 MiB) before it was lowered: its batches
    are refused until it reads the limit again, after the first refusal; the records refused
    with a batch each fit the new limit alone, and are sent once more in batches that fit."""
    worker = start_worker(kafka, tmp_path, STORMVARSEL_TOPIC_PARTITIONS="1")
    try:
        burst(kafka.bootstrap, worker.topic("mentions"), valid_mentions(0, 1))
        worker.consume("mentions.valid", 1, timeout_s=60)  # the limit is read and kept a minute
        set_topic_config(admin, worker.topic("mentions.valid"), "max.message.bytes", VALID_LIMIT)
        burst(kafka.bootstrap, worker.topic("mentions"), valid_mentions(1, 40))
        valid, letters = accounted(worker, 41, 0)
        assert worker.process.poll() is None, worker.log_tail()
        assert sorted(json.loads(r.value)["id"] for r in valid) == sorted(
            f"batch-{i}" for i in range(41)
        )
        assert letters == []
        assert '"forward.sent_again"' in worker.log.read_text()
    finally:
        worker.stop()
