"""The worker against the real broker: topics, consumption, dead letters, metrics, SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewPartitions,
    NewTopic,
)
from structlog.testing import capture_logs

from streams.app import build_app
from streams.errors import StormvarselError
from streams.kafka_local import LocalKafka, free_port
from streams.settings import Settings
from streams.topics import (
    PIPELINE_TOPICS,
    TopicSpec,
    ensure_internal_topics,
    ensure_topics,
    faust_internal_topics,
    reset_state_topics,
    state_topic_names,
    state_topics,
)
from tests.running_worker import RunningWorker, start_worker

pytestmark = pytest.mark.integration


def run_worker_cli(env: dict[str, str], wait_s: float) -> subprocess.CompletedProcess[str]:
    """`stormvarsel worker` in a subprocess that is expected to give up (no Kafka there)."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker", "--wait-for-kafka", str(wait_s)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def worker(kafka: LocalKafka, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(kafka, tmp_path)
    yield running
    running.stop()


def test_worker_consumes_mentions_and_dead_letters_bad_input(
    kafka: LocalKafka, worker: RunningWorker
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    described = {
        t["name"]: len(t["partitions"])
        for t in admin.describe_topics([f"{worker.prefix}{n}" for n in PIPELINE_TOPICS])
    }
    admin.close()
    assert described == {f"{worker.prefix}{name}": 3 for name in PIPELINE_TOPICS}

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
    worker.wait(
        lambda: worker.metrics().get("stormvarsel_mentions_total{}", 0) >= total,
        60,
        "every mention to be counted",
    )
    metrics = worker.metrics()
    assert metrics["stormvarsel_mentions_total{}"] == total
    assert metrics["stormvarsel_mentions_accepted_total{brand=nordlys-energi}"] == len(good)
    for reason in bad:
        assert (
            metrics[f"stormvarsel_mentions_rejected_total{{reason={reason},stage=validate}}"] == 1
        )
    python = platform.python_version()
    assert metrics[f"stormvarsel_build_info{{python={python},version=0.1.0}}"] == 1

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
    consumer = KafkaConsumer(
        f"{worker.prefix}mentions.valid",
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    passed = [(m.key, json.loads(m.value)) for m in consumer]
    consumer.close()
    assert sorted(record["id"] for _, record in passed) == sorted(m["id"] for m in good)
    assert {key for key, _ in passed} == {b"nordlys-energi"}
    assert all(record["matched_by"] == "text" for _, record in passed)
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
    events = worker.log_events()
    assert any(e.get("event") == "worker.starting" for e in events)
    assert any(e.get("logger", "").startswith("faust") for e in events)
    # SIGTERM is a clean stop, exit 0; Ctrl-C stops it the same way but exits 130
    # (tests/test_cli_interrupts.py).
    assert any(e.get("event") == "worker.stopped" and e["signal"] == "SIGTERM" for e in events)
    assert "interrupted" not in log


def test_worker_without_kafka_fails_with_clear_message(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "STORMVARSEL_LOG_FORMAT": "json",
    }
    result = run_worker_cli(env, wait_s=3)
    assert result.returncode == 1
    assert "no Kafka broker answered at 127.0.0.1:" in result.stderr
    assert "stormvarsel kafka start" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("bucket_minutes: -3\n", "bucket_minutes: must be > 0, got -3.0"),
        (None, "cannot read"),
    ],
)
def test_bad_detector_config_is_refused_before_kafka(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "detectors.yaml"
    if content is not None:
        path.write_text(content)
    env = {
        **os.environ,
        "STORMVARSEL_DETECTOR_CONFIG": str(path),
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    result = run_worker_cli(env, wait_s=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: STORMVARSEL_DETECTOR_CONFIG: ") and expected in lines[-1]
    assert "no Kafka broker answered" not in result.stderr  # refused before trying Kafka


def test_a_web_port_another_program_holds_is_refused_before_kafka() -> None:
    """Before: the worker joined Kafka, then Faust failed to bind and exited with a traceback
    in its log."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {
            **os.environ,
            "STORMVARSEL_WEB_PORT": str(port),
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        }
        result = run_worker_cli(env, wait_s=30)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: STORMVARSEL_WEB_PORT: cannot listen on 127.0.0.1:{port} (")
    assert "no Kafka broker answered" not in result.stderr


def test_a_data_dir_it_cannot_write_is_refused_before_kafka(tmp_path: Path) -> None:
    """Before: a traceback in Faust's log after joining the group."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {
        **os.environ,
        "STORMVARSEL_DATA_DIR": str(blocker / "state"),
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    result = run_worker_cli(env, wait_s=30)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: STORMVARSEL_DATA_DIR: cannot write in {blocker / 'state'} (")


@pytest.mark.parametrize("what", ["not-a-head", "missing"])
def test_a_sentiment_head_that_is_not_one_is_refused_before_kafka(
    tmp_path: Path, what: str
) -> None:
    """Before: two tracebacks (about 380 lines) after joining the group, ending in numpy's
    advice to unpickle the file."""
    head = tmp_path / "head.npz"
    if what == "not-a-head":
        head.write_text("hello\n", encoding="utf-8")
    env = {
        **os.environ,
        "STORMVARSEL_SENTIMENT_HEAD": str(head),
        "STORMVARSEL_DATA_DIR": str(tmp_path / "state"),
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    result = run_worker_cli(env, wait_s=30)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: STORMVARSEL_SENTIMENT_HEAD: ")
    expected = "not an .npz archive" if what == "not-a-head" else "no such file"
    assert expected in line and "pickle" not in line


def test_faust_topics_are_created_and_led_before_faust_subscribes(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """A CI run lost every mention: Faust subscribed to its just-created changelogs before the
    broker's metadata listed them, and each table write then raised PartitionsMismatch. The
    worker now creates them first and waits for their leaders."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap_servers=kafka.bootstrap,
        topic_prefix=prefix,
        app_id=f"test-{prefix.rstrip('.')}",
        topic_partitions=4,
        data_dir=tmp_path,
        alertmanager_urls="http://127.0.0.1:9",  # so the notifier's table exists too
    )
    ensure_topics(settings)
    app, _ = build_app(settings, mention_partitions=4, scored_partitions=4, alerts_partitions=4)
    internal = {t.name: t for t in faust_internal_topics(app)}
    changelogs = {
        f"{settings.app_id}-{table}-changelog"
        for table in (
            "mention-ids",
            "detector-state",
            "detector-pending",
            "detector-ids",
            "notifier-alerts",
        )
    }
    assert changelogs <= internal.keys()
    assert sorted(internal) == state_topic_names(settings.app_id)  # what reset-state deletes
    assert f"{settings.app_id}-__assignor-__leader" in internal
    for name in changelogs:
        assert internal[name].partitions == 4, name
        assert internal[name].config == {"cleanup.policy": "compact"}, name

    ensure_internal_topics(settings, list(internal.values()), timeout_s=30)
    ensure_internal_topics(settings, list(internal.values()), timeout_s=30)  # idempotent

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(sorted(internal))}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(changelogs)]
        )
    finally:
        admin.close()
    for name, topic in internal.items():
        partitions = described[name]["partitions"]
        assert len(partitions) == topic.partitions, name
        assert all(p["leader_id"] >= 0 for p in partitions), name
    policies = {
        name: entries["cleanup.policy"]["value"] for name, entries in configs["topic"].items()
    }
    assert policies == dict.fromkeys(changelogs, "compact")


def test_a_replication_factor_the_cluster_cannot_give_is_one_line(kafka: LocalKafka) -> None:
    """Before: a kafka-python traceback quoting the whole CreateTopics request and response."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap_servers=kafka.bootstrap, topic_prefix=prefix, topic_replication=3
    )
    with pytest.raises(StormvarselError) as caught:
        ensure_topics(settings)
    message = str(caught.value)
    assert message.startswith(f"Kafka refused to create topic '{prefix}mentions' (4 partitions")
    assert "InvalidReplicationFactorError" in message and "only 1 broker(s)" in message
    assert "STORMVARSEL_TOPIC_REPLICATION" in message and "\n" not in message
    assert "CreateTopicsRequest" not in message


def _changelog_settings(kafka: LocalKafka, tmp_path: Path, partitions: int) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    return Settings(
        kafka_bootstrap_servers=kafka.bootstrap,
        topic_prefix=prefix,
        app_id=f"test-{prefix.rstrip('.')}",
        topic_partitions=partitions,
        data_dir=tmp_path,
    )


def _internal(settings: Settings, partitions: int, mentions: int | None = None) -> list[TopicSpec]:
    app, _ = build_app(
        settings,
        mention_partitions=mentions or partitions,
        scored_partitions=partitions,
        alerts_partitions=partitions,
    )
    return faust_internal_topics(app)


def test_a_grown_pipeline_topic_is_refused_until_the_state_is_reset(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """Before: the worker started, Faust raised PartitionsMismatch on every table write, and
    every mention went to the dead-letter topic as internal_error while /healthz said ok."""
    settings = _changelog_settings(kafka, tmp_path, partitions=2)
    ensure_topics(settings)
    ensure_internal_topics(settings, _internal(settings, 2), timeout_s=30)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_partitions({settings.topic("mentions"): NewPartitions(4)})
    finally:
        admin.close()
    (mentions,) = [s for s in ensure_topics(settings) if s.name == settings.topic("mentions")]
    assert mentions.partitions == 4

    grown = _internal(settings, 2, mentions=4)
    with pytest.raises(StormvarselError) as caught:
        ensure_internal_topics(settings, grown, timeout_s=30)
    message = str(caught.value)
    assert f"{settings.app_id}-mention-ids-changelog has 2, needs 4" in message
    assert "detector-state" not in message  # the scored topic kept its 2 partitions
    assert "stormvarsel topics reset-state" in message and "\n" not in message

    # Another app whose id starts with this one keeps its state.
    neighbour = Settings(
        kafka_bootstrap_servers=kafka.bootstrap, app_id=f"{settings.app_id}-staging"
    )
    ensure_internal_topics(neighbour, _internal(neighbour, 1), timeout_s=30)
    deleted = reset_state_topics(settings)
    assert not any("-staging-" in name for name in deleted)
    assert len(state_topics(neighbour)) == 5
    assert f"{settings.app_id}-mention-ids-changelog" in deleted
    assert f"{settings.app_id}-__assignor-__leader" in deleted
    assert state_topics(settings) == []
    ensure_internal_topics(settings, grown, timeout_s=30)  # created afresh with 4
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        (described,) = admin.describe_topics([f"{settings.app_id}-mention-ids-changelog"])
    finally:
        admin.close()
    assert len(described["partitions"]) == 4


def test_state_is_not_reset_while_a_worker_runs(kafka: LocalKafka, tmp_path: Path) -> None:
    settings = _changelog_settings(kafka, tmp_path, partitions=1)
    ensure_topics(settings)
    ensure_internal_topics(settings, _internal(settings, 1), timeout_s=30)
    member = KafkaConsumer(
        settings.topic("mentions"), bootstrap_servers=kafka.bootstrap, group_id=settings.app_id
    )
    try:
        while not member.assignment():
            member.poll(timeout_ms=500)
        with pytest.raises(StormvarselError, match=r"1 worker\(s\) of app id .* stop every"):
            reset_state_topics(settings)
    finally:
        member.close()
    assert f"{settings.app_id}-mention-ids-changelog" in state_topics(settings)


def test_reset_state_on_the_command_line(kafka: LocalKafka, tmp_path: Path) -> None:
    settings = _changelog_settings(kafka, tmp_path, partitions=1)
    ensure_topics(settings)
    ensure_internal_topics(settings, _internal(settings, 1), timeout_s=30)
    env = {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "STORMVARSEL_APP_ID": settings.app_id,
    }
    command = [sys.executable, "-m", "streams.cli", "topics", "reset-state"]
    declined = subprocess.run(
        command, env=env, input="n\n", capture_output=True, text=True, timeout=60
    )
    assert declined.returncode == 1, declined.stderr  # not confirmed: not an interrupt (130)
    assert "Not confirmed: nothing was changed." in declined.stderr
    assert "Aborted" not in declined.stderr
    assert f"{settings.app_id}-mention-ids-changelog" in declined.stdout
    assert state_topics(settings)  # nothing deleted
    done = subprocess.run([*command, "--yes"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Deleted 5 state topics of app id '{settings.app_id}'." in done.stdout
    assert state_topics(settings) == []


def test_a_changelog_that_may_be_deleted_is_warned_about(kafka: LocalKafka, tmp_path: Path) -> None:
    settings = _changelog_settings(kafka, tmp_path, partitions=1)
    internal = _internal(settings, 1)
    name = f"{settings.app_id}-detector-state-changelog"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "delete"})])
    finally:
        admin.close()
    with capture_logs() as logs:
        ensure_internal_topics(settings, internal, timeout_s=30)
    (warning,) = [e for e in logs if e["event"] == "topic.changelog_policy"]
    assert warning["topic"] == name and warning["cleanup_policy"] == "delete"
    assert f"--entity-name {name} --add-config cleanup.policy=compact" in warning["hint"]


def test_a_topic_name_that_collides_names_the_prefix(kafka: LocalKafka) -> None:
    """Kafka quotes the name in its reason ("Topic 'a_b' collides ..."): the reason was lost,
    and the hint named the partition and replication settings."""
    tag = uuid.uuid4().hex[:8]
    ensure_topics(Settings(kafka_bootstrap_servers=kafka.bootstrap, topic_prefix=f"t{tag}.x."))
    with pytest.raises(StormvarselError) as caught:
        ensure_topics(Settings(kafka_bootstrap_servers=kafka.bootstrap, topic_prefix=f"t{tag}_x_"))
    message = str(caught.value)
    assert f"InvalidTopicError: Topic 't{tag}_x_mentions' collides with existing topic" in message
    assert "STORMVARSEL_TOPIC_PREFIX" in message and "TOPIC_REPLICATION" not in message


def test_two_workers_started_together_on_one_port_one_refused_in_one_line(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """Before: both passed the port check, and the one whose web server bound second exited
    with a traceback after joining Kafka."""
    port = free_port()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    base = {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "STORMVARSEL_TOPIC_PREFIX": prefix,
        "STORMVARSEL_APP_ID": f"test-{prefix.rstrip('.')}",
        "STORMVARSEL_WEB_PORT": str(port),
        "STORMVARSEL_LOG_FORMAT": "json",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env={**base, "STORMVARSEL_DATA_DIR": str(tmp_path / name)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    try:
        deadline = time.monotonic() + 90
        while all(p.poll() is None for p in processes) and time.monotonic() < deadline:
            time.sleep(0.2)
        (refused,) = [p for p in processes if p.poll() is not None]
        (running,) = [p for p in processes if p is not refused]
        assert refused.returncode == 2
        (line,) = (refused.stderr.read() if refused.stderr else "").strip().splitlines()
        assert line.startswith(f"error: STORMVARSEL_WEB_PORT: cannot listen on 127.0.0.1:{port}")

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return bool(json.loads(r.read())["status"] == "ok")
            except OSError:
                return False

        while not healthy():
            assert running.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
