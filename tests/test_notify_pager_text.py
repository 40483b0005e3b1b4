"""The PagerDuty block commented in deploy/alertmanager/alertmanager.yml, put in place as the
file says, on a real Alertmanager: the page on the phone says what happened (the brand's name
and figures), and its details carry the figures, the actions, the drafts and the links."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from detectors.alerting import build_alert
from detectors.alerting.voice import BrandVoice
from streams.alertmanager import Links, am_alerts
from tests.alertmanager_support import (
    DEPLOY_CONFIG,
    Receiver,
    StartAlertmanager,
    needs_alertmanager,
    receiver_config,
)
from tests.test_alertmanager_config import commented_block

LINKS = Links("https://runbooks.example/brandstorm", "https://grafana.example")


def with_pagerduty(receiver: Receiver) -> dict[str, Any]:
    """The test configuration with the commented PagerDuty block in the comms-pager receiver,
    its routing key inline and its API pointed at ``receiver``."""
    config = receiver_config(receiver)
    block = yaml.safe_load(commented_block(DEPLOY_CONFIG.read_text(), "pagerduty_configs:"))
    pagerduty = block["pagerduty_configs"]
    for entry in pagerduty:
        del entry["routing_key_file"]
        entry["routing_key"] = "test-routing-key"
        entry["url"] = f"{receiver.url}/pagerduty"
    pager = next(r for r in config["receivers"] if r["name"] == "comms-pager")
    pager["pagerduty_configs"] = pagerduty
    return config


@pytest.mark.integration
@needs_alertmanager
def test_the_pagerduty_page_says_what_happened(
    start_alertmanager: StartAlertmanager, receiver: Receiver
) -> None:
    now = int(time.time() * 1000)
    episode = {"episode_id": "pd-1", "kind": "storm", "severity": "critical"}
    episode |= {"start_ms": now - 600_000, "figures": {"volume": {"now": 240, "baseline": 12}}}
    voice = BrandVoice("nordlys-energi", "Nordlys Energi", languages=("nb", "en"))
    alert = build_alert({"type": "opened", "at": "", "at_ms": now, "episode": episode}, voice)
    running = start_alertmanager(with_pagerduty(receiver))
    running.post(am_alerts(alert, [], LINKS, time.time() * 1000, 600_000))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not receiver.received("/pagerduty"):
        time.sleep(0.3)
    event = receiver.received("/pagerduty")[0]
    summary = event["payload"]["summary"]
    assert summary.startswith("Nordlys Energi: storm critical: 240 posts in 60 min"), summary
    details = "\n".join(str(v) for v in event["payload"]["custom_details"].values())
    for needed in (
        "Suggested actions:",  # the description
        "[UTKAST: må godkjennes av en person før publisering] (nb",  # the drafts
        "[DRAFT: a person must approve this before it is posted] (en",
        "https://grafana.example/d/stormvarsel-brands/",  # the dashboard
        "https://runbooks.example/brandstorm",  # the runbook
    ):
        assert needed in details, (needed, details)
