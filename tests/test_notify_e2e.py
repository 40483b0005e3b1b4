"""A brand storm end to end on the real Kafka and a real Alertmanager: one page with the
statement drafts, nothing lost while Alertmanager is down, no second page after a worker crash,
and the resolution at the end."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.alertmanager_support import (
    Receiver,
    RunningAlertmanager,
    needs_alertmanager,
)
from tests.running_worker import RunningWorker, send_scored, start_worker
from tests.storm_scenario import BRAND, phases

pytestmark = [pytest.mark.integration, needs_alertmanager]

WORKER_ENV = {
    "STORMVARSEL_TOPIC_PARTITIONS": "1",
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",  # event time alone drives the scenario
    "STORMVARSEL_NOTIFY_RESEND_S": "2",
    "STORMVARSEL_NOTIFY_TTL_S": "300",
    "STORMVARSEL_NOTIFY_MAX_AGE_S": "0",  # the scenario is dated 2026-03; page it anyway
    "STORMVARSEL_LOG_LEVEL": "INFO",
}


def wait_for(predicate: Any, timeout_s: float, what: str, worker: RunningWorker) -> None:
    worker.wait(predicate, timeout_s, what)


def storm_alerts(receiver: Receiver, hook: str, status: str, severity: str) -> list[dict[str, Any]]:
    return [
        a
        for a in receiver.alerts(hook, status)
        if a["labels"]["brand"] == BRAND and a["labels"]["severity"] == severity
    ]


def test_storm_pages_once_survives_outages_and_resolves(
    kafka: LocalKafka, tmp_path: Path, am: RunningAlertmanager, receiver: Receiver
) -> None:
    scenario = phases()
    worker = start_worker(kafka, tmp_path, STORMVARSEL_ALERTMANAGER_URLS=am.url, **WORKER_ENV)
    producer = KafkaProducer(bootstrap_servers=worker.bootstrap, acks="all", linger_ms=20)
    topic = worker.topic("mentions.scored")
    try:
        # 0. A storm record the notifier cannot post (no status), written by something else:
        #    it is skipped, and does not stop the loop that posts every alert.
        broken = {"alert_id": "x1", "brand": BRAND, "kind": "storm", "change": "opened"}
        broken |= {"severity": "watch", "changed_at_ms": 1_772_000_000_000}
        producer.send(worker.topic("alerts"), key=BRAND.encode(), value=json.dumps(broken).encode())
        # 1. The storm opens and turns into a warning: the comms channel gets it with drafts.
        send_scored(producer, topic, scenario["calm"] + scenario["onset"])
        wait_for(
            lambda: storm_alerts(receiver, "comms-chat", "firing", "warning"),
            120,
            "a firing warning in the comms channel",
            worker,
        )
        warning = storm_alerts(receiver, "comms-chat", "firing", "warning")[0]
        assert worker.metrics()["stormvarsel_notify_skipped_total{reason=unreadable}"] == 1
        # The log names where it is: the runbook's first step reads it back from there.
        said = [e for e in worker.log_events() if e.get("event") == "notify.unreadable"]
        assert [(s["partition"], s["offset"]) for s in said] == [(said[0]["partition"], 0)]
        assert isinstance(said[0]["partition"], int)
        drafts = warning["annotations"]["statements"]
        assert "UTKAST: må godkjennes av en person før publisering" in drafts
        assert "DRAFT: a person must approve this before it is posted" in drafts
        assert "forsinket refusjon" in drafts and "delayed refund" in drafts
        assert drafts.index("(nb, warm)") < drafts.index("(en, warm)")  # most posts are nb
        assert "forsinket refusjon" in warning["annotations"]["drivers"]
        assert warning["annotations"]["runbook_url"].endswith("runbooks.md#brandstorm")
        assert f"var-brand={BRAND}" in warning["annotations"]["dashboard_url"]
        episode = warning["labels"]["episode"]
        # The Slack receiver renders the shipped templates: drafts and drivers readable there.
        wait_for(lambda: receiver.received("/slack/comms-chat"), 30, "a Slack message", worker)
        slack = receiver.received("/slack/comms-chat")[0]["attachments"][0]
        assert "BrandStorm for nordlys-energi" in slack["title"]
        assert "Holding statements (drafts, approve before posting)" in slack["text"]
        assert "Vi har sett innleggene deres om forsinket refusjon" in slack["text"]
        assert "Top posts:" in slack["text"]

        # 2. Alertmanager goes away for a minute while the storm turns critical.
        am.stop()
        outage_start = time.monotonic()
        send_scored(producer, topic, scenario["escalation"])
        wait_for(
            lambda: (
                worker.metrics().get("stormvarsel_alertmanager_posts_total{result=error}", 0) > 0
            ),
            60,
            "the notifier to notice Alertmanager is down",
            worker,
        )
        assert worker.metrics()[f"stormvarsel_alertmanager_up{{alertmanager={am.url}}}"] == 0
        time.sleep(max(0.0, 60 - (time.monotonic() - outage_start)))
        am.start()
        wait_for(
            lambda: storm_alerts(receiver, "comms-pager", "firing", "critical"),
            60,
            "the critical page once Alertmanager is back",
            worker,
        )
        page = storm_alerts(receiver, "comms-pager", "firing", "critical")[0]
        assert page["labels"]["episode"] == episode  # the same episode, escalated
        assert page["labels"]["team"] == "comms-nordic"  # deploy/brands.yaml: route on it
        assert "Hele teamet vårt jobber med dette nå" in page["annotations"]["statements"]
        # deploy/brands.yaml names the escalation contact: the first action at critical.
        assert "- Escalate to head of communications now." in page["annotations"]["description"]

        # 3. The worker dies and comes back: it re-sends, Alertmanager merges, nobody is paged.
        worker.process.kill()
        worker.process.wait()
        worker = start_worker(
            kafka,
            tmp_path,
            prefix=worker.prefix,
            STORMVARSEL_ALERTMANAGER_URLS=am.url,
            **WORKER_ENV,
        )
        wait_for(
            lambda: worker.metrics().get("stormvarsel_alertmanager_posts_total{result=ok}", 0) >= 3,
            150,  # the consumer group first waits out the killed member's session (about 60 s)
            "the restarted worker to re-send the firing alerts",
            worker,
        )
        time.sleep(6)  # three group intervals of the test configuration
        pages = [
            body for body in receiver.received("/hooks/comms-pager") if body["status"] == "firing"
        ]
        assert len(pages) == 1, f"paged {len(pages)} times for one critical storm"

        # 4. Calm returns: the storm resolves and the page is resolved.
        send_scored(producer, topic, scenario["aftermath"])
        wait_for(
            lambda: storm_alerts(receiver, "comms-pager", "resolved", "critical"),
            120,
            "the resolved notification",
            worker,
        )
        resolved = storm_alerts(receiver, "comms-pager", "resolved", "critical")[0]
        assert resolved["labels"]["episode"] == episode
        assert resolved["endsAt"] > resolved["startsAt"]
    finally:
        producer.close()
        worker.stop()
