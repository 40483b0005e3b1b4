"""Chaos: two notifying workers and a rebalance; Alertmanager ends up with the true set of pages.

Storms for eight brands (the storm scenario, one copy per brand, keyed by brand on four
partitions) build up to critical with one worker; a second worker then joins, so about half of
the ``alerts`` partitions, and the notifier's table with them, move to it; then calm returns and
every storm resolves. With both workers still running, Alertmanager must hold no active storm:
each page was resolved, and nobody brought one back.

Each worker also keeps standby copies of the other's table partitions. This test was written for
a bug in which a notifier re-sent the alerts it held when the rebalance began, including those of
partitions it had just given away: long after their new owner had resolved those episodes, the
old owner kept re-sending them as firing, so the pages came back and never resolved.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.alertmanager_support import RunningAlertmanager, needs_alertmanager
from tests.chaos_support import read_topic, terminate
from tests.running_worker import RunningWorker, send_scored, start_worker
from tests.storm_scenario import BRAND, phases

pytestmark = [pytest.mark.integration, needs_alertmanager]

BRANDS = [f"{BRAND}-{n}" for n in range(8)]
WORKER_ENV = {
    "STORMVARSEL_TOPIC_PARTITIONS": "4",
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",  # event time alone drives the scenario
    "STORMVARSEL_NOTIFY_RESEND_S": "2",
    "STORMVARSEL_NOTIFY_TTL_S": "10",  # resolved alerts are re-sent for 10 s
    "STORMVARSEL_NOTIFY_MAX_AGE_S": "0",  # the scenario is dated 2026-03; page it anyway
    "STORMVARSEL_LOG_LEVEL": "INFO",
}


def per_brand(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scenario once for every brand, interleaved in time order."""
    out = [
        {**record, "brand": brand, "id": f"{brand}-{record['id']}"}
        for record in records
        for brand in BRANDS
    ]
    return sorted(out, key=lambda r: (r["created_at_ms"], r["id"]))


def latest_status(records: list[Any]) -> dict[str, str]:
    """Each storm episode's latest status on ``alerts``."""
    latest: dict[str, str] = {}
    for record in records:
        alert = json.loads(record.value)
        if alert["kind"] == "storm":
            latest[str(alert["alert_id"])] = str(alert["status"])
    return latest


def active_episodes(am: RunningAlertmanager) -> set[str]:
    """Episodes with an alert Alertmanager holds as active (not yet ended)."""
    now = datetime.now().astimezone()
    return {
        alert["labels"]["episode"]
        for alert in am.alerts()
        if alert["status"]["state"] == "active"
        and datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00")) > now
    }


def resolutions_queued(worker: RunningWorker) -> set[str]:
    """Episodes whose resolution this worker's notifier took in (from its JSON log): a count
    that, unlike the notifier's gauge, does not drop when the resolved alert's TTL runs out."""
    return {
        str(entry["alert_id"])
        for entry in worker.log_events()
        if entry.get("event") == "notify.queued" and entry.get("change") == "resolved"
    }


def alerts_status(worker: RunningWorker) -> dict[str, str]:
    return latest_status(read_topic(worker.bootstrap, worker.topic("alerts"), quiet_s=1.0))


@pytest.mark.timeout(480)
def test_notifiers_keep_no_page_of_a_partition_they_gave_away(
    kafka: LocalKafka, tmp_path: Path, am: RunningAlertmanager
) -> None:
    scenario = phases()
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    first = start_worker(
        kafka, tmp_path / "first", **WORKER_ENV, STORMVARSEL_ALERTMANAGER_URLS=am.url
    )
    workers = [first]
    producer = KafkaProducer(bootstrap_servers=first.bootstrap, acks="all", linger_ms=20)
    topic = first.topic("mentions.scored")
    try:
        # 1. Every brand's storm turns critical with one worker; all are paged.
        send_scored(producer, topic, per_brand(scenario["calm"] + scenario["onset"]))
        send_scored(producer, topic, per_brand(scenario["escalation"]))
        first.wait(
            lambda: len(active_episodes(am)) == len(BRANDS),
            180,
            f"{len(BRANDS)} storms paged",
        )
        episodes = active_episodes(am)

        # 2. A second worker joins: about half of the partitions move to it.
        second = start_worker(
            kafka,
            tmp_path / "second",
            prefix=first.prefix,
            **WORKER_ENV,
            STORMVARSEL_ALERTMANAGER_URLS=am.url,
        )
        workers.append(second)
        second.wait(
            lambda: second.metrics().get("stormvarsel_notify_alerts{status=firing}", 0) > 0,
            120,
            "the second worker to take over some of the firing storms",
        )

        # 3. Calm returns: every storm resolves, half of them on the new owner.
        send_scored(producer, topic, per_brand(scenario["aftermath"]))
        first.wait(
            lambda: (
                (status := alerts_status(first)).keys() >= episodes
                and all(status[e] == "resolved" for e in episodes)
            ),
            180,
            "every storm resolved on the alerts topic",
        )
        # Past the TTL, the owner stops re-sending a resolved alert; a notifier holding a
        # stale firing copy goes on re-sending it, every 2 s. Watch for it for a while.
        time.sleep(12)
        still_active: set[str] = set()
        for _ in range(6):
            still_active |= active_episodes(am)
            time.sleep(2)
        # Read last: the notifier takes the resolutions in a moment after they reach the topic.
        moved = len(resolutions_queued(second) & episodes)
        assert all(w.process.poll() is None for w in workers), "a worker died"
    finally:
        producer.close()
        for worker in workers:
            terminate(worker)

    print(f"\n{len(episodes)} storms paged; {moved} resolved by the worker that joined")
    assert moved > 0, "no storm moved to the second worker: the test proves nothing"
    assert not still_active, (
        f"resolved on the alerts topic but still paging: {sorted(still_active)}"
    )
