"""An alert record Kafka does not take stops the worker before anything more is saved or
committed; the restarted worker counts the record again and sends the alert (bug 27).

Before: the detection stage's agent raised, Faust restarted it and went on with the next
record, the detector state that had counted the storm's opening was saved, and the ``opened``
alert was never sent: the brand's team was not paged for a storm the detector had open.

The wall-clock timer, which closes a quiet brand's buckets, stops the worker the same way
(before, it did so by accident: an exception in a Faust timer crashes the app).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from detectors.episodes import EpisodeEvent
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.kafka_local import LocalKafka
from tests.running_worker import (
    RunningWorker,
    committed_offset,
    send_scored,
    start_worker,
    topics_made_first,
)
from tests.storm_scenario import BRAND, phases

pytestmark = pytest.mark.integration

ENV = {
    "STORMVARSEL_TOPIC_PARTITIONS": "1",
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",  # event time alone drives the scenario
    "STORMVARSEL_LOG_LEVEL": "INFO",
}
#: The timer's case: no allowed lateness, so a quiet brand's last bucket closes a few seconds
#: of wall time after its last mention.
TIMER_ENV = {
    **ENV,
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "2",
    "STORMVARSEL_DETECT_LATENESS_S": "0",
}
TINY_LIMIT = 1000  # max.message.bytes of alerts: below any alert record (about 3 kB and more)
EXIT_WITHIN_S = 180


def until_the_storm_opens_on_a_bucket_close() -> list[dict[str, Any]]:
    """The scenario's records up to (not including) the mention whose arrival closes the bucket
    that opens the storm: counted with no allowed lateness, they open nothing until that bucket
    is closed, which only the wall-clock timer does once they stop."""
    scenario = phases()
    records = scenario["calm"] + scenario["onset"]
    replayer = Replayer(None, 0)
    for n, record in enumerate(records):
        outputs = replayer.feed(MentionEvent.from_record(record))
        if any(isinstance(o, EpisodeEvent) for o in outputs):
            return records[:n]
    raise AssertionError("the scenario's onset opens no storm")


def refused_run(
    kafka: LocalKafka,
    admin: KafkaAdminClient,
    tmp_path: Path,
    records: list[dict[str, Any]],
    env: dict[str, str],
) -> tuple[RunningWorker, str]:
    """A worker whose ``alerts`` topic takes no alert record, fed ``records``: it must stop on
    its own, and send no storm alert. Returns it (stopped) and its log line of the stop."""
    prefix = topics_made_first(admin, {"alerts": {"max.message.bytes": str(TINY_LIMIT)}})
    (tmp_path / "first").mkdir()
    first = start_worker(kafka, tmp_path / "first", prefix=prefix, **env)
    try:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
        try:
            send_scored(producer, first.topic("mentions.scored"), records)
        finally:
            producer.close()
        try:
            code = first.process.wait(timeout=EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the worker whose alert Kafka refused still ran after {EXIT_WITHIN_S} s:\n"
                + first.log_tail()
            )
    finally:
        first.stop()
    output = first.log.read_text(errors="replace")
    assert code != 0, output[-3000:]
    lost = [line for line in output.splitlines() if '"forward.lost"' in line]
    assert lost, output[-3000:]
    assert "MessageSizeTooLargeError" in lost[0]
    assert f'"topic": "{first.topic("alerts")}"' in lost[0]
    assert "alert records of what they changed were not written" in lost[0]
    assert "exception was never retrieved" not in output  # the refusal was read, once
    assert '"episode.opened"' not in output  # logged (and counted) once Kafka has it
    return first, lost[0]


def restarted_run_pages(
    kafka: LocalKafka,
    admin: KafkaAdminClient,
    tmp_path: Path,
    first: RunningWorker,
    records: list[dict[str, Any]],
    env: dict[str, str],
) -> None:
    """The topic takes alerts again; the same deployment, restarted, pages for the storm and
    commits every record."""
    alerts = first.topic("alerts")
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, alerts, {"max.message.bytes": "1048588"})]
    )
    group = first.env["STORMVARSEL_APP_ID"]
    scored = first.topic("mentions.scored")
    (tmp_path / "second").mkdir()
    second = start_worker(kafka, tmp_path / "second", prefix=first.prefix, **env)
    try:
        sent = [json.loads(r.value) for r in second.consume("alerts", 1, timeout_s=180)]
        storms = [a for a in sent if a["brand"] == BRAND and a["kind"] == "storm"]
        assert storms and storms[0]["change"] == "opened", [(a["kind"], a["change"]) for a in sent]
        second.wait(
            lambda: committed_offset(kafka.bootstrap, group, scored) >= len(records),
            60,
            "every scored mention committed",
        )
        assert '"forward.lost"' not in second.log.read_text(errors="replace")
    finally:
        second.stop()


def test_an_alert_kafka_refuses_stops_the_worker_and_the_restarted_one_sends_it(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    scenario = phases()
    records = scenario["calm"] + scenario["onset"]  # the storm opens in the onset
    first, lost = refused_run(kafka, admin, tmp_path, records, ENV)
    assert '"source_offset": null' not in lost  # the agent's, on the record that opened it
    group = first.env["STORMVARSEL_APP_ID"]
    scored = first.topic("mentions.scored")
    assert committed_offset(kafka.bootstrap, group, scored) < len(
        records
    )  # the record is read again
    restarted_run_pages(kafka, admin, tmp_path, first, records, ENV)


def test_an_alert_of_the_timer_kafka_refuses_stops_the_worker_and_the_restarted_one_sends_it(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    records = until_the_storm_opens_on_a_bucket_close()
    first, lost = refused_run(kafka, admin, tmp_path, records, TIMER_ENV)
    assert '"source_offset": null' in lost, lost  # the timer's, on no record
    restarted_run_pages(kafka, admin, tmp_path, first, records, TIMER_ENV)
