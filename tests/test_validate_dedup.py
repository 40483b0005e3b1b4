"""Validation's de-duplication is per brand: each brand gets a post once, whoever exported it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.agents.validate import Passed, Skipped, check_mention
from streams.brand_matching import BrandMatcher
from streams.brands import Brand, OnCall
from streams.dedup import Deduplicator
from streams.kafka_local import LocalKafka
from streams.mention import Limits
from tests.running_worker import start_worker

MATCHER = BrandMatcher(
    [Brand(name=name, oncall=OnCall(team="a")) for name in ("Telenor", "Telia", "Ice")]
)
POST = {
    "id": "1862200023456789",
    "platform": "x",
    "created_at": "2026-11-24T10:00:00Z",
    "text": "Byttet fra Telenor til Telia, begge like dårlige",
}


def check(dedup: Deduplicator, offset: int, partition: int = 0, **extra: Any) -> object:
    out = check_mention(
        json.dumps({**POST, **extra}).encode(),
        partition,
        offset,
        limits=Limits(),
        matcher=MATCHER,
        dedup=dedup,
        generation=1,
    )
    return [brand for brand, _ in out.records] if isinstance(out, Passed) else out


def test_one_copy_per_brand_reaches_each_brand() -> None:
    """A listening tool with one query per brand exports the post once per brand: the copy for
    Telia was dropped as a duplicate of Telenor's, and Telia never saw the post."""
    dedup = Deduplicator({}, 86_400_000)
    assert check(dedup, 0, brand="telenor") == ["telenor"]
    assert check(dedup, 1, brand="Telia") == ["telia"]
    assert check(dedup, 2, brand="telia") is Skipped.DUPLICATE  # Telia has it already
    assert check(dedup, 3) is Skipped.DUPLICATE  # the text names both, both have it


def test_only_brands_that_have_not_had_the_post_get_it() -> None:
    dedup = Deduplicator({}, 86_400_000)
    assert check(dedup, 0) == ["telenor", "telia"]  # no brand given: matched from the text
    assert check(dedup, 1, brand="telenor") is Skipped.DUPLICATE
    assert check(dedup, 2, brand="ice") == ["ice"]


def test_a_copy_passed_to_one_brand_still_names_every_brand_the_post_concerns() -> None:
    dedup = Deduplicator({}, 86_400_000)
    assert check(dedup, 0, brand="telenor") == ["telenor"]
    out = check_mention(
        json.dumps(POST).encode(), 0, 1, limits=Limits(), matcher=MATCHER, dedup=dedup, generation=1
    )
    assert isinstance(out, Passed)
    [(brand, record)] = out.records
    assert (brand, record["brands"]) == ("telia", ["telenor", "telia"])


def test_a_redelivered_record_passes_again_for_the_brands_it_brought() -> None:
    """Kafka redelivering the same record (same partition and offset) after a crash is not a
    duplicate: its output may not have been written."""
    dedup = Deduplicator({}, 86_400_000)
    assert check(dedup, 0, brand="telenor") == ["telenor"]
    assert check(dedup, 1) == ["telia"]
    assert check(dedup, 1) == ["telia"]  # redelivered: Telenor's copy came from offset 0
    assert check(dedup, 1, partition=2) is Skipped.DUPLICATE  # another record


def test_a_failed_record_forgets_every_brand_it_recorded() -> None:
    """The agent calls forget() on internal_error: all brands the record recorded are forgotten,
    so re-sending it from the dead-letter topic reaches all of them."""
    dedup = Deduplicator({}, 86_400_000)
    assert check(dedup, 0, brand="ice") == ["ice"]
    assert check(dedup, 1) == ["telenor", "telia"]
    dedup.forget(0, 1)
    assert check(dedup, 7) == ["telenor", "telia"]
    assert check(dedup, 8, brand="ice") is Skipped.DUPLICATE  # recorded by offset 0, kept


def test_the_table_holds_one_key_per_brand_copy() -> None:
    store: dict[str, list[int]] = {}
    dedup = Deduplicator(store, 86_400_000)
    check(dedup, 0)
    assert sorted(store) == ["telenor/x:1862200023456789", "telia/x:1862200023456789"]


@pytest.mark.integration
def test_one_copy_per_brand_on_a_real_worker(kafka: LocalKafka, tmp_path: Path) -> None:
    """The worker's changelog-backed table: each brand's copy passes, a second copy for a brand
    is dropped and counted as a duplicate."""
    worker = start_worker(kafka, tmp_path)
    try:
        post = {"id": "p1", "text": "Nordlys Energi og Fjellbrød", "created_at": POST["created_at"]}
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        for brand in ("nordlys-energi", "Fjellbrød", "nordlys-energi"):
            value = json.dumps({**post, "brand": brand}).encode()
            producer.send(worker.topic("mentions"), key=b"p1", value=value)
        producer.flush()
        producer.close()
        records = worker.consume("mentions.valid", expected=2)
        assert sorted(record.key for record in records) == [b"fjellbrod", b"nordlys-energi"]
        worker.wait(
            lambda: worker.metrics().get("stormvarsel_mentions_duplicate_total{}") == 1,
            30,
            "the third copy to be counted as a duplicate",
        )
    finally:
        worker.stop()
