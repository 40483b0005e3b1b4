"""deploy/alertmanager: the configuration is valid, routes by severity, and inhibits a brand's
warning while the same brand is critical (proven on a real Alertmanager)."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.alertmanager import labels
from tests.alertmanager_support import (
    DEPLOY_CONFIG,
    Receiver,
    RunningAlertmanager,
    needs_alertmanager,
)

AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed")


def amtool(*args: str) -> str:
    assert AMTOOL is not None
    done = subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


@needs_amtool
def test_amtool_check_config_passes() -> None:
    out = amtool("check-config", str(DEPLOY_CONFIG))
    assert "SUCCESS" in out and "2 inhibit rules" in out


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            ["alertname=BrandStorm", "brand=nordlys-energi", "severity=critical"],
            "comms-pager,comms-chat",
        ),
        (["alertname=BrandStorm", "brand=nordlys-energi", "severity=warning"], "comms-chat"),
        (["alertname=BrandStorm", "brand=fjellbrod", "severity=watch"], "comms-watch"),
        (["alertname=StormvarselWorkerDown", "severity=critical"], "ops-pager"),
        (["alertname=StormvarselBrandSilent", "brand=fjellbrod", "severity=warning"], "ops-chat"),
        (["alertname=SomethingElse", "severity=info"], "comms-chat"),
        # The dead man's switch goes to its heartbeat service only, never to ops-chat.
        (["alertname=StormvarselWatchdog", "severity=none", "team=ops"], "deadman"),
    ],
)
def test_routes_by_severity(labels: list[str], receivers: str) -> None:
    out = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={DEPLOY_CONFIG}",
        "--verify.receivers",
        receivers,
        *labels,
    )
    assert out == receivers


@needs_amtool
def test_a_route_on_the_team_label_pages_that_team(tmp_path: Path) -> None:
    """The commented example in the shipped file, put in place: a storm of a brand whose
    oncall.team is comms-food pages that team's pager, other teams' storms do not."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    config["receivers"].append({"name": "comms-food-pager"})
    team_route = {
        "receiver": "comms-food-pager",
        "matchers": ['alertname="BrandStorm"', 'team="comms-food"', 'severity="critical"'],
        "continue": True,
    }
    config["route"]["routes"].insert(2, team_route)  # after the two pipeline routes
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    for team, receivers in [
        ("comms-food", "comms-food-pager,comms-pager,comms-chat"),
        ("comms-nordic", "comms-pager,comms-chat"),
    ]:
        alert = {"alert_id": "fjellbrod-1", "brand": "fjellbrod", "oncall": {"team": team}}
        matched = [f"{k}={v}" for k, v in labels(alert, "critical").items()]
        out = amtool("config", "routes", "test", f"--config.file={path}", *matched)
        assert out == receivers


def test_storm_alerts_are_grouped_by_name_and_brand() -> None:
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "brand"]
    rules = config["inhibit_rules"]
    critical = next(r for r in rules if 'severity="critical"' in r["source_matchers"])
    assert critical["equal"] == ["brand"]
    assert 'severity=~"warning|watch"' in critical["target_matchers"]


def storm(brand: str, severity: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {
            "alertname": "BrandStorm",
            "brand": brand,
            "severity": severity,
            "episode": f"{brand}-1",
        },
        "annotations": {"summary": f"{brand} {severity}", "statements": "[DRAFT] text"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


@needs_alertmanager
def test_critical_inhibits_the_same_brands_warning_only(
    am: RunningAlertmanager, receiver: Receiver
) -> None:
    am.post(
        [
            storm("nordlys-energi", "critical"),
            storm("nordlys-energi", "warning"),
            storm("fjellbrod", "warning"),
        ]
    )
    deadline = time.monotonic() + 20
    states: dict[tuple[str, str], dict[str, Any]] = {}
    while time.monotonic() < deadline:
        states = {(a["labels"]["brand"], a["labels"]["severity"]): a["status"] for a in am.alerts()}
        if len(states) == 3 and states[("nordlys-energi", "warning")]["inhibitedBy"]:
            break
        time.sleep(0.3)
    assert states[("nordlys-energi", "warning")]["state"] == "suppressed"
    assert states[("nordlys-energi", "warning")]["inhibitedBy"]
    assert states[("nordlys-energi", "critical")]["state"] == "active"
    assert states[("fjellbrod", "warning")]["state"] == "active"  # another brand: not inhibited

    # And what reaches the receivers: the page for the critical storm, both brands in the chat,
    # never the inhibited warning.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        receiver.alerts("comms-pager") and len(receiver.received("/hooks/comms-chat")) >= 2
    ):
        time.sleep(0.3)
    paged = {
        (a["labels"]["brand"], a["labels"]["severity"]) for a in receiver.alerts("comms-pager")
    }
    chat = {(a["labels"]["brand"], a["labels"]["severity"]) for a in receiver.alerts("comms-chat")}
    assert paged == {("nordlys-energi", "critical")}
    assert chat == {("nordlys-energi", "critical"), ("fjellbrod", "warning")}
