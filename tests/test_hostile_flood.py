"""A flood of 20,000 hostile mentions through a real worker on the real Kafka: no new metric
series, nothing remembered about unknown brands or posts that name no brand, bounded memory."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.agents.validate import dedup_key
from streams.brands import load_brands
from streams.kafka_local import LocalKafka
from tests.conftest import REPO
from tests.running_worker import RunningWorker, start_worker
from tests.test_hostile_input import HOUR_MS, T0_MS, flood

pytestmark = pytest.mark.integration

CONFIGURED = {brand.id for brand in load_brands(REPO / "deploy" / "brands.yaml").brands}
#: Anything in the flood that is unique per mention: none of it may become a label value.
FLOOD_TOKENS = re.compile(r"Unknown|author-|user\d|brand\d|tag\d|w\d+x|someone|klage|nested|[@#]")
#: RSS the worker may gain while taking 20,000 mentions after its warm-up (measured: see the
#: report printed by the test; the bound leaves room for allocator noise, not for a per-mention
#: leak, which would cost more than this at 20,000 mentions of up to 70 kB).
RSS_GROWTH_BOUND_MB = 120


def series(worker: RunningWorker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(value for (sample, _labels), value in samples.items() if sample == name)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def send(worker: RunningWorker, raws: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=worker.bootstrap, acks="all", linger_ms=20)
    for raw in raws:
        key = json.loads(raw)["id"].encode()
        producer.send(worker.topic("mentions"), key=key, value=raw)
    producer.flush()
    producer.close()


def settle(worker: RunningWorker, read: int, timeout_s: float) -> None:
    """Wait until every record was read and every accepted one scored."""

    def done() -> bool:
        samples = series(worker)
        return total(samples, "stormvarsel_mentions_total") >= read and total(
            samples, "stormvarsel_mentions_scored_total"
        ) >= total(samples, "stormvarsel_mentions_accepted_total")

    worker.wait(done, timeout_s, f"{read} mentions to be read and scored")


def changelog_keys(worker: RunningWorker, table: str, expected: int) -> list[str]:
    consumer = KafkaConsumer(
        f"{worker.env['STORMVARSEL_APP_ID']}-{table}-changelog",
        bootstrap_servers=worker.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    keys: list[str] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            batch = [json.loads(m.key) for m in consumer]
            keys += batch
            if len(keys) >= expected and not batch:
                break
    finally:
        consumer.close()
    return keys


@pytest.fixture
def worker(kafka: LocalKafka, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(
        kafka,
        tmp_path,
        STORMVARSEL_LOG_LEVEL="WARNING",
        STORMVARSEL_SENTIMENT_BACKEND="lexicon",
        STORMVARSEL_DETECT_IDLE_CLOSE_S="3600",
    )
    yield running
    running.stop()


def test_flood_of_strangers_adds_no_series_and_no_memory(worker: RunningWorker) -> None:
    warm_up = flood(1_000, seed=7, start_ms=T0_MS, span_ms=HOUR_MS)
    send(worker, warm_up)
    settle(worker, len(warm_up), 120)
    before = series(worker)
    rss_before = rss_mb(worker.process.pid)

    raws = flood(10_000, 1, T0_MS + HOUR_MS, HOUR_MS)
    raws += flood(10_000, 2, T0_MS + 2 * HOUR_MS, HOUR_MS)
    started = time.monotonic()
    send(worker, raws)
    settle(worker, len(warm_up) + len(raws), 240)
    seconds = time.monotonic() - started
    after = series(worker)
    rss_after = rss_mb(worker.process.pid)
    print(
        f"\nflood: {len(raws)} mentions in {seconds:.1f} s ({len(raws) / seconds:.0f}/s); "
        f"series {len(before)} -> {len(after)}; worker RSS {rss_before:.0f} -> {rss_after:.0f} MB"
    )

    # Every record was read, and the outcomes are those of the flood (not lost, not stuck).
    assert total(after, "stormvarsel_mentions_total") == len(warm_up) + len(raws)
    rejected = {
        dict(labels)["reason"]: value
        for (name, labels), value in after.items()
        if name == "stormvarsel_mentions_rejected_total"
    }
    assert rejected["unknown_brand"] == 250 + 5_000
    assert total(after, "stormvarsel_mentions_unmatched_total") == 250 + 5_000

    # No label value was taken from the input, and 20,000 strangers added (almost) no series:
    # only bounded label values that the warm-up happened not to produce may appear.
    for name, labels in after:
        for key, value in labels:
            assert not FLOOD_TOKENS.search(value), f"{name}{{{key}={value!r}}}"
            if key == "brand":
                assert value in CONFIGURED, f"{name}: brand={value!r}"
    new = sorted(set(after) - set(before))
    print("series the warm-up had not produced:", [f"{n}{dict(labels)}" for n, labels in new])
    assert len(new) <= 12, new

    # The dedup table remembers exactly the mentions about a configured brand, nobody else:
    # its changelog holds one key per such mention (each key written once, none expired yet).
    about_brand = set()
    for raw in warm_up + raws:
        record = json.loads(raw)
        if "brand" not in record and "Nordlys Energi" in record["text"] and len(raw) <= 65536:
            about_brand.add(dedup_key("nordlys-energi", record["platform"], record["id"]))
    keys = changelog_keys(worker, "mention-ids", expected=len(about_brand))
    assert set(keys) == about_brand
    assert len(keys) == len(about_brand)
    # Detector state exists only for configured brands.
    assert set(changelog_keys(worker, "detector-state", expected=0)) <= CONFIGURED

    assert rss_after - rss_before < RSS_GROWTH_BOUND_MB
