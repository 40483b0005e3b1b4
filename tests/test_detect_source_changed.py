"""A worker whose detect tables were written from another topic refuses them, saying what to do.

The tables are named after the application id only. Before, a worker restarted with another
``STORMVARSEL_TOPIC_PREFIX``, or after ``mentions.scored`` was deleted and created again, took
the new topic's records at offsets the tables held for ones counted already: it skipped them
(or only moved the watermark), so brands' buckets closed empty, storms "resolved" and the
baselines learnt zeros, with nothing but an info line to show for it.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from streams.agents import detect_source
from streams.agents.detect_state import PartitionState
from streams.kafka_local import LocalKafka, free_port
from tests.running_worker import (
    RunningWorker,
    committed_offset,
    send_scored,
    spawn_worker,
    start_worker,
    worker_env,
)
from tests.storm_scenario import phases

ENV = {"STORMVARSEL_TOPIC_PARTITIONS": "1", "STORMVARSEL_LOG_LEVEL": "INFO"}
EXIT_WITHIN_S = 120


def counted(high: int, saved: dict[str, int]) -> PartitionState:
    state = PartitionState.__new__(PartitionState)
    state.high_offset = high
    state.saved_offset = saved
    return state


def test_tables_of_another_topic_are_named() -> None:
    topic = "b.mentions.scored"
    parts = {0: counted(900, {"acme": 850}), 1: counted(-1, {})}
    saved = [("acme", {"partition": 0, "topic": topic, "offset": 850})]
    assert detect_source.foreign_tables(topic, saved, parts, {0: 901, 1: 0}) is None
    # Saved before the topic was recorded: nothing to compare but the offsets.
    assert detect_source.foreign_tables(topic, [("acme", {"partition": 0})], parts, {}) is None
    # A state of a partition this worker does not own is not its business.
    other = [("zeta", {"partition": 5, "topic": "a.mentions.scored"})]
    assert detect_source.foreign_tables(topic, other, parts, {0: 901}) is None

    renamed = [("acme", {"partition": 0, "topic": "a.mentions.scored"})]
    problem = detect_source.foreign_tables(topic, renamed, parts, {0: 901})
    assert problem is not None
    assert "a.mentions.scored" in problem and "STORMVARSEL_TOPIC_PREFIX" in problem
    assert "stormvarsel topics reset-state" in problem

    problem = detect_source.foreign_tables(topic, saved, parts, {0: 900})
    assert problem is not None and "b.mentions.scored[0] up to offset 900" in problem
    assert "ends at offset 900" in problem and "created again" in problem
    # A saved state's offset alone (the pending mentions since were deleted) says so too.
    only_saved = {0: counted(-1, {"acme": 850})}
    assert detect_source.foreign_tables(topic, [], only_saved, {0: 12}) is not None


def counted_worker(kafka: LocalKafka, tmp_path: Path) -> tuple[RunningWorker, int]:
    """A worker that counted and saved the scenario's calm day, then was stopped."""
    (tmp_path / "first").mkdir()
    worker = start_worker(kafka, tmp_path / "first", **ENV)
    records = phases()["calm"][:1500]
    try:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
        try:  # in two parts: the second one's first record comes after a save interval
            send_scored(producer, worker.topic("mentions.scored"), records[:1000])
            time.sleep(6)
            send_scored(producer, worker.topic("mentions.scored"), records[1000:])
        finally:
            producer.close()
        group, scored = worker.env["STORMVARSEL_APP_ID"], worker.topic("mentions.scored")
        worker.wait(
            lambda: committed_offset(kafka.bootstrap, group, scored) >= len(records),
            90,
            "every scored mention committed",
        )
    finally:
        worker.stop()
    return worker, len(records)


def refused(env: dict[str, str], log: Path) -> str:
    process = spawn_worker(env, log)
    try:
        code = process.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the worker on tables of another topic still ran:\n" + log.read_text()[-3000:])
    output = log.read_text(errors="replace")
    assert code != 0, output[-3000:]
    lines = [json.loads(line) for line in output.splitlines() if '"detect.source_changed"' in line]
    assert lines, output[-3000:]
    assert '"episode.' not in output and '"detect.resumed"' not in output
    return str(lines[0]["error"])


@pytest.mark.integration
def test_a_worker_refuses_tables_written_under_another_topic_prefix(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    first, _ = counted_worker(kafka, tmp_path)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = worker_env(
        kafka,
        tmp_path / "second",
        prefix,
        free_port(),
        **ENV,
        STORMVARSEL_APP_ID=first.env["STORMVARSEL_APP_ID"],
    )
    error = refused(env, tmp_path / "second.log")
    assert f"written reading {first.topic('mentions.scored')}" in error
    assert f"now reads {prefix}mentions.scored" in error
    assert "STORMVARSEL_TOPIC_PREFIX" in error


@pytest.mark.integration
def test_a_worker_refuses_tables_of_a_topic_deleted_and_created_again(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    first, sent = counted_worker(kafka, tmp_path)
    scored = first.topic("mentions.scored")
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.delete_topics([scored])
        deadline = time.monotonic() + 60
        while scored in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.5)
        for _ in range(60):
            try:
                admin.create_topics([NewTopic(scored, 1, 1)])
                break
            except Exception:  # still being deleted
                time.sleep(1)
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    try:  # a few new mentions: far fewer than the tables' offsets
        send_scored(producer, scored, phases()["onset"][:20])
    finally:
        producer.close()
    error = refused(first.env, tmp_path / "again.log")
    assert f"{scored}[0] up to offset {sent - 1}" in error
    assert "ends at offset 20" in error and "deleted and created again" in error
