"""A worker whose sentiment model cannot load exits non-zero, even with mentions queued, and
loses none of them: a later worker with a working model scores them all (real Kafka)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from streams.kafka_local import LocalKafka, free_port
from tests.running_worker import spawn_worker, start_worker, worker_env

pytestmark = pytest.mark.integration

QUEUED = 40
#: Seconds a worker with a missing model may take to exit (about 20 with the fix; without it,
#: the score agent was restarted into the failure while the app stopped, and it never exited).
EXIT_WITHIN_S = 60


def _queue_validated_mentions(kafka: LocalKafka, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    now_ms = int(time.time() * 1000)
    for i in range(QUEUED):
        record = {
            "id": f"q{i}",
            "text": f"Nordlys Energi er forferdelig i dag, strømbrudd nummer {i}",
            "created_at_ms": now_ms - 10_000 + i,
            "brand": "nordlys-energi",
            "lang": "nb",
        }
        producer.send(topic, key=b"nordlys-energi", value=json.dumps(record).encode())
    producer.flush()
    producer.close()


def test_a_model_that_cannot_load_stops_the_worker_and_loses_no_queued_mention(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    _queue_validated_mentions(kafka, f"{prefix}mentions.valid")
    env = worker_env(
        kafka,
        tmp_path / "broken" / "worker",
        prefix,
        free_port(),
        STORMVARSEL_TOPIC_PARTITIONS="1",
        STORMVARSEL_SENTIMENT_BACKEND="transformers",
        STORMVARSEL_SENTIMENT_MODEL=str(tmp_path / "no-such-model"),
        HF_HUB_OFFLINE="1",
    )
    log = tmp_path / "broken.log"
    broken = spawn_worker(env, log)
    try:
        code = broken.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        broken.kill()
        broken.wait()
        pytest.fail(
            f"the worker with a missing model still ran after {EXIT_WITHIN_S} s:\n"
            + log.read_text(errors="replace")[-3000:]
        )
    output = log.read_text(errors="replace")
    assert code != 0, output[-3000:]

    # Same deployment (app id, topics), a model that loads: every queued mention is scored.
    (tmp_path / "good").mkdir()
    good = start_worker(
        kafka,
        tmp_path / "good",
        prefix=prefix,
        STORMVARSEL_TOPIC_PARTITIONS="1",
        STORMVARSEL_SENTIMENT_BACKEND="lexicon",
    )
    try:
        scored = good.consume("mentions.scored", QUEUED, timeout_s=60)
    finally:
        good.stop()
    ids = sorted(json.loads(record.value)["id"] for record in scored)
    assert ids == sorted(f"q{i}" for i in range(QUEUED))  # no offset was committed unscored

    # One clear line says why, and no batch was taken (so none was acknowledged).
    failures = [line for line in output.splitlines() if '"scorer.load_failed"' in line]
    assert len(failures) == 1, output[-3000:]
    assert "no-such-model" in failures[0] and "no such directory" in failures[0]
    assert "scoring.batch_failed" not in output
