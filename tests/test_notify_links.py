"""The top posts' links as the on-call receiver gets them through a real Alertmanager: whole,
so that they open, however long, and without anything a chat tool reads as markup."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

import pytest

from detectors.alerting import build_alert
from detectors.alerting.voice import BrandVoice
from streams.alertmanager import Links, am_alerts
from tests.alertmanager_support import Receiver, RunningAlertmanager, needs_alertmanager

pytestmark = pytest.mark.integration

LINKS = Links("https://runbooks.example/r", "https://grafana.example")
#: A link with tracking parameters, longer than the 200 characters a post's text may take.
LONG = "https://www.facebook.com/nordlysenergi/posts/pfbid02x7?" + "&".join(
    f"utm_{n}=campaign-{n}-nordlys-vinter" for n in range(12)
)
#: Brackets and a pipe are valid in a query, and Slack reads ``|`` and ``<>`` as link syntax.
ODD = "https://forum.example/t/123?filter[]=a|b&q=dobbelt trekk"


def storm(posts: list[dict[str, Any]]) -> dict[str, Any]:
    now = int(time.time() * 1000)
    drivers = {"top_posts_by_reach": posts}
    episode = {"episode_id": "links-1", "kind": "storm", "severity": "warning"}
    episode |= {"start_ms": now - 600_000, "drivers": drivers}
    voice = BrandVoice("nordlys", "Nordlys Energi", team="comms-nordic")
    return build_alert({"type": "opened", "at": "", "at_ms": now, "episode": episode}, voice)


@needs_alertmanager
def test_top_post_links_reach_the_receiver_whole(
    am: RunningAlertmanager, receiver: Receiver
) -> None:
    assert len(LONG) > 300
    posts = [
        {"id": "p1", "url": LONG, "text": "dobbelt trekk igjen", "reach": 50_000},
        {"id": "p2", "url": ODD, "text": "samme her", "reach": 40_000},
        {"id": "p3", "url": "javascript:alert(1)", "text": "se her", "reach": 30_000},
    ]
    am.post(am_alerts(storm(posts), [], LINKS, time.time() * 1000, 600_000))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not receiver.alerts("comms-chat", "firing"):
        time.sleep(0.3)
    drivers = receiver.alerts("comms-chat", "firing")[0]["annotations"]["drivers"]
    lines = [line for line in drivers.splitlines() if line.startswith("- ")]
    assert len(lines) == 3, drivers
    assert lines[0].endswith(f"({LONG})"), lines[0]
    odd = lines[1].rsplit("(", 1)[1].rstrip(")")
    assert unquote(odd) == ODD
    assert not set(odd) & set('<>|[] `"')
    assert lines[2].endswith("(id p3)"), lines[2]  # not an http(s) link: no link at all
