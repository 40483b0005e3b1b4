"""What the receivers get when an open storm changes severity (real Alertmanager, deployed
routes): the alert of the severity it left is sent resolved, and must not read as the end of
the storm."""

from __future__ import annotations

import time
from typing import Any

import pytest

from detectors.alerting import build_alert
from detectors.alerting.voice import BrandVoice
from streams.alertmanager import Links, am_alerts
from tests.alertmanager_support import Receiver, RunningAlertmanager, needs_alertmanager

pytestmark = pytest.mark.integration

LINKS = Links("https://runbooks.example/r", "https://grafana.example")
VOICE = BrandVoice("nordlys", "Nordlys Energi", languages=("nb", "en"), team="comms-nordic")
TTL_MS = 600_000


def record(change: str, severity: str, at_ms: int, start_ms: int) -> dict[str, Any]:
    episode = {
        "episode_id": "nordlys-storm-1",
        "kind": "storm",
        "severity": severity,
        "peak_severity": "critical",
        "start_ms": start_ms,
    }
    return build_alert({"type": change, "at": "", "at_ms": at_ms, "episode": episode}, VOICE)


def wait_for(receiver: Receiver, hook: str, status: str, severity: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for alert in receiver.alerts(hook, status):
            if alert["labels"]["severity"] == severity:
                return alert
        time.sleep(0.3)
    raise AssertionError(f"{hook} got no {status} {severity} alert: {receiver.posts}")


@needs_alertmanager
def test_the_pager_is_not_told_resolved_while_the_storm_goes_on(
    am: RunningAlertmanager, receiver: Receiver
) -> None:
    start = int(time.time() * 1000) - 600_000
    severities = ["warning"]
    opened = record("opened", "warning", start, start)
    am.post(am_alerts(opened, severities, LINKS, time.time() * 1000, TTL_MS))
    wait_for(receiver, "comms-chat", "firing", "warning")

    # Escalated: the critical page (the warning alert ends, inhibited by the critical one, so
    # the comms channel hears nothing of it).
    escalated = record("escalated", "critical", start + 60_000, start)
    severities.append("critical")
    am.post(am_alerts(escalated, severities, LINKS, time.time() * 1000, TTL_MS))
    paged = wait_for(receiver, "comms-pager", "firing", "critical")
    assert paged["annotations"]["summary"].startswith("Nordlys Energi: storm critical")

    # De-escalated: the pager's critical alert ends, but the storm is not over.
    calmer = record("de-escalated", "warning", start + 120_000, start)
    am.post(am_alerts(calmer, severities, LINKS, time.time() * 1000, TTL_MS))
    ended = wait_for(receiver, "comms-pager", "resolved", "critical")
    summary = ended["annotations"]["summary"]
    assert summary == (
        "Nordlys Energi: storm still open, now warning (de-escalated): this critical alert ends"
    )
    assert "resolved" not in summary

    # Resolved: every alert of the episode ends with the usual summary.
    over = record("resolved", "warning", start + 180_000, start)
    am.post(am_alerts(over, severities, LINKS, time.time() * 1000, TTL_MS))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        a["labels"]["severity"] == "warning" and "resolved" in a["annotations"]["summary"]
        for a in receiver.alerts("comms-chat", "resolved")
    ):
        time.sleep(0.3)
    last = receiver.alerts("comms-chat", "resolved")[-1]
    assert last["annotations"]["summary"].startswith("Nordlys Energi: storm resolved")


@needs_alertmanager
def test_a_storm_given_to_another_team_ends_the_former_teams_alert(
    am: RunningAlertmanager, receiver: Receiver
) -> None:
    """The team is a label, so it is part of the alert's identity: after the brands file gave
    the brand to another team mid-storm, the former team's alert was never posted again and
    kept firing until its ``endsAt``, a TTL (4 h by default) later. It is now posted resolved,
    saying who has the storm; the new team's alert fires."""
    start = int(time.time() * 1000) - 600_000
    opened = record("opened", "critical", start, start)
    am.post(am_alerts(opened, ["critical"], LINKS, time.time() * 1000, TTL_MS))
    first = wait_for(receiver, "comms-pager", "firing", "critical")
    assert first["labels"]["team"] == "comms-nordic"

    moved_voice = BrandVoice("nordlys", "Nordlys Energi", languages=("nb", "en"), team="comms-oslo")
    episode = {
        "episode_id": "nordlys-storm-1",
        "kind": "storm",
        "severity": "critical",
        "peak_severity": "critical",
        "start_ms": start,
    }
    moved = build_alert(
        {"type": "escalated", "at": "", "at_ms": start + 60_000, "episode": episode}, moved_voice
    )
    teams = ["comms-nordic", "comms-oslo"]
    am.post(am_alerts(moved, ["critical"], LINKS, time.time() * 1000, TTL_MS, teams=teams))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not receiver.alerts("comms-pager", "resolved"):
        time.sleep(0.3)
    ended = receiver.alerts("comms-pager", "resolved")
    assert [a["labels"]["team"] for a in ended] == ["comms-nordic"], receiver.posts
    assert ended[0]["annotations"]["summary"] == (
        "Nordlys Energi: storm still open, critical, now paged to comms-oslo: "
        "this alert for comms-nordic ends"
    )
    firing = [a["labels"]["team"] for a in receiver.alerts("comms-pager", "firing")]
    assert "comms-oslo" in firing
