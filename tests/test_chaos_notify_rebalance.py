"""Chaos: two notifying workers and rebalances; Alertmanager ends up with the true set of pages.

The airline week goes through the whole pipeline with the notifier posting to a real
Alertmanager. A second worker joins a third of the way in, so half of the ``alerts``
partitions, and the notifier's table with them, move to it while storms open and resolve.
Afterwards, with both workers still running, Alertmanager must hold exactly the episodes whose
last record on ``alerts`` is firing: none that was resolved, none missing.

Each worker also keeps standby copies of the other's table partitions. This test was written
for a bug in which a notifier re-sent the alerts of those copies: a stale copy still said firing
after the owner had resolved the episode, so the page came back and never resolved.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_local import LocalKafka
from tests.alertmanager_support import RunningAlertmanager, needs_alertmanager
from tests.chaos_support import (
    PacedSender,
    brand_counts,
    count_problems,
    read_topic,
    settle,
    terminate,
)
from tests.running_worker import start_worker
from tests.test_chaos_rebalance import (
    AIRLINES,
    RATE,
    WORKER_ENV,
    airline_mentions,
    expected_counts,
    worker_dir,
)

pytestmark = [
    pytest.mark.integration,
    needs_alertmanager,
    pytest.mark.skipif(not AIRLINES.exists(), reason=f"shared data not found at {AIRLINES}"),
]

NOTIFY_ENV = {
    "STORMVARSEL_NOTIFY_RESEND_S": "2",
    "STORMVARSEL_NOTIFY_TTL_S": "30",
    "STORMVARSEL_NOTIFY_MAX_AGE_S": "0",  # the tweets are from 2015; page them anyway
}


def firing_episodes(records: list[Any]) -> set[str]:
    """Storm episodes whose latest record on ``alerts`` says firing."""
    latest: dict[str, str] = {}
    for record in records:
        alert = json.loads(record.value)
        if alert["kind"] == "storm":
            latest[str(alert["alert_id"])] = str(alert["status"])
    return {alert_id for alert_id, status in latest.items() if status == "firing"}


def active_episodes(am: RunningAlertmanager) -> set[str]:
    """Episodes with an alert Alertmanager holds as active (not yet ended)."""
    now = datetime.now().astimezone()
    return {
        alert["labels"]["episode"]
        for alert in am.alerts()
        if alert["status"]["state"] == "active"
        and datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00")) > now
    }


@pytest.mark.timeout(480)
def test_notifiers_post_only_their_own_alerts_across_rebalances(
    kafka: LocalKafka, tmp_path: Path, am: RunningAlertmanager
) -> None:
    records = airline_mentions()
    expected = expected_counts(records)
    env = {**WORKER_ENV, **NOTIFY_ENV, "STORMVARSEL_ALERTMANAGER_URLS": am.url}
    first = start_worker(kafka, worker_dir(tmp_path, "first"), **env)
    workers = [first]
    sender = PacedSender(first.bootstrap, first.topic("mentions"), records, RATE, "brand")
    try:
        sender.start()
        first.wait(lambda: sender.sent >= len(records) // 3, 90, "a third of the mentions sent")
        second = start_worker(kafka, worker_dir(tmp_path, "second"), prefix=first.prefix, **env)
        workers.append(second)
        second.wait(
            lambda: second.metrics().get("stormvarsel_mentions_total{}", 0) > 0,
            90,
            "the second worker taking its share",
        )
        sender.finish()
        problems = count_problems(settle(lambda: brand_counts(workers), expected, 240), expected)
        assert not problems, problems
        firing = firing_episodes(read_topic(first.bootstrap, first.topic("alerts")))
        posted = first.metrics().get("stormvarsel_alertmanager_posts_total{result=ok}", 0)
        assert posted > 0, "the notifier posted nothing"

        # Several re-send intervals: a notifier holding a stale copy would have re-sent it.
        deadline = time.monotonic() + 30
        active = active_episodes(am)
        while time.monotonic() < deadline and active != firing:
            time.sleep(2)
            active = active_episodes(am)
        time.sleep(8)
        active = active_episodes(am)
    finally:
        sender.join(120)
        for worker in workers:
            terminate(worker)

    print(f"\n{len(firing)} episodes firing at the end; Alertmanager holds {len(active)} active")
    assert active == firing, (
        f"resolved but paged: {sorted(active - firing)}; firing but not paged: "
        f"{sorted(firing - active)}"
    )
