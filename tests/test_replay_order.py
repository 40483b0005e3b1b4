"""Planning and reading a replay range on the real Kafka when record timestamps (event times)
are out of offset order: no mention of the range may be left unread."""

from __future__ import annotations

import uuid
from datetime import UTC

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from streams.kafka_local import LocalKafka
from streams.replay.run import ReplayOptions, empty_range_message
from streams.replay.source import (
    END_GRACE_MS,
    LOOKAHEAD,
    Span,
    consumer,
    plan_range,
    read_plan,
)
from streams.replay.times import show_time
from streams.settings import Settings, load_settings

pytestmark = pytest.mark.integration

MINUTE = 60_000
T0 = 1_700_000_000_000  # the range starts here
START, END = T0, T0 + 60 * MINUTE


def topic_with(kafka: LocalKafka, stamps: list[int]) -> tuple[Settings, str]:
    """A one-partition topic holding one record per timestamp, in the order given."""
    topic = f"order-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for n, stamp in enumerate(stamps):
        producer.send(topic, value=str(n).encode(), timestamp_ms=stamp)
    producer.flush()
    producer.close()
    return load_settings(kafka_bootstrap_servers=kafka.bootstrap), topic


def plan_and_read(settings: Settings, topic: str) -> tuple[list[Span], list[int], list[int]]:
    client = consumer(settings)
    try:
        plan = plan_range(client, topic, START, END)
    finally:
        client.close(autocommit=False)
    extended: list[int] = []
    read = [
        int(record.value or b"-1")
        for record in read_plan(settings, plan, lambda span, added: extended.append(added))
    ]
    return plan.spans, read, extended


def in_range(stamps: list[int]) -> list[int]:
    return [n for n, stamp in enumerate(stamps) if START <= stamp < END]


def test_an_in_order_partition_is_read_only_to_the_planned_end(kafka: LocalKafka) -> None:
    stamps = [T0 - 30 * MINUTE + n * MINUTE for n in range(1_500)]  # 30 before, 60 in, more after
    settings, topic = topic_with(kafka, stamps)
    (span,), read, extended = plan_and_read(settings, topic)
    assert not span.reordered and extended == []
    assert set(in_range(stamps)) <= set(read)
    # Read up to the first record at or after the end plus the grace, and a bounded look-ahead
    # past it: not to the log end.
    assert max(read) == 30 + 60 + END_GRACE_MS // MINUTE + LOOKAHEAD - 1
    assert span.log_end == 1_500


def test_a_history_sent_newest_first_is_read_whole(kafka: LocalKafka) -> None:
    """Before: the first record (the newest) is past the end, so the plan was empty and the
    replay said the range held no record."""
    stamps = [T0 + 150 * MINUTE - n * MINUTE for n in range(240)]
    settings, topic = topic_with(kafka, stamps)
    (span,), read, _extended = plan_and_read(settings, topic)
    assert span.reordered
    assert set(in_range(stamps)) <= set(read)
    assert len(in_range(stamps)) == 60


def test_disorder_seen_while_reading_extends_the_read_to_the_log_end(kafka: LocalKafka) -> None:
    """The samples after the planned end all lie past the range, but the span itself shows a
    record an hour behind the newest one: the tail can hold mentions of the range, and does."""
    stamps = [T0 + n * MINUTE // 2 for n in range(100)]  # offsets 0-99: the first 50 minutes
    stamps[50] = T0 - 60 * MINUTE  # a collector's hour-old catch-up
    stamps.append(END + END_GRACE_MS)  # offset 100: the planned end
    tail = [END + END_GRACE_MS + n * MINUTE for n in range(1, 1_300)]
    for k in range(1, 6):  # late mentions of the range past the look-ahead, between samples
        tail[LOOKAHEAD + k - 1] = END - k * MINUTE
    stamps += tail
    settings, topic = topic_with(kafka, stamps)
    (span,), read, extended = plan_and_read(settings, topic)
    assert not span.reordered  # the samples missed them
    assert extended == [len(stamps) - 100 - LOOKAHEAD]
    assert set(in_range(stamps)) <= set(read)
    assert {101 + LOOKAHEAD + k for k in range(5)} <= set(read)


def test_mentions_of_the_range_sent_soon_after_it_are_read(kafka: LocalKafka) -> None:
    """A partition in order but for a collector's catch-up a little after the range: five
    mentions of the range come a few records after the first dated past the range and its
    grace. The eight samples after the planned end fall elsewhere and the part read shows no
    disorder, so before they were never read (the replay did not even count them late)."""
    stamps = [T0 - 30 * MINUTE + n * MINUTE // 4 for n in range(2_400)]  # 10 h, in order
    planned_end = next(n for n, stamp in enumerate(stamps) if stamp >= END + END_GRACE_MS)
    for k in range(3, 8):  # between the first sample (the planned end) and the second
        stamps[planned_end + k] = END - k * MINUTE
    settings, topic = topic_with(kafka, stamps)
    (_span,), read, extended = plan_and_read(settings, topic)
    assert set(in_range(stamps)) <= set(read)
    assert extended  # told: read on to the log end
    assert max(read) == len(stamps) - 1


def test_no_data_hint_names_the_newest_record_and_claims_no_oldest(kafka: LocalKafka) -> None:
    """Newest first: the "no record in the range" hint said the *first* record was dated as the
    oldest one (the last). It now names the newest record exactly (found with
    offsets_for_times, whatever the order) and bounds the oldest only as far as it knows."""
    stamps = [T0 - 60 * MINUTE - n * MINUTE for n in range(100)]  # all before the range
    stamps[40] = T0 - 30 * MINUTE  # the newest, in the middle
    settings, topic = topic_with(kafka, stamps)
    message = empty_range_message(settings, topic, ReplayOptions(START, END, topic=topic))
    newest, oldest = (show_time(t, UTC) for t in (max(stamps), min(stamps)))
    assert "first record" not in message and "last" not in message
    assert f"its newest record is dated {newest}, its oldest {oldest} or earlier" in message
