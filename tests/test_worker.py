"""The worker against the real broker: topics, consumption, dead letters, metrics, SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka_local import LocalKafka, free_port
from streams.topics import PIPELINE_TOPICS
from tests.conftest import REPO

pytestmark = pytest.mark.integration


@dataclass
class RunningWorker:
    process: subprocess.Popen[bytes]
    base_url: str
    prefix: str
    log: Path

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=5) as response:
            text = response.read().decode()
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}"] = sample.value
        return values


def _wait(predicate, timeout_s: float, what: str, worker: RunningWorker) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, f"worker died:\n{worker.log.read_text()[-3000:]}"
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.log.read_text()[-3000:]}")


@pytest.fixture
def worker(kafka: LocalKafka, tmp_path: Path) -> Iterator[RunningWorker]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "STORMVARSEL_TOPIC_PREFIX": prefix,
        "STORMVARSEL_TOPIC_PARTITIONS": "3",
        "STORMVARSEL_APP_ID": f"test-{prefix.rstrip('.')}",
        "STORMVARSEL_WEB_PORT": str(port),
        "STORMVARSEL_DATA_DIR": str(tmp_path / "worker"),
        "STORMVARSEL_BRANDS_FILE": str(REPO / "deploy" / "brands.yaml"),
        "STORMVARSEL_LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    running = RunningWorker(process, f"http://127.0.0.1:{port}", prefix, log)

    def healthy() -> bool:
        with urllib.request.urlopen(f"{running.base_url}/healthz", timeout=2) as response:
            return response.status == 200

    try:
        _wait(healthy, 90, "the worker's /healthz", running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_worker_consumes_mentions_and_dead_letters_bad_input(
    kafka: LocalKafka, worker: RunningWorker
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    described = {
        t["name"]: len(t["partitions"])
        for t in admin.describe_topics([f"{worker.prefix}{n}" for n in PIPELINE_TOPICS])
    }
    admin.close()
    assert described == {
        f"{worker.prefix}mentions": 3,
        f"{worker.prefix}mentions.dlq": 3,
        f"{worker.prefix}mentions.scored": 3,
        f"{worker.prefix}alerts": 3,
    }

    good = [
        {"id": f"m{i}", "text": f"Nordlys Energi post {i}", "created_at": "2026-11-24T10:00:00Z"}
        for i in range(7)
    ]
    bad = {
        "invalid_json": b'{"id": "x", "text": ',
        "not_utf8": b'{"id": "\xff\xfe"}',
        "missing_field:text": json.dumps({"id": "y", "created_at": 1}).encode(),
        "bad_type:mention": b"[1, 2, 3]",
    }
    topic = f"{worker.prefix}mentions"
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for mention in good:
        producer.send(topic, json.dumps(mention).encode())
    for raw in bad.values():
        producer.send(topic, raw)
    producer.flush()
    producer.close()

    total = len(good) + len(bad)
    _wait(
        lambda: worker.metrics().get("stormvarsel_mentions_total{}", 0) >= total,
        60,
        "every mention to be counted",
        worker,
    )
    metrics = worker.metrics()
    assert metrics["stormvarsel_mentions_total{}"] == total
    assert metrics["stormvarsel_mentions_accepted_total{}"] == len(good)
    for reason in bad:
        assert metrics[f"stormvarsel_mentions_rejected_total{{reason={reason}}}"] == 1
    assert metrics["stormvarsel_build_info{version=0.1.0}"] == 1

    consumer = KafkaConsumer(
        f"{worker.prefix}mentions.dlq",
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    letters = {}
    for message in consumer:
        record = json.loads(message.value)
        assert dict(message.headers)["stormvarsel-reason"] == record["reason"].encode()
        letters[record["reason"]] = record
        if len(letters) == len(bad):
            break
    consumer.close()
    assert set(letters) == set(bad)
    for reason, raw in bad.items():
        # Nothing is lost: the original bytes come back exactly, with a reason and a message.
        assert base64.b64decode(letters[reason]["original_b64"]) == raw
        assert letters[reason]["message"]
        assert letters[reason]["source"]["topic"] == topic


def test_worker_stops_cleanly_on_sigterm(worker: RunningWorker) -> None:
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0
    log = worker.log.read_text()
    assert "Signal received: 15" in log
    # JSON lines from structlog, including Faust's own log records.
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "worker.starting" for e in events)
    assert any(e.get("logger", "").startswith("faust") for e in events)


def test_worker_without_kafka_fails_with_clear_message(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "STORMVARSEL_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker", "--wait-for-kafka", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no Kafka broker answered at 127.0.0.1:" in result.stderr
    assert "stormvarsel kafka start" in result.stderr
