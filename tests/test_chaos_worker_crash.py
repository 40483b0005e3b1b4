"""Chaos: a worker is SIGKILLed in the middle of a storm and started again.

The whole pipeline runs (raw mentions in, validation, scoring, detection, paging through a real
Alertmanager) while mentions keep arriving at a steady rate. After the restart every valid
mention is counted exactly once by the brand's detector (its count lives in the saved detector
state, so the restarted worker reports what the detector really holds), the storm is still
detected, and the on-call pager gets one page for it, not two.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_local import LocalKafka
from tests.alertmanager_support import Receiver, RunningAlertmanager, needs_alertmanager
from tests.chaos_support import (
    LEXICON,
    PacedSender,
    alerts_by_brand,
    brand_counts,
    count_problems,
    counted,
    explain,
    id_counts,
    read_topic,
    send_mentions,
    settle,
)
from tests.running_worker import start_worker
from tests.storm_scenario import BRAND, phases

pytestmark = [pytest.mark.integration, needs_alertmanager]

WORKER_ENV = {
    **LEXICON,
    "STORMVARSEL_TOPIC_PARTITIONS": "1",
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",  # event time alone drives the scenario
    "STORMVARSEL_NOTIFY_RESEND_S": "2",
    "STORMVARSEL_NOTIFY_TTL_S": "300",
    "STORMVARSEL_NOTIFY_MAX_AGE_S": "0",  # the scenario is dated 2026-03; page it anyway
    "STORMVARSEL_LOG_LEVEL": "INFO",
}
RATE = 150  # mentions per second during the storm: the worker is busy when it is killed


def firing_pages(receiver: Receiver, hook: str) -> list[dict[str, Any]]:
    return [body for body in receiver.received(f"/hooks/{hook}") if body["status"] == "firing"]


@pytest.mark.timeout(480)
def test_sigkill_mid_storm_counts_each_mention_once_and_pages_once(
    kafka: LocalKafka, tmp_path: Path, am: RunningAlertmanager, receiver: Receiver
) -> None:
    scenario = phases()
    storm = scenario["onset"] + scenario["escalation"] + scenario["aftermath"]
    total = len(scenario["calm"]) + len(storm)
    env = {"STORMVARSEL_ALERTMANAGER_URLS": am.url, **WORKER_ENV}
    first = start_worker(kafka, tmp_path, **env)
    second = None
    sender = PacedSender(first.bootstrap, first.topic("mentions"), storm, RATE)
    try:
        send_mentions(first.bootstrap, first.topic("mentions"), scenario["calm"])
        sender.start()
        # Kill it half way through the escalation: the storm is open, mentions in flight.
        kill_at = len(scenario["calm"]) + len(scenario["onset"]) + len(scenario["escalation"]) // 2
        first.wait(lambda: counted(first, BRAND) >= kill_at, 180, "half of the escalation")
        before_kill = counted(first, BRAND)
        first.process.kill()
        first.process.wait()
        assert before_kill < total, "the worker had counted everything before it was killed"

        second = start_worker(kafka, tmp_path, prefix=first.prefix, **env)
        sender.finish()
        # The consumer group first waits out the killed member's session (about 60 s); the
        # count appears when the restarted worker has rebuilt the detector from its tables.
        counts = settle(lambda: brand_counts([second]), {BRAND: total}, 240)
        assert second.process.poll() is None, f"the worker died:\n{second.log_tail()}"
        metrics = second.metrics()

        scored = read_topic(second.bootstrap, second.topic("mentions.scored"))
        copies = id_counts(scored)
        duplicates = sum(n - 1 for n in copies.values())
        print(
            f"\nkilled at {before_kill:.0f} counted; mentions.scored holds {len(scored)} records "
            f"for {len(copies)} mentions ({duplicates} written twice by the at-least-once "
            f"stages); the restarted worker skipped "
            f"{metrics.get('stormvarsel_detect_redelivered_total{}', 0):.0f} redelivered and "
            f"{metrics.get('stormvarsel_detect_duplicates_total{}', 0):.0f} duplicate records"
        )
        # Nothing lost on the way, and each mention counted exactly once by its detector.
        assert len(copies) == total, f"{total - len(copies)} mentions never reached scoring"
        problems = count_problems(counts, {BRAND: total})
        assert not problems, explain(problems, [second])
        # The count is the detector's own: the restarted worker scored only part of the input,
        # so the rest of its count came back from the saved detector state.
        scored_by_second = sum(
            v for k, v in metrics.items() if k.startswith("stormvarsel_mentions_scored_total")
        )
        assert scored_by_second < total

        # The storm is still detected: it escalates to critical, one episode all along.
        alerts = alerts_by_brand(read_topic(second.bootstrap, second.topic("alerts")))
        storm_alerts = [a for a in alerts.get(BRAND, []) if '"kind": "storm"' in a]
        assert any('"severity": "critical"' in a for a in storm_alerts), storm_alerts
        second.wait(lambda: bool(firing_pages(receiver, "comms-pager")), 60, "the critical page")
        time.sleep(6)  # three group intervals of the test configuration
        pages = firing_pages(receiver, "comms-pager")
        assert len(pages) == 1, f"paged {len(pages)} times for one storm"
        episodes = {a["labels"]["episode"] for p in pages for a in p["alerts"]}
        assert len(episodes) == 1, episodes
    finally:
        first.stop()
        if second is not None:
            second.stop()
