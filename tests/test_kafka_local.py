"""The local broker: real Apache Kafka started with the machine's Java, served, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from streams.cli import main
from streams.kafka_local import (
    LOG_ROTATE_BYTES,
    LocalKafka,
    LocalKafkaError,
    _file_lock,
    _seconds,
    java_major_version,
)
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


def _cli_env(broker: LocalKafka, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "STORMVARSEL_KAFKA_LOCAL_PORT": str(broker.port),
        "STORMVARSEL_KAFKA_LOCAL_CONTROLLER_PORT": str(broker.controller_port),
        "STORMVARSEL_KAFKA_LOCAL_HEAP": "384m",
        **extra,
    }


def test_two_starts_at_once_leave_one_broker_that_stop_finds(tmp_path: Path) -> None:
    """Before: both launched a broker; the loser's exited on the taken port and its start
    deleted the winner's PID file, so `kafka stop` said "not running" and the broker lived on."""
    broker = make_broker(tmp_path / "kafka")
    command = [sys.executable, "-m", "streams.cli", "kafka", "start"]
    command += ["--data-dir", str(broker.data_dir), "--timeout", "90"]
    env = _cli_env(broker, STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
    try:
        runs = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
        ]
        outputs = [run.communicate(timeout=180)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0]
        assert sorted("already running" in out for out in outputs) == [False, True], outputs
        assert sorted("is ready at" in out for out in outputs) == [False, True], outputs
        pids = _broker_processes(broker.properties_file)
        assert len(pids) == 1
        assert broker.status().pid == pids[0]
    finally:
        stopped = broker.stop()
    assert stopped is True
    assert _broker_processes(broker.properties_file) == []


def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    broker = make_broker(blocker / "kafka")
    with pytest.raises(LocalKafkaError) as caught:
        broker.start()
    assert str(caught.value).startswith(f"cannot use {blocker / 'kafka'} as the Kafka data dir")
    assert "STORMVARSEL_KAFKA_LOCAL_DATA_DIR" in str(caught.value)
    assert broker.stop() is False


def test_already_running_names_the_port_the_broker_really_uses(kafka: LocalKafka) -> None:
    """Before: the port of the current settings, which may name another."""
    again = LocalKafka(
        version=kafka.version,
        data_dir=kafka.data_dir,
        cache_dir=kafka.cache_dir,
        port=kafka.port + 1,
        controller_port=kafka.controller_port,
    )
    assert again.start() is False
    status = again.status()
    assert status.bootstrap == kafka.bootstrap
    # Before: probed the settings' port, so `kafka status` said "NOT answering" and exited 3.
    assert status.reachable


def test_the_cli_warns_once_and_does_not_count_ipv6_loopback_as_this_broker(
    kafka: LocalKafka,
) -> None:
    env = _cli_env(
        kafka,
        STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS=f"[::1]:{kafka.port}",  # the broker is on 127.0.0.1
        STORMVARSEL_NONSENSE="1",
    )
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "kafka", "start", "--data-dir", str(kafka.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"already running (pid {kafka.status().pid}) at {kafka.bootstrap}" in result.stdout
    assert result.stderr.count("STORMVARSEL_NONSENSE is not a setting") == 1
    assert "does not name this broker ([::1] is IPv6 loopback" in result.stderr


def test_an_interrupted_start_stops_the_broker_it_launched(tmp_path: Path) -> None:
    """Before: Ctrl-C while `kafka start` waited left the broker running, unreported."""
    broker = make_broker(tmp_path / "kafka")
    command = [sys.executable, "-m", "streams.cli", "kafka", "start"]
    command += ["--data-dir", str(broker.data_dir), "--timeout", "90"]
    starter = subprocess.Popen(command, env=_cli_env(broker), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _broker_processes(broker.properties_file):
        assert time.monotonic() < deadline and starter.poll() is None
        time.sleep(0.05)
    starter.send_signal(signal.SIGINT)
    _, stderr = starter.communicate(timeout=60)
    assert starter.returncode == 130  # was 1, click's "Aborted!", as for a failure
    assert "Interrupted: stopping the broker this start launched (pid " in stderr
    assert "Stopped it: no broker was left running." in stderr
    assert stderr.rstrip().endswith("interrupted; this start left no broker running")
    assert "Aborted" not in stderr
    assert _broker_processes(broker.properties_file) == []
    assert not broker.pid_file.exists()


@contextlib.contextmanager
def _killed_if_failing(process: subprocess.Popen[str]) -> Iterator[None]:
    """Kill a CLI blocked on the lock before the test lets go of it, so it launches nothing."""
    try:
        yield
    except BaseException:
        process.kill()
        process.wait()
        raise


def _wait_for_text(path: Path, text: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while text not in path.read_text():
        assert process.poll() is None, path.read_text()
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.05)


def test_a_stop_waits_for_a_start_in_progress_and_says_so(tmp_path: Path) -> None:
    """The lock, with real processes but no broker: this test holds it as a start would."""
    broker = make_broker(tmp_path / "kafka")
    broker.data_dir.mkdir()
    broker.pid_file.write_text(str(os.getpid()))  # a live process, but not this broker
    stderr = tmp_path / "stderr"
    command = [sys.executable, "-m", "streams.cli", "kafka", "stop"]
    command += ["--data-dir", str(broker.data_dir)]
    with _file_lock(broker.lock_file), stderr.open("w") as err:
        stopper = subprocess.Popen(
            command, env=_cli_env(broker), stdout=subprocess.PIPE, stderr=err, text=True
        )
        with _killed_if_failing(stopper):
            _wait_for_text(stderr, "is under way; waiting", stopper)
            time.sleep(0.3)
            assert stopper.poll() is None  # still waiting its turn
    out, _ = stopper.communicate(timeout=30)
    assert stopper.returncode == 0
    assert "Kafka is not running." in out
    assert not broker.pid_file.exists()  # stale: named no broker of this data directory


def test_ctrl_c_while_waiting_for_another_start_launches_nothing(tmp_path: Path) -> None:
    """Before: the CLI said "the broker being started was stopped again" though none was."""
    broker = make_broker(tmp_path / "kafka")
    stderr = tmp_path / "stderr"
    command = [sys.executable, "-m", "streams.cli", "kafka", "start"]
    command += ["--data-dir", str(broker.data_dir)]
    with _file_lock(broker.lock_file), stderr.open("w") as err:
        starter = subprocess.Popen(command, env=_cli_env(broker), stderr=err, text=True)
        with _killed_if_failing(starter):
            _wait_for_text(stderr, "is under way; waiting", starter)
            starter.send_signal(signal.SIGINT)
            assert starter.wait(timeout=30) == 130  # was 1 with click's "Aborted!"
    said = stderr.read_text()
    assert "interrupted; this start left no broker running" in said
    assert "Aborted" not in said
    assert "stopp" not in said
    assert _broker_processes(broker.properties_file) == []
    assert not broker.pid_file.exists()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.04 s"), (0.5, "0.5 s"), (1.0, "1 s"), (2.5, "2.5 s"), (60.0, "60 s")],
)
def test_durations_in_messages_never_read_0_s(seconds: float, text: str) -> None:
    assert _seconds(seconds) == text


def test_a_cache_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    broker = LocalKafka(version="4.0.0", data_dir=tmp_path / "k", cache_dir=blocker / "cache")
    with pytest.raises(LocalKafkaError) as caught:
        broker.ensure_installed()
    assert str(caught.value).startswith(f"cannot use {blocker / 'cache'} as the cache directory")
    assert "STORMVARSEL_CACHE_DIR" in str(caught.value)


def test_a_start_that_times_out_says_so_plainly_and_rotates_a_big_log(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "kafka")
    broker.data_dir.mkdir(parents=True)
    big = b"old broker output\n" * (LOG_ROTATE_BYTES // 18 + 1)
    broker.log_file.write_bytes(big)
    with pytest.raises(LocalKafkaError, match=r"did not become ready within 0\.5 s;"):
        broker.start(timeout_s=0.5)
    assert _broker_processes(broker.properties_file) == []
    assert (broker.data_dir / "kafka.log.1").read_bytes() == big
    assert broker.log_file.stat().st_size < len(big)


def test_a_probe_of_a_port_that_is_not_kafka_leaves_no_thread(tmp_path: Path) -> None:
    """kafka-python starts its network thread before it bootstraps and leaves it running when
    that fails: the start-up wait probes every 0.2 s for up to a minute."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        port = server.getsockname()[1]
        broker = LocalKafka(
            version="4.0.0", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", port=port
        )
        before = set(threading.enumerate())
        assert not any(broker._probe(timeout_s=0.5) for _ in range(3))
        time.sleep(0.5)
        left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        assert left == []
    finally:
        server.close()
