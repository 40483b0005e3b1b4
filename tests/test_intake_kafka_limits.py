"""A record over the topic's ``max.message.bytes``: Kafka refuses the batch holding it, and
kafka-python then failed the small records sent after it to the same partition as well (the
idempotent producer fails every later batch). Ingest now reads the topic's limit when it connects
and never sends a record that does not fit: it is rejected locally as ``too_large_for_topic``,
with its size and the limit, and every record after it is sent."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, MessageSizeTooLargeError

from streams.ingest.kafka_sink import connect_kafka
from streams.kafka_local import LocalKafka
from streams.settings import Settings
from streams.topic_limit import RECORD_BATCH_OVERHEAD
from tests.test_ingest import run_cli


def small_topic(kafka: LocalKafka, max_message_bytes: int) -> str:
    topic = f"small-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    configs = {"max.message.bytes": str(max_message_bytes)}
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    admin.close()
    return topic


def ids_in(kafka: LocalKafka, topic: str, expected: int) -> list[str]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    ids = []
    for message in consumer:
        ids.append(json.loads(message.value)["id"])
        if len(ids) >= expected:
            break
    consumer.close()
    return ids


def ingest(
    kafka: LocalKafka, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(kafka, *args, stdin=stdin, timeout=120)


@pytest.mark.integration
def test_a_record_over_the_topic_limit_is_refused_with_its_size_and_every_other_is_sent(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    topic = small_topic(kafka, 2000)
    large = 11  # the line of the record too large for the topic
    source = tmp_path / "mentions.jsonl"
    source.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"q{line}",
                    "text": "x" * (5000 if line == large else 10),
                    "created_at": 1795511700,
                }
            )
            + "\n"
            for line in range(1, 32)
        )
    )
    rejects = tmp_path / "rejects.jsonl"

    result = ingest(kafka, str(source), "--topic", topic, "--rejects", str(rejects))

    small = [f"q{line}" for line in range(1, 32) if line != large]
    assert sorted(ids_in(kafka, topic, 31)) == sorted(small)  # every small record, once
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "read           31 records" in out
    assert "sent           30 to topic" in out
    assert "rejected        1 locally (not sent)" in out
    assert "too_large_for_topic      1  line 11" in out
    assert f"over the 2,000-byte limit, max.message.bytes of topic '{topic}'" in out
    assert "failed" not in out  # no send failed, not even the one after the large record
    assert "exit 1: 1 record rejected locally and not sent" in out
    (entry,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert entry["line"] == large and entry["reason"] == "too_large_for_topic"
    sent_as = json.dumps(json.loads(entry["raw"]), separators=(",", ":"))  # compact
    size = len(sent_as) + len(f"q{large}") + RECORD_BATCH_OVERHEAD
    assert entry["message"] == (
        f"the record takes {size:,} bytes in a Kafka record batch (key and value "
        f"{size - RECORD_BATCH_OVERHEAD:,} + {RECORD_BATCH_OVERHEAD} for the batch); the limit "
        f"is 2,000 (max.message.bytes of topic '{topic}')"
    )

    allowed = ingest(kafka, str(source), "--topic", topic, "--allow-rejects")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "sent           30 to topic" in allowed.stdout


@pytest.mark.integration
def test_a_record_that_just_fits_the_topic_limit_is_sent(kafka: LocalKafka) -> None:
    """The largest record ingest lets through is taken by the broker, even after small ones
    that fill the producer's batches (their batches are kept under the limit too)."""
    limit = 2000
    topic = small_topic(kafka, limit)
    settings = Settings(kafka_bootstrap_servers=kafka.bootstrap)
    connection = connect_kafka(settings, topic, 10)
    assert connection.record_limit is not None
    assert connection.record_limit.max_bytes == limit
    connection.sink.close()

    head = '{"id":"fits","created_at":1795511700,"text":"'
    text = "y" * (limit - RECORD_BATCH_OVERHEAD - len("fits") - len(head) - 2)
    lines = [
        json.dumps({"id": f"s{i}", "text": "z" * 40, "created_at": 1795511700}) for i in range(60)
    ]
    lines.insert(30, head + text + '"}')
    assert len(lines[30]) + len("fits") + RECORD_BATCH_OVERHEAD == limit
    result = ingest(kafka, "-", "--format", "jsonl", "--topic", topic, stdin="\n".join(lines))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sent           61 to topic" in result.stdout
    assert "fits" in ids_in(kafka, topic, 61)


def send_alone(kafka: LocalKafka, topic: str, key: bytes, value: bytes) -> bool:
    """Whether the broker takes this one record (a fresh producer: after a refusal,
    kafka-python's idempotent producer fails the records that follow)."""
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=0)
    try:
        producer.send(topic, key=key, value=value, timestamp_ms=1795511700000).get(timeout=10)
        return True
    except MessageSizeTooLargeError:
        return False
    except KafkaError as exc:
        pytest.fail(f"the broker failed the record otherwise: {exc!r}")
    finally:
        producer.close(timeout=5)


@pytest.mark.integration
@pytest.mark.parametrize(("limit", "key_bytes"), [(2000, 8), (300_000, 200)])
def test_the_batch_overhead_is_measured_with_a_margin_of_at_most_31_bytes(
    kafka: LocalKafka, limit: int, key_bytes: int
) -> None:
    """One record alone in a batch takes 70-73 bytes beyond its key and value (the varints
    grow with the sizes); RECORD_BATCH_OVERHEAD must cover that and not refuse much more."""
    topic = small_topic(kafka, limit)
    key = b"k" * key_bytes
    largest_let_through = limit - RECORD_BATCH_OVERHEAD - key_bytes
    assert send_alone(kafka, topic, key, b"v" * largest_let_through)
    assert not send_alone(kafka, topic, key, b"v" * (largest_let_through + 31))
