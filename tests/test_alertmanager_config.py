"""deploy/alertmanager: the configuration is valid, routes by severity, and inhibits a brand's
warning while the same brand is critical (proven on a real Alertmanager)."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.alerting import build_alert, default_voice
from detectors.alerting.voice import DEFAULT_TEAM
from streams import alertmanager as alertmanager_module
from streams.alertmanager import labels
from streams.local_services import alertmanager_tool
from tests.alertmanager_support import (
    DEPLOY_CONFIG,
    Receiver,
    RunningAlertmanager,
    StartAlertmanager,
    needs_alertmanager,
    receiver_config,
)
from tests.conftest import REPO

#: The compose file's amtool when ``deploy/local.sh`` built it (production's version), else
#: Debian's (``tests/test_compose.py`` checks the configuration on both).
AMTOOL = alertmanager_tool("amtool")
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


def commented_block(text: str, first: str) -> str:
    """The commented-out YAML block of ``text`` that starts with the line ``# <first>``,
    uncommented at its own indentation (the example an operator is told to put in place)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"# {first}")
    column = lines[start].index("#")
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#") or line.index("#") != column:
            break
        block.append(line[column + 2 :])
    return "\n".join(block)


def with_team_pager(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (the shipped file) with its commented per-team pager example put in place,
    as the file and docs/alerts.md say: the sub-route under the critical storm route, and
    its receiver."""
    text = DEPLOY_CONFIG.read_text()
    critical = next(r for r in config["route"]["routes"] if r["receiver"] == "comms-pager")
    critical.update(yaml.safe_load(commented_block(text, "routes:")))
    config["receivers"] += yaml.safe_load(commented_block(text, "- name: comms-food-pager"))
    return config


def team_storm_labels(team: str | None) -> list[str]:
    """A critical storm's labels as the notifier sends them (``None``: a record without a
    team; a brand missing from the brands file has team comms-oncall)."""
    alert = {"alert_id": "fjellbrod-1", "brand": "fjellbrod", "oncall": {"team": team}}
    return [f"{k}={v}" for k, v in labels(alert, "critical").items()]


@needs_amtool
def test_a_team_with_its_own_pager_gets_it_instead_of_the_shared_one(tmp_path: Path) -> None:
    """The example used to say ``continue: true`` above the shared comms-pager route: every
    critical storm of a team with its own pager woke the shared pager as well."""
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(with_team_pager(yaml.safe_load(DEPLOY_CONFIG.read_text()))))
    assert "SUCCESS" in amtool("check-config", str(path))
    for team, receivers in [
        ("comms-food", "comms-food-pager,comms-chat"),
        ("comms-nordic", "comms-pager,comms-chat"),
        ("comms-oncall", "comms-pager,comms-chat"),  # a brand not in the brands file
        (None, "comms-pager,comms-chat"),
    ]:
        out = amtool("config", "routes", "test", f"--config.file={path}", *team_storm_labels(team))
        assert out == receivers, team
    for severity, receivers in [("warning", "comms-chat"), ("watch", "comms-watch")]:
        matched = [*team_storm_labels("comms-food")[:2], f"severity={severity}", "team=comms-food"]
        out = amtool("config", "routes", "test", f"--config.file={path}", *matched)
        assert out == receivers, severity


@pytest.mark.integration
@needs_alertmanager
def test_the_team_pager_route_on_a_real_alertmanager(
    start_alertmanager: StartAlertmanager, receiver: Receiver
) -> None:
    """What reaches the receivers with the example in place: the team's pager for its brand,
    the shared pager for the others, the comms channel for both."""
    config = with_team_pager(receiver_config(receiver))
    for entry in config["receivers"]:
        for hook in entry.get("webhook_configs", []):
            hook["url"] = f"{receiver.url}/hooks/{entry['name']}"
    sent = []
    for brand, team in [("fjellbrod", "comms-food"), ("nordlys-energi", "comms-nordic")]:
        alert = storm(brand, "critical")
        alert["labels"]["team"] = team
        sent.append(alert)

    def brands(name: str) -> set[str]:
        return {a["labels"]["brand"] for a in receiver.alerts(name)}

    start_alertmanager(config).post(sent)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        brands("comms-food-pager") and brands("comms-pager") and len(brands("comms-chat")) == 2
    ):
        time.sleep(0.3)
    time.sleep(3)  # past one more group interval (2 s): a late second page would be here
    assert brands("comms-food-pager") == {"fjellbrod"}
    assert brands("comms-pager") == {"nordlys-energi"}
    assert brands("comms-chat") == {"fjellbrod", "nordlys-energi"}


@needs_amtool
def test_a_brand_missing_from_the_brands_file_pages_the_shared_team_as_documented() -> None:
    """Its storms carry ``team="comms-oncall"`` (the default voice's team); docs/alerts.md and
    the label docstrings said it had no team label, so a route written by the docs missed it."""
    event = {
        "type": "opened",
        "at": "2026-12-06T01:50:00.000Z",
        "at_ms": 1_796_521_800_000,
        "episode": {"episode_id": "ukjent-1", "kind": "storm", "severity": "critical"},
    }
    alert = build_alert(event, default_voice("ukjent"))
    assert labels(alert, "critical")["team"] == DEFAULT_TEAM == "comms-oncall"
    matched = [f"{k}={v}" for k, v in labels(alert, "critical").items()]
    out = amtool("config", "routes", "test", f"--config.file={DEPLOY_CONFIG}", *matched)
    assert out == "comms-pager,comms-chat"
    docs = " ".join((REPO / "docs" / "alerts.md").read_text().split())
    assert re.search(rf"`{DEFAULT_TEAM}`[^.;]* for a brand not in it", docs)
    assert "absent for a brand not in it" not in docs
    assert DEFAULT_TEAM in (alertmanager_module.__doc__ or "")
    assert DEFAULT_TEAM in (alertmanager_module.team.__doc__ or "")


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


@pytest.mark.integration
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
