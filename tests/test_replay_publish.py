"""``--publish-prefix`` on the real Kafka: the results stay, a record Kafka refused is an
error, never a silent gap, and a prefix whose topics already hold results is refused."""

from __future__ import annotations

import dataclasses
import re
import shlex
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from detectors.episodes import BucketSummary
from streams.cli import main
from streams.kafka_local import LocalKafka
from streams.replay import run as replay_run
from streams.replay.publish import Publisher, delete_command
from streams.replay.source import ReplayError, ReplayOptionError
from streams.replay.times import iso_utc
from streams.settings import load_settings
from tests.test_replay_tail import scored

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


# --- a prefix whose topics already hold records ---------------------------------------------

MINUTE = 60_000
HOUR = 60 * MINUTE
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


def scored_history(kafka: LocalKafka) -> tuple[str, str]:
    """A ``mentions.scored`` topic of its own (a mention a minute for four hours): the topic
    prefix and the topic. Scored mentions replay without loading a model."""
    topic_prefix = f"used{uuid.uuid4().hex[:6]}."
    topic = f"{topic_prefix}mentions.scored"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for n in range(4 * 60):
        t_ms = T0 + n * MINUTE
        producer.send(topic, key=b"acme", value=scored(n, t_ms), timestamp_ms=t_ms)
    producer.flush()
    producer.close()
    return topic_prefix, topic


def replay_cli(kafka: LocalKafka, topic_prefix: str, topic: str, prefix: str, out: Path) -> Result:
    return CliRunner().invoke(
        main,
        [
            "replay", "--quiet",
            "--from", iso_utc(T0 + HOUR), "--to", iso_utc(T0 + 2 * HOUR),
            "--topic", topic, "--warmup", "1h",
            "--publish-prefix", prefix, "--out", str(out),
        ],
        env={
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "STORMVARSEL_TOPIC_PREFIX": topic_prefix,
        },
    )  # fmt: skip


def end_offsets(kafka: LocalKafka, topics: list[str]) -> dict[str, int]:
    """Records per topic (the sum of its partitions' end offsets); -1 for a missing topic."""
    reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    try:
        existing = reader.topics()
        counts = {}
        for topic in topics:
            if topic not in existing:
                counts[topic] = -1
                continue
            tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
            counts[topic] = sum(reader.end_offsets(tps).values())
        return counts
    finally:
        reader.close()


def test_a_second_replay_to_a_used_prefix_is_refused_before_it_starts(
    kafka: LocalKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: topics that existed were "used as they are", so the same replay run twice with the
    same --publish-prefix appended a second copy of every alert and bucket, and every reader of
    the topics counted them twice. Now the second run stops while planning, with exit status 2
    (a bad option), naming each topic holding records and how many, and how to go on."""
    topic_prefix, topic = scored_history(kafka)
    prefix = f"pm{uuid.uuid4().hex[:6]}."
    alerts, buckets = f"{prefix}alerts", f"{prefix}buckets"
    first = replay_cli(kafka, topic_prefix, topic, prefix, tmp_path / "first")
    assert first.exit_code == 0, first.output
    published = end_offsets(kafka, [alerts, buckets])
    assert published[buckets] > 0 and published[alerts] == 0  # an ordinary day: no alert

    def started(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the replay began reading (or loading the model)")

    monkeypatch.setattr(replay_run, "run_prepared", started)
    monkeypatch.setattr(replay_run, "read_plan", started)
    again = replay_cli(kafka, topic_prefix, topic, prefix, tmp_path / "again")
    assert again.exit_code == 2, again.output
    message = again.output.strip()
    assert message.count("\n") == 0, message
    count = published[buckets]
    assert message.startswith(
        f"error: --publish-prefix {prefix!r}: the topic {buckets!r} ({count:,} records) "
        "already holds records"
    ), message
    assert repr(alerts) not in message  # created, but empty: nothing to refuse
    assert "Choose a prefix no replay has used, or delete that topic first: " in message
    advice = message.split(" first: ", 1)[1]
    # The local broker of `stormvarsel kafka start` has no kafka-topics.sh: stormvarsel's own
    # command comes first, the kafka-topics.sh one (any admin tool works) after it.
    ours, _, rest = advice.partition(" (")
    assert ours == f"stormvarsel topics delete --prefix {prefix}"
    assert rest.startswith("it lists the topics beginning with the prefix and asks; any Kafka ")
    assert rest.endswith(")")
    command = rest.split("e.g. ", 1)[1][:-1]
    assert command == delete_command(
        load_settings(kafka_bootstrap_servers=kafka.bootstrap), [buckets]
    )
    words = shlex.split(command)
    assert words[:5] == [
        "kafka-topics.sh",
        "--bootstrap-server",
        kafka.bootstrap,
        "--delete",
        "--topic",
    ]
    # kafka-topics.sh matches --topic as a regular expression against whole names.
    assert re.fullmatch(words[5], buckets)
    assert not re.fullmatch(words[5], buckets.replace(".", "-"))
    assert not re.fullmatch(words[5], alerts)
    assert end_offsets(kafka, [alerts, buckets]) == published  # nothing written
    assert not (tmp_path / "again").exists()  # no report directory left behind
    monkeypatch.undo()

    # Deleted as the message says (in the replay's environment, --yes for the prompt), the
    # prefix takes the same replay again: one copy.
    deleted = CliRunner().invoke(
        main,
        [*shlex.split(ours)[1:], "--yes"],
        env={
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "STORMVARSEL_TOPIC_PREFIX": topic_prefix,
        },
    )
    assert deleted.exit_code == 0, deleted.output
    assert end_offsets(kafka, [alerts, buckets]) == {alerts: -1, buckets: -1}
    rerun = replay_cli(kafka, topic_prefix, topic, prefix, tmp_path / "rerun")
    assert rerun.exit_code == 0, rerun.output
    assert end_offsets(kafka, [alerts, buckets]) == published


def test_existing_empty_topics_are_published_to(kafka: LocalKafka, tmp_path: Path) -> None:
    """Topics created but never written (a replay stopped before its first result, or made by
    hand beforehand) hold nothing to count twice: they are used as they are."""
    topic_prefix, topic = scored_history(kafka)
    prefix = f"pm{uuid.uuid4().hex[:6]}."
    alerts, buckets = f"{prefix}alerts", f"{prefix}buckets"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(alerts, 1, 1), NewTopic(buckets, 2, 1)])
    admin.close()
    result = replay_cli(kafka, topic_prefix, topic, prefix, tmp_path / "report")
    assert result.exit_code == 0, result.output
    assert end_offsets(kafka, [alerts, buckets])[buckets] > 0


def test_the_publisher_refuses_topics_written_since_the_replay_was_planned(
    kafka: LocalKafka,
) -> None:
    """The check is made again when publishing begins: another replay may have published
    under the prefix while this one loaded its model. --config's topics count too."""
    prefix = f"pub{uuid.uuid4().hex[:6]}."
    settings = load_settings(kafka_bootstrap_servers=kafka.bootstrap, topic_replication=1)
    earlier = Publisher(settings, prefix, runs=2, partitions=1)
    earlier.send(1, summary("delta", FEB_2015), None)
    earlier.close()
    with pytest.raises(ReplayOptionError) as refused:
        Publisher(settings, prefix, runs=2, partitions=1)
    assert f"the topic '{prefix}candidate.buckets' (1 record) already holds" in str(refused.value)
    assert end_offsets(kafka, [f"{prefix}candidate.buckets"]) == {f"{prefix}candidate.buckets": 1}


def test_the_delete_command_names_the_security_settings_file_on_a_secured_cluster() -> None:
    settings = load_settings(
        kafka_bootstrap_servers="a:9093,b:9093",
        kafka_security_protocol="SSL",
    )
    command = delete_command(settings, ["r.alerts", "r.candidate.alerts"])
    assert command.startswith(
        "kafka-topics.sh --bootstrap-server a:9093,b:9093 --delete "
        "--topic 'r\\.alerts|r\\.candidate\\.alerts' --command-config client.properties"
    )
