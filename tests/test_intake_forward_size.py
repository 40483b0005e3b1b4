"""``STORMVARSEL_MENTION_MAX_BYTES`` was allowed up to 10 MiB, but the validation stage forwards a
valid mention as its validated JSON, and Faust's producer refuses records over its
``max_request_size`` (1,000,000 bytes): a valid mention of about 1 MB crashed the validate agent
when it forwarded it. The setting is now capped so that a valid mention always fits, however the
stage rewrites it (up to 4 times larger: ``1e15`` becomes ``1000000000000000.0, ``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from streams.agents.validate import Passed, check_mention, valid_value
from streams.app import build_app
from streams.brand_matching import BrandMatcher
from streams.brands import load_brands
from streams.dedup import Deduplicator
from streams.kafka_local import LocalKafka
from streams.mention import (
    MENTION_MAX_BYTES_CEILING,
    PRODUCER_MAX_REQUEST_BYTES,
    Limits,
    Rejection,
)
from streams.settings import ConfigError, Settings, load_settings
from tests.conftest import REPO

BRANDS = load_brands(REPO / "deploy" / "brands.yaml")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_the_ceiling_is_the_producers_limit_over_the_growth() -> None:
    assert MENTION_MAX_BYTES_CEILING == 245_760
    app, _topics = build_app(Settings())
    # The limit the worker's producer really has (streams/app.py leaves Faust's default).
    assert app.conf.producer_max_request_size == PRODUCER_MAX_REQUEST_BYTES == 1_000_000


@pytest.mark.parametrize("value", ["245761", "1048576", "10485760"])
def test_a_mention_max_bytes_the_producer_cannot_forward_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STORMVARSEL_MENTION_MAX_BYTES", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("STORMVARSEL_MENTION_MAX_BYTES: expected at most 245760 bytes")
    assert "1,000,000 bytes (max_request_size)" in message and "4 times larger" in message


def test_the_ceiling_itself_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_MENTION_MAX_BYTES", str(MENTION_MAX_BYTES_CEILING))
    assert load_settings().mention_max_bytes == MENTION_MAX_BYTES_CEILING


def _just_under(limit: int, item: str) -> bytes:
    """A valid mention of just under ``limit`` bytes, naming every brand, filled with an unknown
    field ``[item, item, ...]``: the form the validation stage rewrites the most."""
    names = " ".join(brand.name for brand in BRANDS.brands)
    head = {"id": "x" * 256, "text": f"{names} svarer ikke", "created_at": "2026-11-24T09:00:00Z"}
    start = json.dumps(head, separators=(",", ":"))[:-1] + ',"filler":['
    count = (limit - len(start) - 2) // (len(item) + 1)
    raw = (start + ",".join([item] * count) + "]}").encode()
    assert limit - len(item) - 2 <= len(raw) <= limit
    return raw


def _checked(raw: bytes, limit: int) -> object:
    """The validate agent's decision on ``raw`` under a ``limit``-byte mention size."""
    return check_mention(
        raw,
        0,
        1,
        limits=Limits(max_bytes=limit),
        matcher=BrandMatcher.from_file(BRANDS),
        dedup=Deduplicator({}, 24 * 3600 * 1000),
        generation=0,
        now=NOW,
    )


def _forwarded(raw: bytes, limit: int) -> list[tuple[bytes, bytes]]:
    """What the validate agent sends to ``mentions.valid`` for ``raw``: (key, value) per brand."""
    outcome = _checked(raw, limit)
    assert isinstance(outcome, Passed), outcome
    return [(brand.encode(), valid_value(record)) for brand, record in outcome.records]


async def _send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Send as the worker's producer does: with its max_request_size, acks from all replicas."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=PRODUCER_MAX_REQUEST_BYTES, acks="all"
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


@pytest.mark.integration
@pytest.mark.parametrize("item", ["1e15", "0", "{}"])
def test_a_mention_just_under_the_ceiling_is_forwarded(kafka: LocalKafka, item: str) -> None:
    raw = _just_under(MENTION_MAX_BYTES_CEILING, item)
    forwarded = _forwarded(raw, MENTION_MAX_BYTES_CEILING)
    assert len(forwarded) == len(BRANDS.brands)  # a copy per brand, each listing them all
    largest = max(len(value) for _key, value in forwarded)
    assert largest < PRODUCER_MAX_REQUEST_BYTES - 1000, largest
    if item == "1e15":
        assert largest > 3.9 * len(raw)  # the growth the ceiling allows for

    topic = f"valid-size-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    asyncio.run(_send(kafka.bootstrap, topic, forwarded))


def test_one_byte_over_the_ceiling_is_refused_as_too_large() -> None:
    raw = _just_under(MENTION_MAX_BYTES_CEILING + 10, "0")
    assert len(raw) > MENTION_MAX_BYTES_CEILING
    outcome = _checked(raw, MENTION_MAX_BYTES_CEILING)
    assert isinstance(outcome, Rejection) and outcome.reason == "too_large"
