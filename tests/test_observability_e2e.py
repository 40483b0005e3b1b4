"""The dashboards and alert rules, proven against real data: the real Kafka, a worker scoring
with the default model, a real Alertmanager, and a real Prometheus scraping the worker.

A storm is fed through the whole pipeline (raw mentions, not pre-scored), then every PromQL
expression of both Grafana dashboards and every alert rule is run against that Prometheus: none
fails, no panel is empty, the storm shows in the brand overview, and the healthy pipeline raises
none of its own alerts. ``promtool check metrics`` accepts the worker's exposition.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaProducer

from streams.kafka_local import LocalKafka
from tests.alertmanager_support import Receiver, RunningAlertmanager, needs_alertmanager
from tests.prometheus_support import (
    RULES,
    QueryError,
    RunningPrometheus,
    dashboard_queries,
    metric_names,
    needs_prometheus,
    runnable,
    start_prometheus,
)
from tests.running_worker import start_worker
from tests.storm_scenario import BRAND, phases

pytestmark = [pytest.mark.integration, needs_prometheus, needs_alertmanager]

WORKER_ENV = {
    "STORMVARSEL_TOPIC_PARTITIONS": "1",
    "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3600",  # event time alone drives the scenario
    "STORMVARSEL_NOTIFY_RESEND_S": "2",
    "STORMVARSEL_NOTIFY_MAX_AGE_S": "0",  # the scenario is dated 2026-03; page it anyway
}
# Grafana's $__rate_interval for a 1 s scrape is 4 scrapes at least; a little more is steadier.
RATE_INTERVAL = "15s"
BROKEN = [b'{"id": "broken-1", "text": "unterminated', b'{"id": "broken-2"}', b"\xff\xfe"]


def raw_mention(record: dict[str, Any]) -> dict[str, Any]:
    """A scored scenario record as a collector would send it: no sentiment, ISO time."""
    out = {k: v for k, v in record.items() if k not in ("sentiment", "created_at_ms")}
    out["created_at"] = datetime.fromtimestamp(record["created_at_ms"] / 1000, UTC).isoformat()
    out["author"] = {k: v for k, v in record["author"].items() if v is not None}
    return out


def has_values(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(v)) for series in result for _, v in series["values"])


def rule_names() -> set[str]:
    return {
        rule["alert"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }


@pytest.mark.timeout(720)
def test_dashboards_and_rules_on_real_prometheus(
    kafka: LocalKafka, tmp_path: Path, am: RunningAlertmanager, receiver: Receiver
) -> None:
    scenario = phases()
    worker = start_worker(kafka, tmp_path, STORMVARSEL_ALERTMANAGER_URLS=am.url, **WORKER_ENV)
    prometheus: RunningPrometheus | None = None
    producer = KafkaProducer(bootstrap_servers=worker.bootstrap, acks="all", linger_ms=20)
    try:
        prometheus = start_prometheus(tmp_path, worker.base_url.removeprefix("http://"))
        started = time.time()
        topic = worker.topic("mentions")
        for value in BROKEN:
            producer.send(topic, value=value)
        for record in scenario["calm"] + scenario["onset"] + scenario["escalation"]:
            producer.send(
                topic,
                key=record["id"].encode(),
                value=json.dumps(raw_mention(record)).encode(),
                timestamp_ms=record["created_at_ms"],
            )
        producer.flush()

        storm = f'max(stormvarsel_brand_storm_level{{brand="{BRAND}"}}) >= 2'
        try:
            prometheus.wait(storm, 420, "the storm at warning or above")
        except pytest.fail.Exception:
            progress = {
                k: v
                for k, v in worker.metrics().items()
                if k.startswith(("stormvarsel_mentions", "stormvarsel_brand", "stormvarsel_ep"))
                and v
            }
            pytest.fail(f"no storm in Prometheus; the worker's counters: {progress}")
        prometheus.wait("stormvarsel_consumer_lag_records", 60, "a consumer lag sample")
        prometheus.wait("stormvarsel_alertmanager_posts_total{result='ok'} > 0", 60, "a post")
        time.sleep(6)  # a few more scrapes, so every rate has two samples after the storm
        end = time.time()

        # Every dashboard query runs and returns data.
        queries = dashboard_queries()
        assert len(queries) >= 25, f"expected both dashboards' queries, got {len(queries)}"
        problems = []
        for q in queries:
            expr = runnable(q.expr, rate_interval=RATE_INTERVAL, brand=BRAND)
            try:
                result = prometheus.query_range(expr, started, end)
            except QueryError as exc:
                problems.append(f"{q.dashboard} / {q.where}: query failed: {exc}")
                continue
            if not has_values(result):
                problems.append(f"{q.dashboard} / {q.where}: no data for {expr}")
        assert not problems, "\n".join(problems)

        # The storm is visible in the brand overview's terms.
        def seen(expr: str) -> bool:
            return has_values(prometheus.query_range(expr, started, end))

        b = f'brand="{BRAND}"'
        expected = f"stormvarsel_brand_bucket_expected_mentions{{{b}}}"
        assert seen(
            f"stormvarsel_brand_bucket_mentions{{{b}}} > {expected} + 3 * sqrt({expected})"
        ), "no bucket above the baseline band"
        assert seen(
            f"stormvarsel_brand_negative_ratio{{{b}}}"
            f" > stormvarsel_brand_negative_baseline_ratio{{{b}}} + 0.3"
        ), "negative share never far above its baseline"
        assert seen(
            f'increase(stormvarsel_episode_events_total{{{b}, kind="storm", type="opened"}}'
            f"[{RATE_INTERVAL}]) > 0"
        ), "no storm opened"
        assert seen("stormvarsel_brand_storm_level == 0"), "never calm before the storm"
        assert seen("stormvarsel_alertmanager_up == 1")

        # Every rule is loaded and evaluates without error on this data; every metric it reads
        # exists; and the healthy pipeline raises none of its own alerts.
        rules = prometheus.rules()
        assert {r["name"] for r in rules} == rule_names()
        for rule in rules:
            assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
            prometheus.query(rule["query"])  # raises on a bad expression
            for name in metric_names(rule["query"]):
                assert prometheus.query(f'count({{__name__="{name}"}})'), (
                    f"{rule['name']} reads {name}, which has no data"
                )
        # Not even pending. The exceptions: the lag rule (scoring a burst builds a backlog that
        # grows for a while, and its "for: 10m" is what keeps such a burst from paging), and
        # the dead man's switch, which must fire all the time.
        pending = prometheus.query(
            'ALERTS{alertname=~"Stormvarsel.*", '
            'alertname!~"StormvarselConsumerLagGrowing|StormvarselWatchdog"}'
        )
        assert not pending, f"pipeline alerts on a healthy pipeline: {pending}"
        assert prometheus.query('ALERTS{alertname="StormvarselWatchdog", alertstate="firing"}')

        # The exposition passes promtool's lint.
        with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5) as response:
            exposition = response.read()
        lint = subprocess.run(
            ["promtool", "check", "metrics"], input=exposition, capture_output=True, timeout=30
        )
        assert lint.returncode == 0 and not lint.stdout.strip(), (
            lint.stdout.decode() + lint.stderr.decode()
        )
    finally:
        producer.close()
        if prometheus is not None:
            prometheus.stop()
        worker.stop()
