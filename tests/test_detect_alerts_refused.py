"""An alert record Kafka does not take stops the worker before anything more is saved or
committed; the restarted worker counts the record again and sends the alert (bug 27).

Before: the detection stage's agent raised, Faust restarted it and went on with the next
record, the detector state that had counted the storm's opening was saved, and the ``opened``
alert was never sent: the brand's team was not paged for a storm the detector had open.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from streams.kafka_local import LocalKafka
from tests.running_worker import committed_offset, send_scored, start_worker
from tests.storm_scenario import BRAND, phases

pytestmark = pytest.mark.integration

ENV = {
    "STORMVARSEL_TOPIC_PARTITIONS": "1",
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",  # event time alone drives the scenario
    "STORMVARSEL_LOG_LEVEL": "INFO",
}
TINY_LIMIT = 1000  # max.message.bytes of alerts: below any alert record (about 3 kB and more)
EXIT_WITHIN_S = 180


@pytest.fixture
def admin(kafka: LocalKafka) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    yield client
    client.close()


def test_an_alert_kafka_refuses_stops_the_worker_and_the_restarted_one_sends_it(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    alerts = f"{prefix}alerts"
    admin.create_topics(
        [NewTopic(alerts, 1, 1, topic_configs={"max.message.bytes": str(TINY_LIMIT)})]
    )
    scenario = phases()
    records = scenario["calm"] + scenario["onset"]  # the storm opens in the onset
    (tmp_path / "first").mkdir()
    first = start_worker(kafka, tmp_path / "first", prefix=prefix, **ENV)
    scored = first.topic("mentions.scored")
    try:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
        try:
            send_scored(producer, scored, records)
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
    assert "MessageSizeTooLargeError" in lost[0] and f'"topic": "{alerts}"' in lost[0]
    assert "alert records of what they changed were not written" in lost[0]
    assert "exception was never retrieved" not in output  # the refusal was read, once
    group = first.env["STORMVARSEL_APP_ID"]
    assert committed_offset(kafka.bootstrap, group, scored) < len(
        records
    )  # the record is read again

    # The topic takes alerts again; the same deployment, restarted, pages for the storm.
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, alerts, {"max.message.bytes": "1048588"})]
    )
    (tmp_path / "second").mkdir()
    second = start_worker(kafka, tmp_path / "second", prefix=prefix, **ENV)
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
