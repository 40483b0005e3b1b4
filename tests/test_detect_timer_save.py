"""On the real Kafka: what the wall-clock timer closes is saved to the detect stage's changelog
without waiting for another mention.

Faust takes a table write's changelog partition from the current event, and the timer runs
outside the stream, so the stage writes through ``detect.PartitionTable``. Before, a quiet
brand's closed buckets (and a storm the timer resolved) were saved only with the partition's next
mention, and a restart in between opened the storm again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams.detector_seeds import read_table
from streams.kafka_local import LocalKafka
from streams.settings import Settings
from tests.running_worker import RunningWorker, start_quick_worker

pytestmark = pytest.mark.integration

BRAND = "nordlys-energi"  # of deploy/brands.yaml
BUCKET_MS = 6_000


def saved_states(worker: RunningWorker) -> dict[str, object]:
    settings = Settings(kafka_bootstrap_servers=worker.bootstrap)
    changelog = f"{worker.env['STORMVARSEL_APP_ID']}-detector-state-changelog"
    return read_table(settings, changelog, timeout_s=20)


def test_buckets_the_timer_closed_are_saved_without_another_mention(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    worker = start_quick_worker(kafka, tmp_path)  # 6-second buckets
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    counted = f"stormvarsel_brand_mentions_counted{{brand={BRAND}}}"
    closed = "stormvarsel_buckets_closed_total{}"
    try:
        sent_at = time.time()
        value = {"id": "one", "text": "power cut", "created_at": sent_at, "brand": BRAND}
        producer.send(worker.topic("mentions"), value=json.dumps(value).encode())
        producer.flush()
        worker.wait(lambda: worker.metrics().get(counted) == 1, 60, "the mention counted")
        before = worker.metrics().get(closed, 0)
        # Nothing else arrives: the timer closes the mention's bucket, then empty ones after it.
        worker.wait(lambda: worker.metrics().get(closed, 0) > before + 2, 60, "buckets closed")
        mention_bucket_end = int(sent_at * 1000) // BUCKET_MS * BUCKET_MS + BUCKET_MS

        def saved_past_the_mention() -> bool:
            entry = saved_states(worker).get(BRAND)
            if not isinstance(entry, dict):
                return False
            closed_until = entry["state"].get("closed_until")
            return isinstance(closed_until, int) and closed_until >= mention_bucket_end

        worker.wait(saved_past_the_mention, 60, "the timer's closes in detector-state")
        entry = saved_states(worker)[BRAND]
        assert isinstance(entry, dict) and entry["partition"] == 0
        assert entry["state"]["observed"] == 1, entry["state"].get("observed")
    finally:
        producer.close()
        worker.stop()


def test_after_a_restart_the_timer_goes_on_as_if_the_worker_had_not_stopped(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """A quiet partition's clock went on from the restart: a worker down 40 s left its
    buckets closed 40 s behind the wall clock for good (a storm resolved a whole downtime
    late). Now the rebuilt clock gets the downtime back once the stage has read its partition
    (``detect_state.resume``): the timer closes up to the wall clock again."""
    first = start_quick_worker(kafka, tmp_path)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    counted = f"stormvarsel_brand_mentions_counted{{brand={BRAND}}}"
    second: RunningWorker | None = None

    def closed_until() -> int:
        entry = saved_states(first).get(BRAND)
        if not isinstance(entry, dict) or "state" not in entry:
            return 0
        return int(entry["state"].get("closed_until") or 0)

    try:
        value = {"id": "one", "text": "power cut", "created_at": time.time(), "brand": BRAND}
        producer.send(first.topic("mentions"), value=json.dumps(value).encode())
        producer.flush()
        first.wait(lambda: first.metrics().get(counted) == 1, 60, "the mention counted")
        first.wait(
            lambda: closed_until() >= time.time() * 1000 - 3 * BUCKET_MS, 60, "the timer's save"
        )
        first.stop()  # killed
        time.sleep(40)
        second = start_quick_worker(kafka, tmp_path, prefix=first.prefix)
        # Before, the saved buckets stayed 40 s and more behind the wall clock.
        second.wait(
            lambda: closed_until() >= time.time() * 1000 - 3 * BUCKET_MS,
            90,
            "the timer closing up to the wall clock again",
        )
        [resumed] = [e for e in second.log_events() if e["event"] == "detect.quiet_clock_resumed"]
        assert resumed["partition"] == 0 and resumed["unwatched_s"] >= 40, resumed
    finally:
        producer.close()
        first.stop()
        if second is not None:
            second.stop()
