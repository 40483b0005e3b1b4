"""A backfill sent with ``stormvarsel ingest --sort`` to multi-partition topics: the detect
stage counts it, not late.

Before ``--key``, ingest keyed every record by mention id. A brand's mentions then spread over
the four ``mentions`` partitions, the worker read those back interleaved in fetch-sized chunks,
and each brand's stream on ``mentions.scored`` ran back by hours: the README's airline example,
sorted, had 10,396 of its 14,485 distinct mentions counted late and raised 2 storms where a
replay of the same topic found 7. With ``--sort`` records are now keyed by brand, so each
brand's mentions keep the order they were sent in through every stage.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from streams.ingest import run_ingest
from streams.kafka_local import LocalKafka
from streams.settings import load_settings
from streams.topics import ensure_topics
from tests.running_worker import start_worker
from tests.test_replay_kafka import AIRLINES, BRANDS, airline_options

pytestmark = pytest.mark.integration

DISTINCT = 14_485  # 14,640 rows, 155 repeated ids


def test_sort_keys_by_brand_and_explicit_key_wins() -> None:
    assert airline_options(sort=True).key_by == "brand"
    assert airline_options().key_by == "id"
    assert airline_options(sort=True, key="id").key_by == "id"
    assert airline_options(key="brand").key_by == "brand"


@pytest.mark.timeout(600)
def test_a_sorted_backfill_on_four_partitions_is_counted_not_late(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    if not AIRLINES.exists():
        pytest.skip(f"airline tweets not found at {AIRLINES} (../shared/data is absent)")
    prefix = f"b{uuid.uuid4().hex[:8]}."
    settings = load_settings(
        kafka_bootstrap_servers=kafka.bootstrap,
        topic_prefix=prefix,
        topic_partitions=4,
        brands_file=BRANDS,
    )
    ensure_topics(settings)
    report = run_ingest(settings, airline_options(sort=True))
    assert report.sent == 14_640, report

    # Each brand's records are on one partition, in event time.
    consumer = KafkaConsumer(
        f"{prefix}mentions",
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    partitions: dict[bytes, set[int]] = {}
    last_ms: dict[int, int] = {}
    backwards = 0
    for message in consumer:
        partitions.setdefault(message.key, set()).add(message.partition)
        backwards += message.timestamp < last_ms.get(message.partition, 0)
        last_ms[message.partition] = message.timestamp
    consumer.close()
    assert sorted(partitions) == [
        b"american",
        b"delta",
        b"southwest",
        b"united",
        b"us-airways",
        b"virgin-america",
    ]
    assert all(len(p) == 1 for p in partitions.values()), partitions
    assert backwards == 0
    assert len(set(last_ms)) > 1  # the brands did spread over the partitions

    worker = start_worker(
        kafka,
        tmp_path,
        prefix=prefix,
        STORMVARSEL_TOPIC_PARTITIONS="4",
        STORMVARSEL_BRANDS_FILE=str(BRANDS),
        STORMVARSEL_SENTIMENT_BACKEND="lexicon",  # the order is the point, not the scores
        STORMVARSEL_DETECT_IDLE_CLOSE_S="3600",  # no wall-clock closing during the test
        STORMVARSEL_LOG_LEVEL="WARNING",
    )
    try:

        def counted() -> float:
            return sum(
                v
                for k, v in worker.metrics().items()
                if k.startswith("stormvarsel_brand_mentions_counted{")
            )

        worker.wait(lambda: counted() == DISTINCT, 400, f"{DISTINCT:,} mentions counted")
        late = worker.metrics()["stormvarsel_late_mentions_total{}"]
        print(f"counted late: {late:.0f} of {DISTINCT:,}")
        # A mention is late only where the file itself steps back more than the 60 s lateness.
        assert late <= 0.01 * DISTINCT, f"{late:.0f} of {DISTINCT:,} counted late"
    finally:
        worker.stop()
