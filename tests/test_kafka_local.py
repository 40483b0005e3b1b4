"""The local broker: real Apache Kafka started with the machine's Java, served, stopped."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from streams.cli import main
from streams.kafka_local import LocalKafka, LocalKafkaError, java_major_version
from tests.conftest import make_broker

pytestmark = pytest.mark.integration


def _broker_processes(properties: Path) -> list[int]:
    """Pids of live java processes running a broker with this properties file."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline and str(properties).encode() in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def test_broker_serves_produce_and_consume(kafka: LocalKafka) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for i in range(10):
        producer.send(topic, key=b"k%d" % i, value=b"v%d" % i)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    values = sorted(message.value for message in consumer)
    consumer.close()
    assert values == sorted(b"v%d" % i for i in range(10))


def test_second_start_says_already_running(kafka: LocalKafka) -> None:
    status = kafka.status()
    assert status.running and status.reachable
    again = LocalKafka(
        version=kafka.version,
        data_dir=kafka.data_dir,
        cache_dir=kafka.cache_dir,
        port=kafka.port,
        controller_port=kafka.controller_port,
    )
    assert again.start() is False
    assert again.status().pid == status.pid


def test_start_ready_then_stop_leaves_no_process(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "kafka")
    started = time.monotonic()
    try:
        assert broker.start(timeout_s=90) is True
        ready_after = time.monotonic() - started
        print(f"local Kafka ready after {ready_after:.1f} s")  # shown with -s / in the CI log
        pids = _broker_processes(broker.properties_file)
        assert len(pids) == 1
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        producer.close()
    finally:
        assert broker.stop() is True
    assert _broker_processes(broker.properties_file) == []
    assert not broker.pid_file.exists()
    assert broker.stop() is False  # stopping twice is harmless
    # The data directory is kept: a restart reuses it without formatting again.
    assert (broker.log_dirs / "meta.properties").exists()


def test_cli_start_status_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = make_broker(tmp_path)
    monkeypatch.setenv("STORMVARSEL_KAFKA_LOCAL_PORT", str(probe.port))
    monkeypatch.setenv("STORMVARSEL_KAFKA_LOCAL_CONTROLLER_PORT", str(probe.controller_port))
    data_dir = str(tmp_path / "cli-kafka")
    runner = CliRunner()
    try:
        result = runner.invoke(main, ["kafka", "start", "--data-dir", data_dir])
        assert result.exit_code == 0, result.output
        assert f"is ready at 127.0.0.1:{probe.port}" in result.output
        # The other commands connect to the default 127.0.0.1:9092, not to this broker.
        assert "does not name this broker" in result.output
        assert f"Set it to 127.0.0.1:{probe.port}" in result.output
        monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", f"localhost:{probe.port}")
        result = runner.invoke(main, ["kafka", "start", "--data-dir", data_dir])
        assert result.exit_code == 0
        assert "already running" in result.output
        assert "warning" not in result.output
        result = runner.invoke(main, ["kafka", "status", "--data-dir", data_dir])
        assert result.exit_code == 0
        assert "answering" in result.output
    finally:
        result = runner.invoke(main, ["kafka", "stop", "--data-dir", data_dir])
    assert result.exit_code == 0
    assert "Kafka stopped." in result.output
    result = runner.invoke(main, ["kafka", "status", "--data-dir", data_dir])
    assert result.exit_code == 3
    assert "not running" in result.output


def test_port_taken_by_another_program_is_named(kafka: LocalKafka, tmp_path: Path) -> None:
    other = LocalKafka(
        version=kafka.version,
        data_dir=tmp_path / "other",
        cache_dir=kafka.cache_dir,
        port=kafka.port,
        controller_port=kafka.controller_port + 1000,
    )
    with pytest.raises(LocalKafkaError, match=f"port {kafka.port} on 127.0.0.1 is already in use"):
        other.start()


def test_without_java_the_message_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    broker = make_broker(tmp_path / "k")
    with pytest.raises(LocalKafkaError) as info:
        broker.start()
    message = str(info.value)
    assert "Java 17 or newer is needed" in message
    assert "openjdk-17-jre-headless" in message
    assert "docker compose up" in message


def test_without_maven_the_message_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    broker = LocalKafka(version="4.0.0", data_dir=tmp_path / "k", cache_dir=tmp_path / "cache")
    with pytest.raises(LocalKafkaError) as info:
        broker.ensure_installed()
    assert "Maven is needed once" in str(info.value)
    assert "apt-get install maven" in str(info.value)
    assert "docker compose up" in str(info.value)


def test_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    assert java_major_version(str(fake)) == 11
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(LocalKafkaError, match="needs Java 17 or newer, found Java 11"):
        make_broker(tmp_path / "k").start()


def test_machine_java_is_new_enough() -> None:
    java = os.environ.get("JAVA_HOME")
    major = java_major_version(f"{java}/bin/java" if java else "java")
    assert major is not None and major >= 17
