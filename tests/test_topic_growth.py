"""``stormvarsel topics grow`` against the real broker: what it grows, what it deletes, and what it
refuses (running workers, unread records, fewer partitions)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from streams.app import build_app
from streams.detector_seeds import load_seeds
from streams.errors import StormvarselError
from streams.kafka_local import LocalKafka
from streams.settings import Settings
from streams.topic_growth import grow_topics, plan_growth, unread_records
from streams.topics import (
    ALERTS,
    MENTIONS,
    MENTIONS_SCORED,
    MENTIONS_VALID,
    PIPELINE_TOPICS,
    ensure_internal_topics,
    ensure_topics,
    faust_internal_topics,
    state_topic_names,
    state_topics,
)
from tests.running_worker import run_topics_grow, send_scored, start_worker
from tests.test_detect_stage import AIRLINES, changes, expected_alerts, scored_airline_records

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(kafka: LocalKafka, tmp_path: Path) -> Settings:
    """A deployment with two partitions per topic and the worker's state topics, as a worker that
    ran and stopped leaves them."""
    prefix = f"grow{uuid.uuid4().hex[:8]}."
    made = Settings(
        kafka_bootstrap_servers=kafka.bootstrap,
        topic_prefix=prefix,
        app_id=f"test-{prefix.rstrip('.')}",
        topic_partitions=2,
        data_dir=tmp_path,
        alertmanager_urls="http://127.0.0.1:9/",  # the notifier and its table; never called
    )
    ensure_topics(made)
    app, _ = build_app(made, mention_partitions=2, scored_partitions=2, alerts_partitions=2)
    ensure_internal_topics(made, faust_internal_topics(app), timeout_s=30)
    return made


def counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    return {topic["name"]: len(topic["partitions"]) for topic in admin.describe_topics(names)}


def pipeline(settings: Settings) -> list[str]:
    return [settings.topic(name) for name in PIPELINE_TOPICS]


def produce(kafka: LocalKafka, topic: str, partition: int, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    try:
        for number in range(count):
            producer.send(topic, key=b"nordlys", value=b'{"n": %d}' % number, partition=partition)
        producer.flush()
    finally:
        producer.close()


def commit(admin: KafkaAdminClient, group: str, topic: str, partition: int, offset: int) -> None:
    """What a worker that read ``topic`` up to ``offset`` (exclusive) and stopped leaves behind."""
    tp = TopicPartition(topic, partition)
    admin.alter_group_offsets(group, {tp: OffsetAndMetadata(offset, "", -1)})


def raw_read(settings: Settings) -> dict[str, dict[int, int]]:
    """The unread records of the topics before the brand keys when nothing was sent to them."""
    return {settings.topic(MENTIONS): {0: 0, 1: 0}, settings.topic(MENTIONS_VALID): {0: 0, 1: 0}}


def test_every_pipeline_topic_grows_and_the_state_starts_afresh(
    settings: Settings, admin: KafkaAdminClient
) -> None:
    assert sorted(state_topics(settings)) == state_topic_names(settings.app_id)
    plan = plan_growth(settings, 4)
    assert plan.current == dict.fromkeys(pipeline(settings), 2)
    assert plan.to_grow == pipeline(settings) and plan.unread_total == 0

    deleted = grow_topics(settings, plan)

    assert counts(admin, pipeline(settings)) == dict.fromkeys(pipeline(settings), 4)
    assert sorted(deleted) == state_topic_names(settings.app_id)
    assert state_topics(settings) == []
    # The worker's next start lays its tables out for 4 partitions, and the check that refused
    # the old changelogs passes.
    app, _ = build_app(settings, mention_partitions=4, scored_partitions=4, alerts_partitions=4)
    ensure_internal_topics(settings, faust_internal_topics(app), timeout_s=30)
    changelog = f"{settings.app_id}-detector-state-changelog"
    assert counts(admin, [changelog]) == {changelog: 4}
    assert plan_growth(settings, 4).to_grow == []  # nothing left to grow


def test_unread_scored_mentions_stop_the_growth_until_read_or_forced(
    settings: Settings, admin: KafkaAdminClient, kafka: LocalKafka
) -> None:
    """Read after the growth, a brand's scored mentions left on its old partition would be
    counted there by a second detector, whose saves overwrite the brand's real state."""
    scored, alerts = settings.topic(MENTIONS_SCORED), settings.topic(ALERTS)
    produce(kafka, scored, 1, 5)
    commit(admin, settings.app_id, scored, 1, 2)  # read 2 of 5
    commit(admin, settings.app_id, scored, 0, 0)
    produce(kafka, alerts, 0, 3)  # alerts no worker of the group ever read: not counted

    plan = plan_growth(settings, 3)
    assert plan.unread == {**raw_read(settings), scored: {0: 0, 1: 3}, alerts: {}}
    with pytest.raises(StormvarselError) as refused:
        grow_topics(settings, plan)
    message = str(refused.value)
    assert f"{scored}: 3 records (partition 1)" in message
    assert "consumer lag is 0" in message and "--force" in message
    assert counts(admin, pipeline(settings)) == dict.fromkeys(pipeline(settings), 2)
    assert state_topics(settings)  # nothing deleted

    commit(admin, settings.app_id, scored, 1, 5)  # the workers read the rest
    assert plan_growth(settings, 3).unread_total == 0

    # Mentions the collectors sent meanwhile: read after the growth, from the old partitions
    # while newer ones come from the new partitions, they would be counted late.
    raw = settings.topic(MENTIONS)
    produce(kafka, raw, 0, 2)
    with pytest.raises(StormvarselError) as refused:
        grow_topics(settings, plan_growth(settings, 3))
    message = str(refused.value)
    assert f"{raw}: 2 records (partition 0)" in message and "counted late" in message
    assert "second detector" not in message
    commit(admin, settings.app_id, raw, 0, 2)
    commit(admin, settings.app_id, raw, 1, 0)
    assert plan_growth(settings, 3).unread_total == 0

    produce(kafka, scored, 0, 1)
    grow_topics(settings, plan_growth(settings, 3), force=True)
    assert counts(admin, pipeline(settings)) == dict.fromkeys(pipeline(settings), 3)


def test_scored_mentions_the_group_never_committed_on_stop_the_growth_too(
    settings: Settings, admin: KafkaAdminClient, kafka: LocalKafka
) -> None:
    """The detect stage reads ``mentions.scored`` from its first record: a group that never
    committed there has read none of it. Only ``alerts`` (read only with Alertmanager) is
    exempt then."""
    scored, alerts = settings.topic(MENTIONS_SCORED), settings.topic(ALERTS)
    produce(kafka, scored, 0, 2)
    produce(kafka, scored, 1, 1)
    produce(kafka, alerts, 1, 4)

    plan = plan_growth(settings, 3)
    assert plan.unread == {**raw_read(settings), scored: {0: 2, 1: 1}, alerts: {}}
    with pytest.raises(StormvarselError) as refused:
        grow_topics(settings, plan)
    message = str(refused.value)
    assert f"{scored}: 3 records (partitions 0, 1)" in message
    assert f"Nothing of {scored} has been read yet" in message
    assert alerts not in message and "--force" in message
    assert counts(admin, pipeline(settings)) == dict.fromkeys(pipeline(settings), 2)

    commit(admin, settings.app_id, scored, 0, 2)  # the workers read it (partition 1 from its start)
    assert plan_growth(settings, 3).unread == {
        **raw_read(settings),
        scored: {0: 0, 1: 1},
        alerts: {},
    }
    commit(admin, settings.app_id, scored, 1, 1)
    assert plan_growth(settings, 3).unread_total == 0


def test_partitions_cannot_be_taken_away(settings: Settings) -> None:
    with pytest.raises(StormvarselError, match=r"cannot take partitions away: .* ask for 2 or"):
        plan_growth(settings, 1)


def test_no_growth_while_a_worker_runs(settings: Settings, kafka: LocalKafka) -> None:
    member = KafkaConsumer(
        settings.topic("mentions"), bootstrap_servers=kafka.bootstrap, group_id=settings.app_id
    )
    try:
        while not member.assignment():
            member.poll(timeout_ms=500)
        with pytest.raises(StormvarselError, match=r"1 worker\(s\) of app id .* stop every"):
            plan_growth(settings, 4)
    finally:
        member.close()


def test_missing_pipeline_topics_are_named(kafka: LocalKafka, tmp_path: Path) -> None:
    bare = Settings(
        kafka_bootstrap_servers=kafka.bootstrap, topic_prefix="nogrow.", data_dir=tmp_path
    )
    with pytest.raises(
        StormvarselError,
        match=r"nogrow\.mentions, .*alerts do not exist; .*stormvarsel topics create",
    ):
        plan_growth(bare, 4)


def test_grow_on_the_command_line(settings: Settings, admin: KafkaAdminClient) -> None:
    env = {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STORMVARSEL_TOPIC_PREFIX": settings.topic_prefix,
        "STORMVARSEL_APP_ID": settings.app_id,
    }
    command = [sys.executable, "-m", "streams.cli", "topics", "grow", "--partitions", "4"]

    def run(*extra: str, answer: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra], env=env, input=answer, capture_output=True, text=True, timeout=90
        )

    declined = run(answer="n\n")
    assert declined.returncode == 1, declined.stderr  # not confirmed: not an interrupt (130)
    assert "Not confirmed: nothing was changed." in declined.stderr
    assert "Aborted" not in declined.stderr
    assert f"{settings.topic(MENTIONS_SCORED):<24} 2 -> 4" in declined.stdout
    assert f"{settings.app_id}-detector-state-changelog" in declined.stdout
    assert counts(admin, pipeline(settings)) == dict.fromkeys(pipeline(settings), 2)

    done = run("--yes")
    assert done.returncode == 0, done.stderr
    assert "Grew 5 topics to 4 partitions and deleted 6 state topics" in done.stdout
    assert "STORMVARSEL_TOPIC_PARTITIONS=4" in done.stdout
    assert counts(admin, pipeline(settings)) == dict.fromkeys(pipeline(settings), 4)

    again = run("--yes")
    assert again.returncode == 0 and "nothing to grow" in again.stdout

    smaller = run("--yes", "--partitions", "3")
    assert smaller.returncode != 0
    assert "cannot take partitions away" in smaller.stderr and "Traceback" not in smaller.stderr


PACIFIC = ZoneInfo("America/Los_Angeles")
STORM_DAY_MS = int(datetime(2015, 2, 22, tzinfo=PACIFIC).timestamp() * 1000)


def opened_storms(alerts: list[str], brand: str, since_ms: int) -> list[tuple[str, ...]]:
    return sorted(
        changes(record)
        for record in alerts
        if (alert := json.loads(record))["brand"] == brand
        and alert["change"] == "opened"
        and alert["kind"] == "storm"
        and alert["start_ms"] >= since_ms
    )


@pytest.mark.skipif(not AIRLINES.exists(), reason=f"shared data not found at {AIRLINES}")
def test_brands_detectors_are_carried_over_the_growth(kafka: LocalKafka, tmp_path: Path) -> None:
    """A worker on one partition learns the airlines' week up to 22 February; the topics grow
    to two partitions; a worker on the grown topics gets the storm day. Started afresh, no
    airline could page on the 22nd (24 h warm-up); carried over, the detectors raise the pure
    core's storms of that day."""
    records = scored_airline_records()
    split = next(i for i, r in enumerate(records) if r["created_at_ms"] >= STORM_DAY_MS)
    expected = expected_alerts(records)
    assert opened_storms(expected, "american", STORM_DAY_MS), "the pure core saw no storm"
    assert not opened_storms(expected_alerts(records[split:]), "american", STORM_DAY_MS)

    env = {
        "STORMVARSEL_TOPIC_PARTITIONS": "1",
        "STORMVARSEL_DETECT_LATENESS_S": "60",
        "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",
        "STORMVARSEL_DEDUP_WINDOW_S": "0",  # the pure core keeps the file's repeated tweets
    }
    first = start_worker(kafka, tmp_path, **env)
    producer = KafkaProducer(bootstrap_servers=first.bootstrap, acks="all", linger_ms=20)
    scored = first.topic(MENTIONS_SCORED)
    group = first.env["STORMVARSEL_APP_ID"]
    send_scored(producer, scored, records[:split])
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        first.wait(
            lambda: unread_records(admin, group, {scored: 1}) == {scored: {0: 0}},
            180,
            "the week before the storm to be read",
        )
    finally:
        admin.close()
    first.process.send_signal(signal.SIGTERM)  # a clean stop, as before any growth
    assert first.process.wait(timeout=60) == 0, first.log_tail()

    grown = run_topics_grow(first, 2)
    assert grown.returncode == 0, grown.stderr
    assert "Carried over the detectors of 6 brands" in grown.stdout

    second = start_worker(kafka, tmp_path, prefix=first.prefix, **env)
    try:
        send_scored(producer, scored, records[split:])
        producer.close()
        alerts = second.consume("alerts", expected=len(expected), timeout_s=180)
    finally:
        second.stop()
    got = [json.dumps(json.loads(m.value), sort_keys=True) for m in alerts]
    for brand in ("american", "delta", "us-airways"):
        assert opened_storms(got, brand, STORM_DAY_MS) == opened_storms(
            expected, brand, STORM_DAY_MS
        ), brand
    assert "detect.state_seeded" in second.log.read_text()


def test_reset_state_keeps_the_detectors_unless_told_to_discard_them(
    settings: Settings, kafka: LocalKafka
) -> None:
    """What a worker that learnt one brand leaves in its state table, then two resets."""
    changelog = f"{settings.app_id}-detector-state-changelog"
    learnt = BrandDetector("nordlys", DetectorConfig())
    saved = {"partition": 1, "state": learnt.to_state(), "max": None, "adv": None, "offset": 4}
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    try:
        producer.send(changelog, key=b'"nordlys"', value=json.dumps(saved).encode(), partition=1)
        producer.flush()
    finally:
        producer.close()
    env = {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STORMVARSEL_TOPIC_PREFIX": settings.topic_prefix,
        "STORMVARSEL_APP_ID": settings.app_id,
    }
    command = [sys.executable, "-m", "streams.cli", "topics", "reset-state", "--yes"]

    kept = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
    assert kept.returncode == 0, kept.stderr
    assert "Carried over the detectors of 1 brand (" in kept.stdout
    assert state_topics(settings) == []
    assert load_seeds(settings)["nordlys"]["state"] == learnt.to_state()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
    assert again.returncode == 0 and "nothing to delete" in again.stdout
    assert "nordlys" in load_seeds(settings)  # a second reset keeps them

    discarded = subprocess.run(
        [*command, "--discard-baselines"], env=env, capture_output=True, text=True, timeout=90
    )
    assert discarded.returncode == 0, discarded.stderr
    assert "Every brand starts afresh" in discarded.stdout
    assert load_seeds(settings) == {}
