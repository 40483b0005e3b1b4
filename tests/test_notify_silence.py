"""The BrandStorm runbook's silence for a false alarm, run exactly as written (with amtool) on
a real Alertmanager with the deployed configuration: it mutes that storm, also when it
escalates, and neither the brand's next storm nor another brand's."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from detectors.alerting import build_alert
from detectors.alerting.voice import BrandVoice
from streams.alertmanager import Links, am_alerts
from streams.local_services import alertmanager_tool
from tests.alertmanager_support import Receiver, RunningAlertmanager, needs_alertmanager
from tests.conftest import REPO

pytestmark = pytest.mark.integration

#: The compose file's amtool when deploy/local.sh built it, and Debian's: the runbook's
#: commands must work with either.
AMTOOLS = sorted({t for t in (alertmanager_tool("amtool"), shutil.which("amtool")) if t})
LINKS = Links("https://runbooks.example/r", "https://grafana.example")
TTL_MS = 600_000


def runbook_commands(section: str) -> list[str]:
    """The ``amtool`` command lines of a runbook section's code blocks."""
    text = (REPO / "docs" / "runbooks.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", body, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.startswith("amtool ")]


def storm(brand: str, start_ms: int, severity: str = "warning") -> dict[str, Any]:
    voice = BrandVoice(brand, brand.title(), team="comms-nordic")
    episode = {"episode_id": f"{brand}-{start_ms}", "kind": "storm", "severity": severity}
    episode["start_ms"] = start_ms
    return build_alert({"type": "opened", "at": "", "at_ms": start_ms, "episode": episode}, voice)


def states(am: RunningAlertmanager) -> dict[tuple[str, str], str]:
    return {
        (a["labels"]["episode"], a["labels"]["severity"]): a["status"]["state"] for a in am.alerts()
    }


@needs_alertmanager
@pytest.mark.skipif(not AMTOOLS, reason="amtool not installed")
@pytest.mark.parametrize("amtool", AMTOOLS)
def test_the_runbooks_false_alarm_silence_mutes_that_storm_only(
    amtool: str, am: RunningAlertmanager, receiver: Receiver
) -> None:
    commands = [c for c in runbook_commands("BrandStorm") if " silence add " in c]
    assert len(commands) == 1, "the BrandStorm runbook gives one amtool silence command"
    now = int(time.time() * 1000)
    false_alarm = storm("nordlys", now - 600_000)
    # The command as written, with the page's values in the placeholders.
    where = urlsplit(am.url).netloc
    command = commands[0].replace("ALERTMANAGER:9093", where)
    command = command.replace("BRAND", "nordlys").replace("EPISODE", false_alarm["alert_id"])
    done = subprocess.run(
        [amtool, *shlex.split(command)[1:]], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    silence_id = done.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", silence_id), done.stdout

    # The false alarm escalates while another brand's storm begins.
    escalated = dict(false_alarm, severity="critical", change="escalated")
    other = storm("fjellbrod", now - 600_000)
    am.post(
        am_alerts(escalated, ["warning"], LINKS, now, TTL_MS)
        + am_alerts(other, [], LINKS, now, TTL_MS)
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not receiver.alerts("comms-chat", "firing"):
        time.sleep(0.3)
    time.sleep(3)  # more group intervals of the fast test timings
    seen = states(am)
    assert seen[(false_alarm["alert_id"], "critical")] == "suppressed"
    assert seen[(other["alert_id"], "warning")] == "active"

    # It ends; the brand's next storm (a new episode) pages although the silence still runs.
    over = dict(escalated, status="resolved", change="resolved")
    new_storm = storm("nordlys", now + 1000, severity="critical")
    later = time.time() * 1000
    am.post(
        am_alerts(over, ["warning", "critical"], LINKS, later, TTL_MS)
        + am_alerts(new_storm, [], LINKS, later, TTL_MS)
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not receiver.alerts("comms-pager", "firing"):
        time.sleep(0.3)
    time.sleep(3)
    assert states(am)[(new_storm["alert_id"], "critical")] == "active"
    notified = {a["labels"]["episode"] for a in receiver.alerts("comms-chat", "firing")}
    notified |= {a["labels"]["episode"] for a in receiver.alerts("comms-pager", "firing")}
    assert notified == {new_storm["alert_id"], other["alert_id"]}

    # And the runbook's way to end the silence early works as written too.
    expire = [c for c in runbook_commands("BrandStorm") if " silence expire " in c]
    if not expire:
        text = (REPO / "docs" / "runbooks.md").read_text()
        expire = re.findall(r"`(amtool [^`]* silence expire ID)`", text)
    assert len(expire) == 1
    command = expire[0].replace("ALERTMANAGER:9093", where).replace("ID", silence_id)
    done = subprocess.run(
        [amtool, *shlex.split(command)[1:]], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    again = dict(escalated, alert_id=false_alarm["alert_id"])
    am.post(am_alerts(again, ["warning"], LINKS, time.time() * 1000, TTL_MS))
    deadline = time.monotonic() + 20
    while (
        time.monotonic() < deadline
        and states(am).get((false_alarm["alert_id"], "critical")) != "active"
    ):
        time.sleep(0.3)
    assert states(am)[(false_alarm["alert_id"], "critical")] == "active"
