"""Chaos: the Kafka broker is stopped for 30 s and started again while a storm is coming in.

A broker of its own (the session's shared one must stay up for the other tests), a worker on
it, and a collector that keeps sending mentions through the outage (its producer buffers and
retries, as a real collector's would). The worker is not restarted: it rides out the outage by
itself. Afterwards every mention is counted once, the storm is detected, and the outage shows
in the worker's metrics (``stormvarsel_kafka_up`` 0 during it, failed checks counted) and in its
log (``kafka.unreachable``, then ``kafka.reachable`` with how long it lasted).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from streams.log_setup import RepeatFilter
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
from tests.conftest import make_broker
from tests.running_worker import RunningWorker, start_worker
from tests.storm_scenario import BRAND, phases

pytestmark = pytest.mark.integration

WORKER_ENV = {
    **LEXICON,
    "STORMVARSEL_TOPIC_PARTITIONS": "2",
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",  # event time alone drives the scenario
    "STORMVARSEL_LOG_LEVEL": "INFO",
}
OUTAGE_S = 30
RATE = 40  # mentions per second: the storm takes about a minute to arrive


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_health(worker: RunningWorker) -> tuple[int, dict[str, Any]]:
    with urllib.request.urlopen(f"{worker.base_url}/healthz", timeout=5) as response:
        return response.status, json.loads(response.read())


@pytest.mark.timeout(480)  # on the test, not the helper above it: 300 s was the limit
def test_worker_rides_out_a_broker_restart(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "kafka")
    broker.start(timeout_s=90)
    worker = None
    scenario = phases()
    storm = scenario["onset"] + scenario["escalation"] + scenario["aftermath"]
    total = len(scenario["calm"]) + len(storm)
    try:
        worker = start_worker(broker, tmp_path, **WORKER_ENV)
        pid = worker.process.pid
        send_mentions(broker.bootstrap, worker.topic("mentions"), scenario["calm"])
        worker.wait(
            lambda: counted(worker, BRAND) >= len(scenario["calm"]), 120, "the calm day counted"
        )
        assert worker.metrics()["stormvarsel_kafka_up{}"] == 1

        sender = PacedSender(broker.bootstrap, worker.topic("mentions"), storm, RATE)
        sender.start()
        worker.wait(lambda: sender.sent >= 400, 60, "the storm under way")
        broker.stop()
        down_at = time.monotonic()
        log_lines, cpu_before = len(worker.log.read_bytes().splitlines()), cpu_seconds(pid)
        # The worker notices (its Kafka check runs every 15 s) and keeps serving /metrics.
        worker.wait(
            lambda: worker.metrics()["stormvarsel_kafka_up{}"] == 0,
            OUTAGE_S,
            "stormvarsel_kafka_up to drop to 0",
        )
        during = worker.metrics()
        # /healthz stays 200 (a restart would not help) and says why nothing moves.
        status, health = worker_health(worker)
        assert status == 200 and health["status"] == "ok" and health["kafka"] == "unreachable"
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        outage_lines = len(worker.log.read_bytes().splitlines()) - log_lines
        outage_cpu = cpu_seconds(pid) - cpu_before
        broker.start(timeout_s=90)
        outage_s = time.monotonic() - down_at
        # Waiting for the brokers is quiet: a few retry messages a second, not a busy loop.
        assert outage_lines < 10 * OUTAGE_S, f"{outage_lines} log lines in a {OUTAGE_S} s outage"
        assert outage_cpu < 0.5 * OUTAGE_S, f"{outage_cpu:.1f} CPU seconds while waiting"

        sender.finish(timeout_s=180)
        counts = settle(lambda: brand_counts([worker]), {BRAND: total}, 300)
        assert worker.process.poll() is None, f"the worker died:\n{worker.log_tail()}"
        assert worker.process.pid == pid
        problems = count_problems(counts, {BRAND: total})
        assert not problems, explain(problems, [worker])
        scored = id_counts(read_topic(broker.bootstrap, worker.topic("mentions.scored")))
        assert len(scored) == total, f"{total - len(scored)} mentions never reached scoring"

        # The storm is detected all the same.
        alerts = alerts_by_brand(read_topic(broker.bootstrap, worker.topic("alerts")))
        storm_alerts = [a for a in alerts.get(BRAND, []) if '"kind": "storm"' in a]
        assert any('"severity": "critical"' in a for a in storm_alerts), storm_alerts

        # Metrics: down while it was down, up again after, the failed checks counted.
        worker.wait(
            lambda: worker.metrics()["stormvarsel_kafka_up{}"] == 1, 60, "kafka_up back at 1"
        )
        after = worker.metrics()
        assert worker_health(worker)[1]["kafka"] == "up"
        assert during["stormvarsel_kafka_checks_failed_total{}"] >= 1
        assert after["stormvarsel_kafka_checks_failed_total{}"] >= 1
        # Logs: when it went away and how long it was gone.
        events = worker.log_events()
        names = [str(e.get("event")) for e in events]
        assert "kafka.unreachable" in names, names[-40:]
        back = [e for e in events if e.get("event") == "kafka.reachable"]
        assert back, names[-40:]
        down_s = float(str(back[-1]["down_s"]))
        # From its first failed check to its first good one: checks run every 15 s, and the
        # first after the restart may still meet a broker that is loading its groups.
        assert 0 < down_s <= outage_s + 60, (down_s, outage_s)
        print(
            f"\nbroker down {outage_s:.0f} s; the worker saw it for about {down_s:.0f} s "
            f"({after['stormvarsel_kafka_checks_failed_total{}']:.0f} failed checks, "
            f"{outage_lines} log lines, {outage_cpu:.1f} CPU s while waiting), "
            f"counted {counts.get(BRAND, 0):.0f} of {total} mentions, no restart"
        )
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()


def test_repeated_kafka_client_warnings_are_held_back() -> None:
    """No broker needed: the filter the worker's log handler uses."""
    repeats = RepeatFilter(interval_s=30)

    def record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, ("1", "refused"), None)

    first = record("aiokafka", "Unable connect to node with id %s: %s")
    assert repeats.filter(first) and not hasattr(first, "suppressed")
    held = [repeats.filter(record("aiokafka", "Unable connect to node with id %s: %s"))]
    held += [repeats.filter(record("aiokafka", "Unable connect to node with id %s: %s"))]
    assert held == [False, False]
    assert repeats.filter(record("aiokafka", "Unable to update metadata from %s"))  # another
    assert repeats.filter(record("streams.worker", "Unable connect to node with id %s: %s"))
    assert repeats.filter(record("aiokafka", "Coordinator found", logging.INFO))
    assert repeats.filter(record("aiokafka", "Coordinator found", logging.INFO))
    repeats.interval_s = 0  # the interval has passed: the next one says how many were held
    later = record("aiokafka", "Unable connect to node with id %s: %s")
    assert repeats.filter(later) and later.suppressed == 2  # type: ignore[attr-defined]
