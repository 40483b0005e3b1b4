"""Every health gauge the worker exports is watched: an alert rule pages on it, the Pipeline
health dashboard shows it, and the runbook of that alert exists.

A ``stormvarsel_*_up`` gauge says that something the pipeline cannot work without (Kafka, an
Alertmanager) is unreachable while the worker itself keeps answering scrapes, so
StormvarselWorkerDown stays quiet. Exported but watched by no rule, such a gauge is a blind spot:
the outage shows only to someone who already looks at /metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
PIPELINE_DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pipeline-health.json"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
OBSERVABILITY = ROOT / "docs" / "observability.md"


def health_gauges() -> list[str]:
    from prometheus_client import REGISTRY

    import streams.metrics  # noqa: F401  (registers the worker's metrics)

    return sorted(
        family.name
        for family in REGISTRY.collect()
        if family.type == "gauge"
        and family.name.startswith("stormvarsel_")
        and family.name.endswith("_up")
    )


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def dashboard_exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [expr for value in node.values() for expr in dashboard_exprs(value)]
    if isinstance(node, list):
        return [expr for item in node for expr in dashboard_exprs(item)]
    return []


def reads(expr: str, metric: str) -> bool:
    return re.search(rf"(?<![\w:]){re.escape(metric)}(?![\w:])", expr) is not None


def test_health_gauges_are_found() -> None:
    gauges = health_gauges()
    assert "stormvarsel_alertmanager_up" in gauges and "stormvarsel_kafka_up" in gauges


@pytest.mark.parametrize("gauge", health_gauges())
def test_health_gauge_has_a_critical_alert(gauge: str) -> None:
    watching = [rule for rule in alert_rules() if reads(str(rule["expr"]), gauge)]
    assert watching, f"no alert rule in deploy/prometheus/rules/ reads {gauge}"
    severities = {rule["labels"]["severity"] for rule in watching}
    assert "critical" in severities, f"{gauge}: only {severities} alerts, nothing pages"


@pytest.mark.parametrize("gauge", health_gauges())
def test_health_gauge_is_on_the_pipeline_dashboard(gauge: str) -> None:
    board = json.loads(PIPELINE_DASHBOARD.read_text(encoding="utf-8"))
    assert any(reads(expr, gauge) for expr in dashboard_exprs(board["panels"])), (
        f"the Pipeline health dashboard has no panel on {gauge}"
    )


def test_kafka_unreachable_alert_is_documented() -> None:
    runbooks = RUNBOOKS.read_text(encoding="utf-8")
    assert "\n## StormvarselKafkaUnreachable\n" in runbooks
    assert "`StormvarselKafkaUnreachable`" in OBSERVABILITY.read_text(encoding="utf-8")
