"""On the real Kafka: a brand going quiet with nothing waiting upstream is closed by the detect
stage's wall-clock timer without a hold. The timer asks the upstream probe only while a partition
is quiet, and the probe used to answer the first ask of every quiet spell "not caught up" (no
sample old enough to compare with): a hold counted, the holding gauge at 1, a
``detect.timer_held`` / ``detect.timer_released`` pair in the log, and the buckets closed late."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.running_worker import committed_offset, start_quick_worker

pytestmark = pytest.mark.integration

BRAND = "nordlys-energi"  # of deploy/brands.yaml


def test_a_quiet_spell_with_nothing_upstream_closes_without_a_hold(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    # 6-second buckets; the timer asks every second once the partition is quiet.
    worker = start_quick_worker(kafka, tmp_path)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    counted = f"stormvarsel_brand_mentions_counted{{brand={BRAND}}}"
    closed = "stormvarsel_buckets_closed_total{}"
    try:
        value = {"id": "one", "text": "power cut", "created_at": time.time(), "brand": BRAND}
        producer.send(worker.topic("mentions"), value=json.dumps(value).encode())
        producer.flush()
        worker.wait(lambda: worker.metrics().get(counted) == 1, 60, "the mention counted")
        before = worker.metrics().get(closed, 0)
        # Nothing else arrives: the timer closes the mention's bucket by wall clock.
        worker.wait(lambda: worker.metrics().get(closed, 0) > before, 60, "its bucket closed")
        metrics = worker.metrics()
        assert metrics.get("stormvarsel_detect_timer_held_total{}", 0) == 0, worker.log_tail()
        assert metrics.get("stormvarsel_detect_timer_holding{}") == 0
        assert "detect.timer_held" not in worker.log.read_text(errors="replace")
    finally:
        producer.close()
        worker.stop()


def test_a_transactional_collector_s_last_marker_is_committed_past(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """A collector writing in transactions (Kafka Connect's exactly-once sources, Flink) ends
    each with a commit marker, an offset the consumer never hands out. At the end of the
    partition nothing showed it to be one: the group committed one short of the end for good,
    the consumer lag stayed at 1 and the timer held a quiet brand's buckets open, so its storm
    could never resolve."""
    worker = start_quick_worker(kafka, tmp_path)
    topic = worker.topic("mentions")
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, transactional_id=f"{topic}-c")
    counted = f"stormvarsel_brand_mentions_counted{{brand={BRAND}}}"
    closed = "stormvarsel_buckets_closed_total{}"
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for n in range(3):
            value = {"id": f"t{n}", "text": "power cut", "created_at": time.time(), "brand": BRAND}
            producer.send(topic, value=json.dumps(value).encode(), partition=0)
        producer.commit_transaction()  # offsets 0-2, the marker at 3
        worker.wait(lambda: worker.metrics().get(counted) == 3, 60, "the mentions counted")
        group = worker.env["STORMVARSEL_APP_ID"]
        worker.wait(
            lambda: committed_offset(kafka.bootstrap, group, topic) == 4,
            60,
            "the commit past the transaction's marker",
        )
        before = worker.metrics().get(closed, 0)
        worker.wait(lambda: worker.metrics().get(closed, 0) > before, 60, "the bucket closed")
        assert worker.metrics().get("stormvarsel_detect_timer_holding{}") == 0
    finally:
        producer.close()
        worker.stop()
