"""Kafka over TLS with SASL/SCRAM-SHA-512, against a real broker configured that way.

The module starts its own single-node Kafka whose only client listener is SASL_SSL (the broker
talks to itself that way too), with a throw-away CA and a SCRAM user created when its storage is
formatted. On it: the worker's Kafka clients and the Faust app's credentials connect, produce and
consume; a wrong password or an untrusted certificate is refused at once with a clear message; a
real worker takes a mention over HTTP (bearer token) through scoring, and pages a fake
Alertmanager (bearer token), without any secret in its logs, metrics, topics, pages or
``config show``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from detectors.alerting import build_alert
from detectors.episodes import canonical_json
from streams.kafka_clients import (
    KafkaAccessRefused,
    KafkaUnreachable,
    client_config,
    connect_admin,
    faust_credentials,
)
from streams.kafka_local import LocalKafka, SaslSslListener, free_port
from streams.settings import Settings
from tests.conftest import REPO
from tests.running_worker import RunningWorker, start_worker
from tests.test_hostile_input import BRAND, VOICES, annotation_problems, crafted_event
from tests.tls_support import Pki, make_pki, needs_openssl

pytestmark = [pytest.mark.integration, needs_openssl]

USER, PASSWORD = "stormvarsel", "scram-Pw-4u9qT"
BROKER_USER, BROKER_PASSWORD = "broker", "broker-Pw-7k2mX"
KEYSTORE_PASSWORD = "store-Pw-19xVb"
INGEST_TOKEN = "ingest-Tok-83hd"
AM_TOKEN = "am-Tok-51kq"
SECRETS = (PASSWORD, BROKER_PASSWORD, KEYSTORE_PASSWORD, INGEST_TOKEN, AM_TOKEN)


@dataclass
class SecureKafka:
    broker: LocalKafka
    pki: Pki
    directory: Path

    def env(self, password: str = PASSWORD, cafile: Path | None = None) -> dict[str, str]:
        """Worker settings for this broker, the SASL password from a file."""
        secret = self.directory / f"password-{uuid.uuid4().hex[:6]}"
        secret.write_text(password + "\n", encoding="utf-8")
        secret.chmod(0o600)
        return {
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "STORMVARSEL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STORMVARSEL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "STORMVARSEL_KAFKA_SASL_USERNAME": USER,
            "STORMVARSEL_KAFKA_SASL_PASSWORD_FILE": str(secret),
            "STORMVARSEL_KAFKA_SSL_CAFILE": str(cafile or self.pki.ca_cert),
        }

    def settings(self, **env: Any) -> Settings:
        values = self.env(**env)
        return Settings(**{k.removeprefix("STORMVARSEL_").lower(): v for k, v in values.items()})


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    directory = tmp_path_factory.mktemp("secure-kafka")
    pki = make_pki(directory / "pki", KEYSTORE_PASSWORD)
    listener = SaslSslListener(
        keystore=pki.keystore,
        keystore_password=KEYSTORE_PASSWORD,
        cafile=pki.ca_cert,
        users=((BROKER_USER, BROKER_PASSWORD), (USER, PASSWORD)),
        mechanism="SCRAM-SHA-512",
    )
    defaults = Settings()
    broker = LocalKafka(
        version=defaults.kafka_version,
        data_dir=directory / "broker",
        cache_dir=defaults.cache_dir,
        port=free_port(),
        controller_port=free_port(),
        heap="384m",
        sasl_ssl=listener,
    )
    broker.start(timeout_s=90)
    yield SecureKafka(broker, pki, directory)
    broker.stop()


def roundtrip_kafka_python(settings: Settings, topic: str) -> list[bytes]:
    producer = KafkaProducer(**client_config(settings, "test-producer"), acks="all")
    for i in range(3):
        producer.send(topic, key=b"k", value=f"kafka-python {i}".encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic,
        **client_config(settings, "test-consumer"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    values = [message.value for message in consumer]
    consumer.close()
    return values


async def roundtrip_faust_credentials(settings: Settings, topic: str) -> list[bytes]:
    """What the Faust app hands aiokafka (``broker_credentials``), produce and consume with."""
    auth = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-512"
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_list, acks="all", **auth)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"faust {i}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_list, auto_offset_reset="earliest", **auth
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < 6:
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                break
            values += [m.value for messages in batch.values() for m in messages if m.value]
    finally:
        await consumer.stop()
    return values


def test_clients_and_faust_credentials_produce_and_consume(secure_kafka: SecureKafka) -> None:
    settings = secure_kafka.settings()
    assert settings.sasl_password() == PASSWORD  # read from the file
    topic = f"secure-{uuid.uuid4().hex[:6]}"
    admin = connect_admin(settings, timeout_s=20)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    first = roundtrip_kafka_python(settings, topic)
    assert first == [f"kafka-python {i}".encode() for i in range(3)]
    both = asyncio.run(roundtrip_faust_credentials(settings, topic))
    assert both == first + [f"faust {i}".encode() for i in range(3)]


def test_command_line_tools_work_over_sasl_ssl(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    """`stormvarsel topics create` and `stormvarsel ingest` use the same settings and clients."""
    prefix = f"cli{uuid.uuid4().hex[:6]}."
    env = {**os.environ, **secure_kafka.env(), "STORMVARSEL_TOPIC_PREFIX": prefix}
    source = tmp_path / "mentions.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "text": f"Nordlys Energi {i}", "created_at": 1795500000})
            + "\n"
            for i in range(3)
        )
    )
    for command in (["topics", "create"], ["ingest", str(source), "--quiet"]):
        result = subprocess.run(
            [sys.executable, "-m", "streams.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-2000:]
        assert PASSWORD not in result.stdout + result.stderr
    records = read_topic(secure_kafka.settings(), f"{prefix}mentions", lambda r: len(r) >= 3)
    assert sorted(json.loads(r.value)["id"] for r in records) == ["c0", "c1", "c2"]


def test_tls_alone_is_not_enough(secure_kafka: SecureKafka) -> None:
    """A client that verifies the certificate but does not log in gets nothing."""
    settings = secure_kafka.settings().model_copy(update={"kafka_security_protocol": "SSL"})
    started = time.monotonic()
    with pytest.raises(KafkaUnreachable):
        connect_admin(settings, timeout_s=3).close()
    assert time.monotonic() - started < 30


def test_wrong_password_or_unknown_ca_is_refused_with_a_clear_error(
    secure_kafka: SecureKafka,
) -> None:
    cases = [
        (secure_kafka.settings(password="wrong-password-1"), "refused the SASL login"),
        (
            secure_kafka.settings().model_copy(update={"kafka_sasl_username": "nobody"}),
            "refused the SASL login of user 'nobody'",
        ),
        (
            secure_kafka.settings(cafile=secure_kafka.pki.other_ca_cert),
            "TLS certificate of the Kafka broker",
        ),
    ]
    for settings, expected in cases:
        started = time.monotonic()
        with pytest.raises(KafkaAccessRefused) as refused:
            connect_admin(settings, timeout_s=30)
        assert time.monotonic() - started < 5, "a refused login must not wait out the timeout"
        message = str(refused.value)
        assert expected in message and secure_kafka.broker.bootstrap in message
        assert "wrong-password-1" not in message and PASSWORD not in message

    # The command line says so in one line, without the password, and exits non-zero.
    env = {**os.environ, **secure_kafka.env(password="wrong-password-1")}
    for command in (["topics", "create"], ["worker", "--wait-for-kafka", "20"]):
        result = subprocess.run(
            [sys.executable, "-m", "streams.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert result.returncode == 1, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert errors == [
            f"error: Kafka at {secure_kafka.broker.bootstrap} refused the SASL login of user "
            f"'{USER}' (SCRAM-SHA-512): wrong user name or password; check "
            "STORMVARSEL_KAFKA_SASL_USERNAME and STORMVARSEL_KAFKA_SASL_PASSWORD (or "
            "STORMVARSEL_KAFKA_SASL_PASSWORD_FILE)"
        ], result.stderr[-2000:]
        assert "wrong-password-1" not in result.stdout + result.stderr


# --- a real worker over SASL_SSL ---


@dataclass
class FakeAlertmanager:
    """Answers ``POST /api/v2/alerts`` with 200 and keeps what it was sent, headers included."""

    port: int
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.posts)


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    fake = FakeAlertmanager(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with fake.lock:
                fake.posts.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", fake.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def http(
    worker: RunningWorker, path: str, body: bytes | None = None, token: str | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{worker.base_url}{path}", data=body)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def read_topic(settings: Settings, topic: str, until: Any, timeout_s: float = 60) -> list[Any]:
    """Records of ``topic`` over SASL_SSL until ``until(records)`` holds (or the time is up)."""
    consumer = KafkaConsumer(
        topic,
        **client_config(settings, "test-reader"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(records):
            records += list(consumer)
    finally:
        consumer.close()
    return records


def test_worker_end_to_end_over_sasl_ssl_keeps_its_secrets(
    secure_kafka: SecureKafka, alertmanager: FakeAlertmanager, tmp_path: Path
) -> None:
    am_token_file = tmp_path / "am-token"
    am_token_file.write_text(AM_TOKEN + "\n")
    env = {
        **secure_kafka.env(),
        "STORMVARSEL_TOPIC_PARTITIONS": "1",
        "STORMVARSEL_SENTIMENT_BACKEND": "lexicon",
        "STORMVARSEL_LOG_LEVEL": "DEBUG",
        "STORMVARSEL_HTTP_INGEST_TOKEN": INGEST_TOKEN,
        "STORMVARSEL_ALERTMANAGER_URLS": alertmanager.url,
        "STORMVARSEL_ALERTMANAGER_TOKEN_FILE": str(am_token_file),
        "STORMVARSEL_NOTIFY_RESEND_S": "2",
        "STORMVARSEL_NOTIFY_MAX_AGE_S": "0",
    }
    worker = start_worker(secure_kafka.broker, tmp_path, **env)
    settings = secure_kafka.settings()
    try:
        # Only our own views are served: Faust's table and router views would leak table data.
        for path in ("/table/", "/table/detector-state/", "/router/", "/stats/", "/graph/"):
            assert http(worker, path)[0] == 404, path
        assert http(worker, "/healthz")[0] == 200

        # POST /mentions wants the bearer token.
        mention = {
            "id": "sec-1",
            "text": "Nordlys Energi: strømmen er borte igjen, elendig service",
            "created_at": "2026-11-24T10:00:00Z",
            "lang": "nb",
        }
        body = json.dumps(mention).encode()
        assert http(worker, "/mentions", body)[0] == 401
        assert http(worker, "/mentions", body, token="not-" + INGEST_TOKEN)[0] == 401
        assert http(worker, "/mentions", body, token=INGEST_TOKEN[:-1])[0] == 401
        code, answer = http(worker, "/mentions", body, token=INGEST_TOKEN)
        assert (code, json.loads(answer)) == (202, {"accepted": 1})

        # ... and it comes out of validation and scoring, every hop over SASL_SSL.
        scored_topic = worker.topic("mentions.scored")
        scored = read_topic(settings, scored_topic, lambda records: len(records) >= 1)
        assert [json.loads(r.value)["id"] for r in scored] == ["sec-1"]
        assert json.loads(scored[0].value)["sentiment"]["label"] == "negative"

        # An alert on the alerts topic reaches Alertmanager with its token, neutralised.
        alert = build_alert(crafted_event(), VOICES[BRAND])
        producer = KafkaProducer(**client_config(settings, "test-alerts"), acks="all")
        producer.send(
            worker.topic("alerts"), key=BRAND.encode(), value=canonical_json(alert).encode()
        )
        producer.flush()
        producer.close()

        # The notifier also posts an empty list while it has nothing to send (a check that
        # Alertmanager is there): the storm is the first post with alerts in it.
        def storm_posts() -> list[tuple[dict[str, str], bytes]]:
            return [(h, body) for h, body in alertmanager.received() if body.strip() != b"[]"]

        worker.wait(lambda: bool(storm_posts()), 60, "a post to Alertmanager")
        _headers, page = storm_posts()[0]
        for headers, _body in alertmanager.received():
            assert headers.get("Authorization") == f"Bearer {AM_TOKEN}"
        posted = json.loads(page)
        assert [a["labels"]["episode"] for a in posted] == [alert["alert_id"]]
        assert annotation_problems(posted[0]["annotations"]) == []
        worker.wait(
            lambda: worker.metrics().get("stormvarsel_alertmanager_posts_total{result=ok}", 0) > 0,
            30,
            "the post to be counted",
        )

        # Nowhere a secret: logs (at DEBUG), metrics, topics, pages, config show.
        with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=10) as response:
            metrics_text = response.read().decode()
        records = read_topic(settings, worker.topic("alerts"), lambda r: len(r) >= 1)
        records += read_topic(settings, worker.topic("mentions.valid"), lambda r: len(r) >= 1)
        records += scored
        shown = [
            subprocess.run(
                [sys.executable, "-m", "streams.cli", "config", "show", *extra],
                env={**os.environ, **worker.env},
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO,
            )
            for extra in ([], ["--json"])
        ]
        assert all(result.returncode == 0 for result in shown)
        log_text = worker.log.read_text(errors="replace")
        assert log_text.count('"level": "debug"') > 50  # DEBUG logging really was on
        places = {
            "worker log": log_text,
            "metrics": metrics_text,
            "topics": "\n".join(repr(r.key) + repr(r.value) + repr(r.headers) for r in records),
            "Alertmanager posts": "\n".join(body.decode() for _h, body in alertmanager.received()),
            "config show": "\n".join(result.stdout + result.stderr for result in shown),
        }
        for place, text in places.items():
            for secret in SECRETS:
                assert secret not in text, f"{secret!r} in the {place}"
        assert "********" in places["config show"]
    finally:
        worker.stop()
