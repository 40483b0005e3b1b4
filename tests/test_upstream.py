"""The upstream probe the detect timer asks before closing a quiet partition: on the real Kafka,
it says "caught up" only once the group has committed what had arrived upstream a while ago."""

from __future__ import annotations

import threading
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from streams.kafka_local import LocalKafka, free_port
from streams.settings import Settings
from streams.upstream import UpstreamProbe, caught_up


def test_caught_up_means_every_partition_committed_its_earlier_end() -> None:
    earlier = {("mentions", 0): 5, ("mentions", 1): 0, ("mentions.valid", 0): 3}
    assert caught_up({("mentions", 0): 5, ("mentions.valid", 0): 4}, earlier)
    assert not caught_up({("mentions", 0): 4, ("mentions.valid", 0): 4}, earlier)
    assert not caught_up({("mentions", 0): 5}, earlier)  # never committed, yet 3 records
    assert caught_up({}, {("mentions", 0): 0})
    # A partition retention emptied has no commit: it counts as read up to its first offset.
    assert caught_up({}, {("mentions", 0): 7}, starts={("mentions", 0): 7})
    assert not caught_up({}, {})  # no partitions: nothing to tell by


@pytest.mark.integration
def test_the_probe_holds_while_records_wait_upstream(kafka: LocalKafka) -> None:
    mentions, valid = (f"up-{uuid.uuid4().hex[:8]}.{name}" for name in ("mentions", "valid"))
    group = f"group-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(mentions, 2, 1), NewTopic(valid, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")

    def produce(count: int) -> None:
        for _ in range(count):
            producer.send(mentions, value=b"x", partition=1)
        producer.flush()

    def commit(offset: int) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False
        )
        consumer.commit({TopicPartition(mentions, 1): OffsetAndMetadata(offset, "", -1)})
        consumer.close()

    probe = UpstreamProbe(
        Settings(kafka_bootstrap_servers=kafka.bootstrap), group, [mentions, valid], settle_s=10
    )
    try:
        commit(0)  # the group exists (as a worker's does) before the probe asks for it
        produce(5)
        # No earlier sample to compare with yet: it waits settle_s (real seconds) for the five
        # to be committed, in vain.
        assert not probe.caught_up(now=0)
        assert not probe.caught_up(now=11)  # five records, none committed
        commit(5)
        assert probe.caught_up(now=22)  # all that was there at t=11 went through
        produce(3)  # a steady flow: arrived after the reference sample (t=22)
        assert probe.caught_up(now=33)
        # A stall: the three are still not committed ten seconds and more later.
        assert not probe.caught_up(now=44)
        assert not probe.caught_up(now=55)
        commit(8)
        assert probe.caught_up(now=66)
        # Records retention removed from a partition nobody ever read (partition 0 here) do
        # not hold the timer: the partition counts as read up to its first offset.
        for _ in range(4):
            producer.send(mentions, value=b"x", partition=0)
        producer.flush()
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        admin.delete_records({TopicPartition(mentions, 0): 4})
        admin.close()
        assert probe.caught_up(now=77)
        assert probe.caught_up(now=88)
        # A reference older than max_age_s says nothing about now, and is dropped: what is
        # upstream now is the reference instead, and the group has committed all of it.
        assert probe.caught_up(now=88 + probe.max_age_s + 30)
        probe.close()  # at shutdown: later calls say no, without a new client
        assert not probe.caught_up(now=500)
        assert probe._admin is None
    finally:
        probe.close()
        producer.close()


def test_an_unreachable_kafka_holds_the_timer_and_leaves_no_thread_behind() -> None:
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    probe = UpstreamProbe(settings, "group", ["mentions"], settle_s=0)
    before = threading.active_count()
    assert not probe.caught_up(now=0)
    # kafka-python starts a network thread before it fails to bootstrap; every retry of the
    # timer through an outage used to leave one behind.
    assert threading.active_count() == before


@pytest.mark.integration
def test_read_to_is_how_far_the_group_committed_each_partition(kafka: LocalKafka) -> None:
    """What the detect timer asks of its own source after a rebuild (``detect_state.resume``):
    the committed offset, or the first offset of a partition the group never committed."""
    scored = f"up-{uuid.uuid4().hex[:8]}.scored"
    group = f"group-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(scored, 2, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for part in (0, 0, 0, 1, 1):
        producer.send(scored, value=b"x", partition=part)
    producer.flush()
    producer.close()
    admin.delete_records({TopicPartition(scored, 1): 1})  # partition 1 now starts at 1
    admin.close()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False
    )
    consumer.commit({TopicPartition(scored, 0): OffsetAndMetadata(2, "", -1)})
    consumer.close()
    probe = UpstreamProbe(Settings(kafka_bootstrap_servers=kafka.bootstrap), group, [])
    try:
        assert probe.read_to(scored, [0, 1]) == {0: 2, 1: 1}
        probe.close()
        assert probe.read_to(scored, [0]) is None
    finally:
        probe.close()


def test_read_to_is_none_while_kafka_does_not_answer() -> None:
    probe = UpstreamProbe(Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}"), "g", [])
    try:
        assert probe.read_to("mentions.scored", [0]) is None
        assert probe._admin is None
    finally:
        probe.close()
