"""Mentions counted late when they should not be, on the real Kafka: after a mention dated
ahead of its arrival (the validator allows an hour of skew; lateness is a minute), and after
a stall upstream while the detect stage's wall-clock timer was running."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.running_worker import start_quick_worker, start_worker

pytestmark = pytest.mark.integration

BRAND = "nordlys-energi"  # of deploy/brands.yaml


def test_a_mention_dated_half_an_hour_ahead_leaves_the_current_ones_on_time(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    worker = start_worker(kafka, tmp_path, STORMVARSEL_TOPIC_PARTITIONS="1")
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    try:
        now = int(time.time())
        mentions = [{"id": "ahead", "text": "tomorrow's news", "created_at": now + 1800}]
        mentions += [
            {"id": f"now{i}", "text": "power cut again", "created_at": now + i} for i in range(5)
        ]
        for mention in mentions:
            value = json.dumps({**mention, "brand": BRAND}).encode()
            producer.send(worker.topic("mentions"), key=mention["id"].encode(), value=value)
        producer.flush()
        counted = f"stormvarsel_brand_mentions_counted{{brand={BRAND}}}"
        worker.wait(
            lambda: worker.metrics().get(counted) == len(mentions), 120, "the mentions counted"
        )
        scored = [json.loads(r.value) for r in worker.consume("mentions.scored", len(mentions))]
        assert all(abs(r["received_at_ms"] / 1000 - now) < 120 for r in scored)
        assert worker.metrics().get("stormvarsel_late_mentions_total{}") == 0
    finally:
        producer.close()
        worker.stop()


def test_the_idle_timer_waits_for_mentions_held_up_upstream(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """The scoring stage holds a mention for 20 s (its batch wait) while the detect partition
    is quiet: the timer must not close that mention's bucket meanwhile (6-second buckets, no
    allowed lateness, 2 s of quiet before the timer closes anything)."""
    worker = start_quick_worker(
        kafka,
        tmp_path,
        STORMVARSEL_SENTIMENT_BATCH_SIZE="1000",
        STORMVARSEL_SENTIMENT_BATCH_WAIT_S="20",
    )
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    counted = f"stormvarsel_brand_mentions_counted{{brand={BRAND}}}"

    def send(mention_id: str, at_ms: int) -> None:
        value = {"id": mention_id, "text": "power cut", "created_at": at_ms / 1000, "brand": BRAND}
        producer.send(worker.topic("mentions"), value=json.dumps(value).encode())
        producer.flush()

    try:
        first = int(time.time() * 1000) // 6000 * 6000  # the start of a 6-second bucket
        send("first", first)
        worker.wait(lambda: worker.metrics().get(counted) == 1, 60, "the first mention counted")
        send("second", first + 1000)  # its bucket: the first one's, now held up for 20 s
        worker.wait(lambda: worker.metrics().get(counted) == 2, 60, "the second mention counted")
        metrics = worker.metrics()
        assert metrics.get("stormvarsel_late_mentions_total{}") == 0
        assert metrics.get("stormvarsel_detect_timer_held_total{}", 0) > 0
        worker.wait(
            lambda: worker.metrics().get("stormvarsel_detect_timer_holding{}") == 0,
            30,
            "the timer to say it holds nothing back any more",
        )
    finally:
        producer.close()
        worker.stop()
