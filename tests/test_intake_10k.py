"""10,000 mentions, 5% broken in varied ways, through the real worker on the real Kafka."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.running_worker import RunningWorker, start_worker

pytestmark = pytest.mark.integration

TOTAL = 10_000
BROKEN_SHARE = 0.05
DUPLICATES = 60
BASE_MS = 1_795_500_000_000  # 2026-11-24T04:00Z


def good(i: int) -> dict[str, object]:
    brand_text = ["Nordlys Energi svarer ikke", "Fjellbrød er best", "Nordlys Energi og Fjellbrød"]
    return {
        "id": f"m{i}",
        "text": f"{brand_text[i % 3] if i % 10 else '@Nordlys_Energi hjelp'} #{i}",
        "created_at": BASE_MS + i * 1000,
        "platform": ["x", "instagram", "reddit", "news"][i % 4],
        "author": {"id": f"a{i % 97}", "handle": f"@user{i % 97}", "followers": i % 5000},
        "engagement": {"likes": i % 7},
        "lang": ["nb", "sv", "en", None][i % 4],
    }


def broken(i: int) -> tuple[bytes, str]:
    """One broken record of a kind chosen by ``i``, and the reason it must get."""
    record = good(i)
    kinds: list[tuple[bytes, str]] = [
        (json.dumps(record).encode()[:-7], "invalid_json"),
        (b"\xc3\x28" + json.dumps(record).encode(), "not_utf8"),
        (
            json.dumps({k: v for k, v in record.items() if k != "text"}).encode(),
            "missing_field:text",
        ),
        (json.dumps({k: v for k, v in record.items() if k != "id"}).encode(), "missing_field:id"),
        (json.dumps({**record, "text": 123}).encode(), "bad_type:text"),
        (json.dumps({**record, "author": "someone"}).encode(), "bad_type:author"),
        (json.dumps({**record, "platform": "myspace"}).encode(), "bad_value:platform"),
        (json.dumps({**record, "text": "Nordlys Energi " + "z" * 70_000}).encode(), "too_large"),
        (
            json.dumps({**record, "created_at": "1990-01-01T00:00:00Z"}).encode(),
            "timestamp_out_of_range",
        ),
        (
            json.dumps({**record, "created_at": "2099-01-01T00:00:00Z"}).encode(),
            "timestamp_out_of_range",
        ),
        (json.dumps({**record, "brand": "Acme Inc"}).encode(), "unknown_brand"),
        (json.dumps([record]).encode(), "bad_type:mention"),
        (b"", "empty"),
        (json.dumps({**record, "x": json.loads("[" * 50 + "]" * 50)}).encode(), "too_deep"),
    ]
    return kinds[i % len(kinds)]


@pytest.fixture
def worker(kafka: LocalKafka, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(kafka, tmp_path, STORMVARSEL_LOG_LEVEL="WARNING")
    yield running
    running.stop()


def test_ten_thousand_mentions_exactly_accounted_for(worker: RunningWorker) -> None:
    rng = random.Random(7)
    broken_at = set(rng.sample(range(TOTAL), int(TOTAL * BROKEN_SHARE)))
    expected_valid: Counter[tuple[str, str]] = Counter()
    expected_reasons: Counter[str] = Counter()
    expected_dlq_payloads: dict[bytes, str] = {}
    producer = KafkaProducer(bootstrap_servers=worker.bootstrap, acks="all", linger_ms=20)
    topic = worker.topic("mentions")
    sent_good: list[dict[str, object]] = []
    for i in range(TOTAL):
        if i in broken_at:
            raw, reason = broken(i)
            expected_reasons[reason] += 1
            expected_dlq_payloads[raw] = reason
            producer.send(topic, key=None, value=raw)
            continue
        record = good(i)
        sent_good.append(record)
        text = str(record["text"])
        for brand, name in (("nordlys-energi", "Nordlys"), ("fjellbrod", "Fjellbrød")):
            if name in text:
                expected_valid[(brand, str(record["id"]))] += 1
        producer.send(topic, key=str(record["id"]).encode(), value=json.dumps(record).encode())
    # A collector redelivers some posts: same id, new records. They must be dropped, not doubled.
    for record in rng.sample(sent_good, DUPLICATES):
        producer.send(topic, key=str(record["id"]).encode(), value=json.dumps(record).encode())
    producer.flush()
    producer.close()
    read_total = TOTAL + DUPLICATES

    worker.wait(
        lambda: worker.metrics().get("stormvarsel_mentions_total{}", 0) >= read_total,
        180,
        f"{read_total} records to be read",
    )

    valid = worker.consume("mentions.valid", expected=sum(expected_valid.values()), timeout_s=60)
    got_valid: Counter[tuple[str, str]] = Counter()
    for message in valid:
        record = json.loads(message.value)
        assert message.key.decode() == record["brand"]
        assert message.timestamp == record["created_at_ms"]  # event time as record time
        got_valid[(record["brand"], record["id"])] += 1
    assert got_valid == expected_valid  # exactly the valid ones, none lost, none twice

    letters = worker.consume("mentions.dlq", expected=len(broken_at), timeout_s=60)
    got_reasons: Counter[str] = Counter()
    for message in letters:
        letter = json.loads(message.value)
        original = base64.b64decode(letter["original_b64"])
        assert expected_dlq_payloads[original] == letter["reason"]  # original bytes, right reason
        got_reasons[letter["reason"]] += 1
    assert got_reasons == expected_reasons
    assert len(letters) == len(broken_at)

    metrics = worker.metrics()
    assert metrics["stormvarsel_mentions_total{}"] == read_total
    for reason, count in expected_reasons.items():
        assert (
            metrics[f"stormvarsel_mentions_rejected_total{{reason={reason},stage=validate}}"]
            == count
        )
    for brand in ("nordlys-energi", "fjellbrod"):
        want = sum(n for (b, _), n in expected_valid.items() if b == brand)
        assert metrics[f"stormvarsel_mentions_accepted_total{{brand={brand}}}"] == want
    assert metrics["stormvarsel_mentions_duplicate_total{}"] == DUPLICATES
    assert metrics.get("stormvarsel_mentions_unmatched_total{}", 0) == 0
