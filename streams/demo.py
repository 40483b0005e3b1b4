"""The README's first command: local Kafka, a worker, sample mentions flowing, a clean stop."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from streams.errors import StormvarselError
from streams.kafka_clients import client_config
from streams.kafka_local import LocalKafka, free_port
from streams.settings import Settings
from streams.topics import MENTIONS, MENTIONS_DLQ, MENTIONS_SCORED, ensure_topics

REPO_BRANDS = Path(__file__).resolve().parents[1] / "deploy" / "brands.yaml"

# A fictional Nordic brand; the posts are written for this demo.
_SAMPLES: list[tuple[str, str, str]] = [
    ("nb", "x", "Endelig fikk jeg pakken fra @Nordlys_Energi, rask levering!"),
    ("sv", "instagram", "Nordlys Energi har bästa kundtjänsten jag har pratat med"),
    ("en", "x", "Anyone else on the #nordlysenergi plan? Thinking of switching."),
    ("da", "facebook", "Nordlys Energi sendte regningen to gange, hvad sker der?"),
    ("nb", "forum", "Strømmen var borte i to timer i Tromsø i dag. Nordlys Energi svarer ikke."),
    ("en", "reddit", "Nordlys Energi app keeps logging me out, annoying."),
    ("sv", "x", "Väntat 40 minuter i telefonkö hos @Nordlys_Energi nu..."),
    ("nb", "news", "Nordlys Energi lanserer ny fastprisavtale for vinteren."),
]
_BROKEN: list[bytes] = [
    b'{"id": "demo-broken-1", "text": "unterminated',  # invalid JSON
    json.dumps({"id": "demo-broken-2", "created_at": "2026-01-01T00:00:00Z"}).encode(),
]


def sample_mentions(now: datetime) -> list[dict[str, Any]]:
    start = now - timedelta(minutes=len(_SAMPLES))
    return [
        {
            "id": f"demo-{int(now.timestamp())}-{i}",
            "text": text,
            "created_at": (start + timedelta(minutes=i)).isoformat(),
            "platform": platform,
            # Half the collectors say the language; for the rest the scorer detects it.
            **({"lang": lang} if i % 2 else {}),
            "author": {"id": f"user-{i}", "handle": f"@demo_user_{i}", "followers": 100 * (i + 1)},
        }
        for i, (lang, platform, text) in enumerate(_SAMPLES)
    ]


def _metric_values(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own worker)
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("stormvarsel_mentions"):
                label = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{label}}}" if label else sample.name] = sample.value
    return values


def _wait_healthy(base_url: str, worker: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise StormvarselError(f"the worker exited with code {worker.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise StormvarselError(f"the worker did not become ready within {timeout_s:.0f} s")


def _stop_worker(worker: subprocess.Popen[bytes], console: Console) -> None:
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        console.print("[yellow]worker did not stop within 30 s; killing it[/]")
        worker.kill()
        worker.wait()


def run_demo(settings: Settings, *, keep_running: bool = False) -> int:
    console = Console()
    broker = LocalKafka.from_settings(settings)
    we_started_kafka = False
    worker: subprocess.Popen[bytes] | None = None
    state_dir = settings.kafka_local_data_dir.parent
    worker_log = state_dir / "demo-worker.log"
    try:
        with console.status("Starting the local Kafka ..."):
            t0 = time.monotonic()
            we_started_kafka = broker.start(say=console.print)
        if we_started_kafka:
            console.print(f"Kafka ready at {broker.bootstrap} in {time.monotonic() - t0:.1f} s")
        else:
            console.print(f"Kafka already running at {broker.bootstrap}; using it")

        web_port = free_port()
        env = {
            **os.environ,
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "STORMVARSEL_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            "STORMVARSEL_WEB_PORT": str(web_port),
            "STORMVARSEL_APP_ID": "stormvarsel-demo",
            "STORMVARSEL_DATA_DIR": str(state_dir / "demo-worker"),
            "STORMVARSEL_LOG_FORMAT": "json",
        }
        if settings.brands_file is None and REPO_BRANDS.exists():
            env["STORMVARSEL_BRANDS_FILE"] = str(REPO_BRANDS)
        worker_log.parent.mkdir(parents=True, exist_ok=True)
        with worker_log.open("wb") as log_handle:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{web_port}"
        with console.status("Starting the worker ..."):
            _wait_healthy(base_url, worker, timeout_s=90)
        console.print(f"Worker ready: metrics at {base_url}/metrics, log in {worker_log}")

        local = settings.model_copy(
            update={
                "kafka_bootstrap_servers": broker.bootstrap,
                "kafka_security_protocol": "PLAINTEXT",
            }
        )
        ensure_topics(local)
        before = _metric_values(f"{base_url}/metrics")
        mentions = sample_mentions(datetime.now(UTC))
        producer = KafkaProducer(**client_config(local, "stormvarsel-demo"), acks="all")
        for mention in mentions:
            ts = int(datetime.fromisoformat(mention["created_at"]).timestamp() * 1000)
            producer.send(
                local.topic(MENTIONS),
                key=mention["id"].encode(),
                value=json.dumps(mention).encode(),
                timestamp_ms=ts,
            )
        for raw in _BROKEN:
            producer.send(local.topic(MENTIONS), value=raw)
        producer.flush()
        producer.close()
        sent = len(mentions) + len(_BROKEN)
        console.print(_published_table(mentions, local.topic(MENTIONS)))
        console.print(f"... and {len(_BROKEN)} broken records, bound for the dead-letter topic")

        table = _watch_flow(console, f"{base_url}/metrics", before, sent)
        console.print(table)
        _show_scored(console, local, {m["id"] for m in mentions})
        _show_dead_letters(console, local, expected=len(_BROKEN))

        if keep_running:
            console.print("Running; press Ctrl-C to stop.")
            while worker.poll() is None:
                time.sleep(1)
        console.print("[green]Demo finished.[/]")
        return 0
    except KeyboardInterrupt:
        console.print("\nInterrupted; stopping cleanly ...")
        return 130
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            if worker is not None:
                _stop_worker(worker, console)
            if we_started_kafka:
                broker.stop()
                console.print("Kafka stopped.")


def _published_table(mentions: list[dict[str, Any]], topic: str) -> Table:
    table = Table(title=f"Published to '{topic}' (record time = the mention's own time)")
    for column in ("created_at", "lang", "platform", "text"):
        table.add_column(column, overflow="fold")
    for mention in mentions:
        table.add_row(
            mention["created_at"][11:19],
            mention.get("lang", "(detect)"),
            mention["platform"],
            mention["text"],
        )
    return table


def _delta(now: dict[str, float], before: dict[str, float], key: str) -> float:
    return now.get(key, 0.0) - before.get(key, 0.0)


def _watch_flow(console: Console, metrics_url: str, before: dict[str, float], sent: int) -> Table:
    deadline = time.monotonic() + 60
    now = before
    with console.status("Waiting for the worker to process them ..."):
        while time.monotonic() < deadline:
            now = _metric_values(metrics_url)
            if _delta(now, before, "stormvarsel_mentions_total") >= sent:
                break
            time.sleep(0.5)
    table = Table(title="Mentions through the worker (this run)")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    read = _delta(now, before, "stormvarsel_mentions_total")
    table.add_row("read from 'mentions'", f"{read:.0f}")
    for key in sorted(now):
        if key.startswith("stormvarsel_mentions_accepted_total{"):
            brand = key.split("brand=", 1)[1].rstrip("}")
            table.add_row(f"passed on for brand {brand}", f"{_delta(now, before, key):.0f}")
    for name, label in (("duplicate", "dropped as duplicate"), ("unmatched", "naming no brand")):
        count = _delta(now, before, f"stormvarsel_mentions_{name}_total")
        if count:
            table.add_row(label, f"{count:.0f}")
    for key in sorted(now):
        if key.startswith("stormvarsel_mentions_rejected_total{"):
            reason = key.split("reason=", 1)[1].rstrip("}")
            table.add_row(f"dead-lettered: {reason}", f"{_delta(now, before, key):.0f}")
    return table


def _show_scored(console: Console, settings: Settings, ids: set[str]) -> None:
    """Read this run's mentions back from mentions.scored: language and sentiment per post."""
    consumer = KafkaConsumer(
        settings.topic(MENTIONS_SCORED),
        **client_config(settings, "stormvarsel-demo-scored"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    with console.status("Waiting for sentiment scores ..."):
        while len(found) < len(ids) and time.monotonic() < deadline:
            for message in consumer:
                record = json.loads(message.value)
                if record.get("id") in ids:
                    found[record["id"]] = record
    consumer.close()
    table = Table(title=f"Scored ('{settings.topic(MENTIONS_SCORED)}', key = brand)")
    for column in ("brand", "lang", "sentiment", "p(neg)", "text"):
        table.add_column(column, overflow="fold")
    colours = {"negative": "red", "neutral": "yellow", "positive": "green"}
    for record in sorted(found.values(), key=lambda r: r["created_at_ms"]):
        label = record["sentiment"]["label"]
        table.add_row(
            record["brand"],
            f"{record['lang'] or '?'} ({record['lang_source']})",
            f"[{colours[label]}]{label}[/]",
            f"{record['sentiment']['negative']:.2f}",
            record["text"],
        )
    console.print(table)
    if found:
        console.print(f"model: {next(iter(found.values()))['sentiment']['model']}")


def _show_dead_letters(console: Console, settings: Settings, expected: int) -> None:
    consumer = KafkaConsumer(
        settings.topic(MENTIONS_DLQ),
        **client_config(settings, "stormvarsel-demo-dlq"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    records = [json.loads(message.value) for message in consumer]
    consumer.close()
    console.print(f"Dead-letter topic '{settings.topic(MENTIONS_DLQ)}' (latest {expected}):")
    for record in records[-expected:]:
        original = base64.b64decode(record["original_b64"]).decode("utf-8", "replace")
        console.print(
            f"  [red]{record['reason']}[/]: {record['message']}; original: {original[:60]!r}"
        )
