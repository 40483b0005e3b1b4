"""The scoring stage on the real Kafka with the default offline model."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.running_worker import RunningWorker, start_worker

pytestmark = pytest.mark.integration

SAMPLES = [
    ("Nordlys Energi er helt forferdelig, tredje strømbrudd og ingen svarer", None, "negative"),
    ("Tusen takk til Nordlys Energi for rask og hyggelig hjelp i dag!", None, "positive"),
    ("Nordlys Energi har den sämsta kundtjänsten, jag är så arg", None, "negative"),
    ("Nordlys Energi is the worst company, cancelled my contract without asking", None, "negative"),
    ("Love the new Nordlys Energi app, works perfectly", "en", "positive"),
    ("Nordlys Energi", "da", None),
    ("Nordlys Energi 😡😡😡", None, None),
]


@pytest.fixture
def worker(kafka: LocalKafka, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(kafka, tmp_path, STORMVARSEL_SENTIMENT_BATCH_SIZE="32")
    yield running
    running.stop()


def test_mentions_are_scored_in_micro_batches_without_blocking_the_loop(
    worker: RunningWorker,
) -> None:
    producer = KafkaProducer(bootstrap_servers=worker.bootstrap, acks="all", linger_ms=5)
    topic = worker.topic("mentions")
    expected: dict[str, tuple[str | None, str | None]] = {}
    for i, (text, lang, label) in enumerate(SAMPLES):
        mention = {"id": f"s{i}", "text": text, "created_at": 1795500000 + i}
        if lang:
            mention["lang"] = lang
        expected[f"s{i}"] = (lang, label)
        producer.send(topic, key=f"s{i}".encode(), value=json.dumps(mention).encode())
    # A burst big enough to keep the scorer busy for a while.
    burst = 1500
    for i in range(burst):
        mention = {
            "id": f"b{i}",
            "text": f"Nordlys Energi melding nummer {i}, fakturaen er feil igjen",
            "created_at": 1795500000 + i,
        }
        producer.send(topic, key=f"b{i}".encode(), value=json.dumps(mention).encode())
    producer.flush()
    producer.close()

    # The web server (same event loop as the consumer) keeps answering while batches are scored.
    # Measured from when the model is loaded: /healthz answers before that (Faust starts its
    # web server first), and the loading thread's imports and set-up hold the GIL in long
    # stretches; with three CPU-bound processes alongside, probes then took 2.1 to 3.9 s, which
    # is the start-up, not the scoring of batches this test is about.
    worker.wait(
        lambda: any(name.startswith("stormvarsel_scorer_info{") for name in worker.metrics()),
        120,
        "the sentiment model to load",
    )
    slowest: list[float] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def probe() -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                with urllib.request.urlopen(f"{worker.base_url}/healthz", timeout=5) as response:
                    assert response.status == 200
                slowest.append(time.monotonic() - started)
                time.sleep(0.2)
        except BaseException as exc:  # a probe that failed must fail the test, not the thread
            failed.append(exc)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    total = len(SAMPLES) + burst
    records = worker.consume("mentions.scored", expected=total, timeout_s=240)
    stop.set()
    prober.join(timeout=10)
    assert len(records) == total
    assert not failed, f"a health probe failed: {failed[0]!r}"
    assert slowest and max(slowest) < 2.0, f"health probe took {max(slowest):.2f} s"

    by_id = {json.loads(r.value)["id"]: (r, json.loads(r.value)) for r in records}
    for mention_id, (given_lang, label) in expected.items():
        message, record = by_id[mention_id]
        assert message.key == b"nordlys-energi"
        sentiment = record["sentiment"]
        assert sentiment["model"].startswith("e5-small+")
        probs = sentiment["negative"] + sentiment["neutral"] + sentiment["positive"]
        assert abs(probs - 1) < 0.01
        if label:
            assert sentiment["label"] == label, (record["text"], sentiment)
        if given_lang:
            assert record["lang"] == given_lang and record["lang_source"] == "collector"
    assert by_id["s0"][1]["lang"] == "nb" and by_id["s0"][1]["lang_source"] == "detected"
    assert by_id["s2"][1]["lang"] == "sv"

    metrics = worker.metrics()
    scored = sum(v for k, v in metrics.items() if k.startswith("stormvarsel_mentions_scored_total"))
    assert scored == total
    batches = metrics["stormvarsel_scoring_batch_size_count{}"]
    assert 1 < batches < total  # micro-batches, not one by one
    assert metrics["stormvarsel_scoring_batch_size_sum{}"] == total
