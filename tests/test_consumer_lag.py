"""The consumer-lag probe on the real Kafka: end offset minus the group's committed offset."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from streams.consumer_lag import LagProbe
from streams.kafka_local import LocalKafka, free_port
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_lag_is_end_minus_committed_and_uncommitted_partitions_count_from_their_start(
    kafka: LocalKafka,
) -> None:
    """Partitions without a commit had no series: a runbook reader took them for partitions
    nobody consumes (and one with records waiting showed no lag at all)."""
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    group = f"group-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 3, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for _ in range(10):
        producer.send(topic, value=b"x", partition=0)
    for _ in range(3):
        producer.send(topic, value=b"y", partition=1)  # never committed
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False
    )
    part0 = TopicPartition(topic, 0)
    consumer.commit({part0: OffsetAndMetadata(4, "", -1)})
    consumer.close()

    probe = LagProbe(Settings(kafka_bootstrap_servers=kafka.bootstrap), group)
    try:
        lag = probe.lag([(topic, 0), (topic, 1), (topic, 2)])
        # 10 records, 4 committed; 3 records, none committed; nothing there yet
        assert lag == {(topic, 0): 6, (topic, 1): 3, (topic, 2): 0}
        gone = f"gone-{uuid.uuid4().hex[:8]}"  # a topic deleted meanwhile: left out, no error
        assert probe.lag([(gone, 0)]) == {}
        assert probe.lag([(gone, 0), (topic, 1)]) == {(topic, 1): 3}
        assert probe.lag([]) == {}
    finally:
        probe.close()


def test_a_worker_without_partitions_still_asks_kafka() -> None:
    """With no partition to measure the probe returned {} without a request, so a worker that
    owned none (one more than the partitions, or mid-rebalance) reported Kafka up whatever the
    brokers did."""
    probe = LagProbe(Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}"), "nobody")
    try:
        with pytest.raises(Exception):  # noqa: B017  # whatever kafka-python raises: it is counted
            probe.lag([])
    finally:
        probe.close()
