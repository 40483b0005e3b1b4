"""A record over the topic's ``max.message.bytes``: Kafka refuses the batch holding it, and
kafka-python splits the batch and sends its halves again. A flush under way then failed at once
(``UnknownError('Future not done')``), and ingest reported every record not yet answered, the
good ones in the same batch too, as ``send_failed:not_confirmed``: 21 of 21 for one large record,
with no word of its size."""

from __future__ import annotations

import io
import json
import uuid

from kafka.admin import KafkaAdminClient, NewTopic

from streams.ingest import IngestOptions, Transform, run_ingest
from streams.kafka_local import LocalKafka
from streams.settings import Settings


def test_a_record_over_the_topic_limit_fails_with_its_reason_and_those_before_it_are_sent(
    kafka: LocalKafka,
) -> None:
    topic = f"small-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "2000"})])
    admin.close()
    lines = [
        json.dumps(
            {"id": f"q{i}", "text": "x" * (5000 if i == 10 else 10), "created_at": 1795511700}
        ).encode()
        + b"\n"
        for i in range(21)
    ]
    options = IngestOptions(source=None, format="jsonl", transform=Transform(), topic=topic)
    report = run_ingest(
        Settings(kafka_bootstrap_servers=kafka.bootstrap),
        options,
        stdin=io.BytesIO(b"".join(lines)),
    )
    assert report.read == 21
    assert report.sent + report.failed_count == 21  # every record sent or listed
    assert report.sent >= 10  # those before the large one
    assert "send_failed:not_confirmed" not in report.failed, report.failed
    assert 11 in report.failed["send_failed:MessageSizeTooLargeError"].lines
