"""The detection stage on the real Kafka gives exactly the pure core's episodes."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaProducer

from detectors.alerting import build_alert, default_voice
from detectors.episodes import EpisodeEvent
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.kafka_local import LocalKafka
from tests.conftest import SHARED_DATA
from tests.running_worker import RunningWorker, send_scored, start_worker

pytestmark = pytest.mark.integration

AIRLINES = SHARED_DATA / "sentiment" / "airline_tweets.csv"
PACIFIC = ZoneInfo("America/Los_Angeles")


def scored_airline_records() -> list[dict[str, Any]]:
    """The airline tweets as `mentions.scored` records, human labels as sentiment, in time order."""
    records = []
    with AIRLINES.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            created = datetime.strptime(row["tweet_created"], "%m/%d/%Y %H:%M").replace(
                tzinfo=PACIFIC
            )
            label = row["airline_sentiment"] or "neutral"
            records.append(
                {
                    "id": row["tweet_id"],
                    "text": row["text"],
                    "created_at_ms": int(created.timestamp() * 1000),
                    "brand": row["airline"].lower().replace(" ", "-"),
                    "platform": "x",
                    "lang": "en",
                    "author": {"id": None, "handle": None, "followers": 0},
                    "engagement": {"likes": 0, "shares": 0, "replies": 0},
                    "is_brand_reply": False,
                    "sentiment": {"label": label, "model": "human"},
                }
            )
    records.sort(key=lambda r: (r["created_at_ms"], r["id"]))
    return records


def changes(record: str) -> tuple[str, str, str, str, str]:
    """What an alert record says happened: episode, change, kind, severity, status."""
    alert = json.loads(record)
    return tuple(str(alert[k]) for k in ("alert_id", "change", "kind", "severity", "status"))  # type: ignore[return-value]


def expected_alerts(records: list[dict[str, Any]]) -> list[str]:
    """The alert records the pure core gives for ``records`` (brands without a brands file
    entry speak with the default voice), as sorted-key JSON."""
    replayer = Replayer(lateness_ms=60_000)
    return [
        json.dumps(
            build_alert(output.to_dict(), default_voice(str(output.episode["brand"]))),
            sort_keys=True,
        )
        for record in records
        for output in replayer.feed(MentionEvent.from_record(record))
        if isinstance(output, EpisodeEvent)
    ]


@pytest.fixture
def worker(kafka: LocalKafka, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(
        kafka,
        tmp_path,
        STORMVARSEL_TOPIC_PARTITIONS="1",
        STORMVARSEL_DETECT_LATENESS_S="60",
        STORMVARSEL_DETECT_IDLE_CLOSE_S="3600",  # no wall-clock closing during the test
        STORMVARSEL_LOG_LEVEL="WARNING",
        # The airline file repeats 155 tweets. Validation drops repeated ids before scoring and
        # the detect stage drops copies of a counted id; the pure core has no ids to compare,
        # so this test, which feeds mentions.scored directly, turns de-duplication off.
        STORMVARSEL_DEDUP_WINDOW_S="0",
    )
    yield running
    running.stop()


@pytest.mark.skipif(not AIRLINES.exists(), reason=f"shared data not found at {AIRLINES}")
def test_live_detection_equals_the_pure_core(worker: RunningWorker) -> None:
    records = scored_airline_records()
    expected = expected_alerts(records)
    assert expected, "the pure core raised no episode on the airline storm"

    producer = KafkaProducer(bootstrap_servers=worker.bootstrap, acks="all", linger_ms=20)
    send_scored(producer, worker.topic("mentions.scored"), records)
    producer.close()

    alerts = worker.consume("alerts", expected=len(expected), timeout_s=120)
    got = [json.dumps(json.loads(m.value), sort_keys=True) for m in alerts]
    assert got == expected  # byte-identical alerts, in the same order

    opened = [json.loads(e) for e in expected if json.loads(e)["change"] == "opened"]
    american = [
        e for e in opened if e["brand"] == "american" and e["changed_at"].startswith("2015-02-2")
    ]
    assert american, "no episode for American around its storm of 2015-02-22"
    assert all(m.key.decode() == json.loads(m.value)["brand"] for m in alerts)
    metrics = worker.metrics()
    assert metrics["stormvarsel_buckets_closed_total{}"] > 1000


@pytest.mark.skipif(not AIRLINES.exists(), reason=f"shared data not found at {AIRLINES}")
def test_a_killed_worker_resumes_from_its_tables(kafka: LocalKafka, tmp_path: Path) -> None:
    """SIGKILL mid-stream: the restarted worker rebuilds detectors from the changelog tables
    (saved state + pending mentions) and raises exactly the pure core's episodes. Episodes
    emitted twice around the crash are identical records (same id), which Alertmanager
    de-duplicates, so we compare the distinct records."""
    records = scored_airline_records()
    expected = set(expected_alerts(records))
    env = {
        "STORMVARSEL_TOPIC_PARTITIONS": "1",
        "STORMVARSEL_DETECT_LATENESS_S": "60",
        "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",
        "STORMVARSEL_LOG_LEVEL": "WARNING",
        "STORMVARSEL_DEDUP_WINDOW_S": "0",  # as above: the pure core keeps repeated tweets
    }
    first = start_worker(kafka, tmp_path, **env)
    producer = KafkaProducer(bootstrap_servers=first.bootstrap, acks="all", linger_ms=20)

    half = len(records) // 2
    send_scored(producer, first.topic("mentions.scored"), records[:half])
    first.wait(
        lambda: first.metrics().get("stormvarsel_buckets_closed_total{}", 0) > 5000,
        120,
        "the first half to be processed",
    )
    first.process.kill()  # no clean shutdown: offsets and tables as they happen to be
    first.process.wait()

    second = start_worker(kafka, tmp_path, prefix=first.prefix, **env)
    try:
        send_scored(producer, first.topic("mentions.scored"), records[half:])
        producer.close()
        alerts = second.consume("alerts", expected=len(expected), timeout_s=120)
        got = {json.dumps(json.loads(m.value), sort_keys=True) for m in alerts}
        # The episodes and every change of them must be the pure core's. The figures too,
        # since the producer flush fix (docs/reliability.md, bug 9: 30 of 30 runs byte-exact,
        # against one in seven before); they are reported rather than asserted until CI
        # history confirms it.
        assert {changes(r) for r in got} == {changes(r) for r in expected}
        if got != expected:
            print(f"\n{len(got - expected)} alert records differ from the pure core in figures")
    finally:
        second.stop()
