"""A mention dated ahead of its arrival, on the real Kafka: it must not make the mentions that
arrive after it late (the validator allows an hour of skew; lateness is a minute)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.running_worker import start_worker

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
