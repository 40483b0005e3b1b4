"""``--publish-prefix`` on the real Kafka: the results stay, and a record Kafka refused is an
error, never a silent gap."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from detectors.episodes import BucketSummary
from streams.kafka_local import LocalKafka
from streams.replay.publish import Publisher
from streams.replay.source import ReplayError
from streams.settings import load_settings

pytestmark = pytest.mark.integration

FEB_2015 = 1_424_600_000_000  # results carry event times, here years before the retention


def summary(brand: str, start_ms: int) -> BucketSummary:
    return BucketSummary(
        brand=brand,
        start_ms=start_ms,
        end_ms=start_ms + 60_000,
        volume=12,
        negative=9,
        neutral=2,
        positive=1,
        reach_negative=4_000,
        unique_authors=11,
        languages={"en": 12},
        platforms={"x": 12},
        expected_volume=3.5,
        negative_share_baseline=0.2,
        volume_score=2.1,
        negative_score=2.7,
        share_z=3.3,
        storm_level="warning",
        buzz_level="normal",
        late=0,
    )


def test_published_topics_keep_results_dated_years_back(kafka: LocalKafka) -> None:
    """Under the default 7-day retention Kafka deletes records stamped 2015 within minutes."""
    prefix = f"pub{uuid.uuid4().hex[:6]}."
    settings = load_settings(kafka_bootstrap_servers=kafka.bootstrap, topic_replication=1)
    publisher = Publisher(settings, prefix, runs=1, partitions=2)
    for n in range(5):
        publisher.send(0, summary("american", FEB_2015 + n * 60_000), None)
    publisher.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, f"{prefix}buckets")]
        )
    finally:
        admin.close()
    (by_name,) = described.values()
    configs = by_name[f"{prefix}buckets"]
    value = configs["retention.ms"]
    assert (value.get("value") if isinstance(value, dict) else value) == "-1"
    reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(f"{prefix}buckets", p) for p in range(2)]
    assert sum(reader.end_offsets(tps).values()) == 5 == publisher.sent
    reader.close()


def test_a_result_kafka_refuses_is_an_error_naming_the_count(kafka: LocalKafka) -> None:
    """Before: the send's failure was never looked at and the replay ended as if all was
    published."""
    prefix = f"pub{uuid.uuid4().hex[:6]}."
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics(
        [NewTopic(f"{prefix}buckets", 1, 1, topic_configs={"max.message.bytes": "200"})]
    )
    admin.close()
    settings = load_settings(kafka_bootstrap_servers=kafka.bootstrap, topic_replication=1)
    publisher = Publisher(settings, prefix, runs=1, partitions=1)
    for n in range(3):
        publisher.send(0, summary("delta", FEB_2015 + n * 60_000), None)
    with pytest.raises(ReplayError, match=r"3 of 3 records were not written .*buckets"):
        publisher.close()


def test_a_result_the_producer_refuses_at_once_is_counted_too(kafka: LocalKafka) -> None:
    """A record over the producer's max_request_size (1 MB) is refused by ``send`` itself, not
    through its future. Before, that exception left the replay as a kafka-python traceback in
    the middle of the run; now it is one more record not written, named at the end."""
    prefix = f"pub{uuid.uuid4().hex[:6]}."
    settings = load_settings(kafka_bootstrap_servers=kafka.bootstrap, topic_replication=1)
    publisher = Publisher(settings, prefix, runs=1, partitions=1)
    publisher.send(0, summary("delta", FEB_2015), None)
    huge = dataclasses.replace(summary("delta", FEB_2015 + 60_000), languages={"x" * 2**20: 1})
    publisher.send(0, huge, None)
    publisher.send(0, summary("delta", FEB_2015 + 120_000), None)
    with pytest.raises(ReplayError, match=r"1 of 3 records were not written .*buckets.*Size"):
        publisher.close()
    reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    assert reader.end_offsets([TopicPartition(f"{prefix}buckets", 0)]) == {
        TopicPartition(f"{prefix}buckets", 0): 2
    }
    reader.close()


def test_a_refused_result_is_named_as_refused_every_time(kafka: LocalKafka) -> None:
    """kafka-python's flush() can raise ("Future not done") or return before the records' own
    errbacks ran. Before, close() then blamed a 60 s timeout that never happened ("did not
    confirm all 3 records within 60 s") in about half the runs; it now waits for every record
    to be settled and names the broker's refusal."""
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    prefixes = [f"pub{uuid.uuid4().hex[:6]}." for _ in range(6)]
    admin.create_topics(
        [
            NewTopic(f"{p}buckets", 1, 1, topic_configs={"max.message.bytes": "200"})
            for p in prefixes
        ]
    )
    admin.close()
    settings = load_settings(kafka_bootstrap_servers=kafka.bootstrap, topic_replication=1)
    for prefix in prefixes:
        publisher = Publisher(settings, prefix, runs=1, partitions=1)
        for n in range(3):
            publisher.send(0, summary("delta", FEB_2015 + n * 60_000), None)
        with pytest.raises(ReplayError, match=r"3 of 3 records were not written .*TooLarge"):
            publisher.close()
