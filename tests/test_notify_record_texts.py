"""Every text of an ``alerts`` record reaches the receiver neutralised, also the fields the
detect stage fills with fixed words (change, times, peak severity): another producer, or a
worker of another version, may write the topic (runbook StormvarselAlertRecordsUnreadable)."""

from __future__ import annotations

import json
import time

import pytest

from streams.agents.notify import readable_alert
from streams.alertmanager import Links, am_alerts
from tests.alertmanager_support import Receiver, RunningAlertmanager, needs_alertmanager

pytestmark = pytest.mark.integration

LINKS = Links("https://runbooks.example/r", "https://grafana.example")


@needs_alertmanager
def test_a_foreign_records_fixed_word_fields_cannot_ping_the_channel(
    am: RunningAlertmanager, receiver: Receiver
) -> None:
    now = int(time.time() * 1000)
    record = {
        "alert_id": "foreign-1",
        "brand": "nordlys",
        "brand_name": "Nordlys Energi",
        "kind": "storm",
        "change": "<!channel> opened",
        "status": "firing",
        "severity": "warning",
        "peak_severity": "<!here>`x`",
        "changed_at": "<!everyone>\u202e2026-12-06T09:00",
        "changed_at_ms": now,
        "start_ms": now - 600_000,
        "oncall": {"team": "comms-nordic"},
    }
    alert = readable_alert(json.dumps(record).encode(), LINKS)
    am.post(am_alerts(alert, [], LINKS, time.time() * 1000, 600_000))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not receiver.alerts("comms-chat", "firing"):
        time.sleep(0.3)
    description = receiver.alerts("comms-chat", "firing")[0]["annotations"]["description"]
    assert description.startswith("Change: "), description
    for marker in ("<", ">", "`", "\u202e"):
        assert marker not in description, (marker, description)
