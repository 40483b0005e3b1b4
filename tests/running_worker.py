"""A real worker process for integration tests, and helpers to read its topics and metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka_local import LocalKafka, free_port
from tests.conftest import REPO


@dataclass
class RunningWorker:
    process: subprocess.Popen[bytes]
    base_url: str
    prefix: str
    log: Path
    bootstrap: str
    env: dict[str, str] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def metrics(self) -> dict[str, float]:
        """Samples as ``name{label=value,...}`` -> value."""
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=5) as response:
            text = response.read().decode()
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}"] = sample.value
        return values

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker died:\n{self.log_tail()}"
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(f"timed out waiting for {what}; worker log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON events of the worker's log (every worker started with this log's
        ``tmp_path`` appends to it), skipping its other lines and a line cut short."""
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events

    def consume(self, name: str, expected: int, timeout_s: float = 30) -> list[Any]:
        """Every record of a topic, reading until ``expected`` arrived and a quiet second after."""
        consumer = KafkaConsumer(
            self.topic(name),
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=1500,
        )
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                batch = list(consumer)
                records.extend(batch)
                if len(records) >= expected and not batch:
                    break
        finally:
            consumer.close()
        return records

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_quick_worker(
    kafka: LocalKafka, tmp_path: Path, prefix: str | None = None, **extra_env: str
) -> RunningWorker:
    """A worker on one partition with 6-second buckets, no allowed lateness and a wall-clock
    timer that closes a partition quiet for 2 s: the detect stage's timing in seconds (on the
    topics of ``prefix``, to restart one)."""
    config = tmp_path / "detector.yaml"
    config.write_text("bucket_minutes: 0.1\n")
    return start_worker(
        kafka,
        tmp_path,
        prefix,
        STORMVARSEL_TOPIC_PARTITIONS="1",
        STORMVARSEL_DETECTOR_CONFIG=str(config),
        STORMVARSEL_DETECT_LATENESS_S="0",
        STORMVARSEL_DETECT_IDLE_CLOSE_S="2",
        **extra_env,
    )


def worker_env(
    kafka: LocalKafka, data_dir: Path, prefix: str, port: int, **extra_env: str
) -> dict[str, str]:
    """The environment of a test worker on ``kafka`` with topics of ``prefix``."""
    return {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "STORMVARSEL_TOPIC_PREFIX": prefix,
        "STORMVARSEL_TOPIC_PARTITIONS": "3",
        "STORMVARSEL_APP_ID": f"test-{prefix.rstrip('.')}",
        "STORMVARSEL_WEB_PORT": str(port),
        "STORMVARSEL_DATA_DIR": str(data_dir),
        "STORMVARSEL_BRANDS_FILE": str(REPO / "deploy" / "brands.yaml"),
        "STORMVARSEL_LOG_FORMAT": "json",
        **extra_env,
    }


def spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``stormvarsel worker`` with ``env``, its output appended to ``log``."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


def start_worker(
    kafka: LocalKafka, tmp_path: Path, prefix: str | None = None, **extra_env: str
) -> RunningWorker:
    """A worker with topics of its own (or those of ``prefix``, to restart one)."""
    prefix = prefix or f"t{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = worker_env(kafka, tmp_path / "worker", prefix, port, **extra_env)
    log = tmp_path / "worker.log"
    process = spawn_worker(env, log)
    worker = RunningWorker(process, f"http://127.0.0.1:{port}", prefix, log, kafka.bootstrap, env)

    def healthy() -> bool:
        with urllib.request.urlopen(f"{worker.base_url}/healthz", timeout=2) as response:
            return bool(response.status == 200 and json.loads(response.read())["status"] == "ok")

    try:
        worker.wait(healthy, 90, "the worker's /healthz")
    except BaseException:
        worker.stop()
        raise
    return worker


def topics_made_first(
    admin: KafkaAdminClient,
    configs: Mapping[str, Mapping[str, str]],
    partitions: int | Mapping[str, int] = 1,
) -> str:
    """A topic prefix of its own whose topics named in ``configs`` exist already, with those
    settings (``{"mentions.valid": {"max.message.bytes": "3000"}}``) and ``partitions`` (for
    all, or by name): a worker started on it makes only the others."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    counts = partitions if isinstance(partitions, Mapping) else dict.fromkeys(configs, partitions)
    admin.create_topics(
        [
            NewTopic(f"{prefix}{name}", counts[name], 1, topic_configs=dict(config))
            for name, config in configs.items()
        ]
    )
    return prefix


def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    """The offset ``group`` committed for ``topic``'s ``partition`` (0 when none)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        return consumer.committed(TopicPartition(topic, partition)) or 0
    finally:
        consumer.close()


def send_scored(producer: KafkaProducer, topic: str, records: list[dict[str, Any]]) -> None:
    """Produce scored mentions keyed by brand, with their event time as record time."""
    for record in records:
        producer.send(
            topic,
            key=record["brand"].encode(),
            value=json.dumps(record).encode(),
            timestamp_ms=record["created_at_ms"],
        )
    producer.flush()


def run_topics_grow(worker: RunningWorker, partitions: int) -> subprocess.CompletedProcess[str]:
    """``stormvarsel topics grow --partitions N --yes`` for the stopped ``worker``'s deployment."""
    grow = ["topics", "grow", "--partitions", str(partitions), "--yes"]
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *grow],
        env=worker.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
