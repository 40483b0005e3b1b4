"""A real Alertmanager (the compose file's version, or Debian's ``prometheus-alertmanager``) and
a local receiver that records what it is sent, for the alerting tests (no tests here)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.kafka_local import free_port
from streams.local_services import LocalAlertmanager, alertmanager_tool
from tests.conftest import REPO

DEPLOY_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
TEMPLATES = REPO / "deploy" / "alertmanager" / "templates"
#: The compose file's Alertmanager when ``deploy/local.sh`` built it (production's version),
#: else Debian's.
BINARY = alertmanager_tool("alertmanager")
needs_alertmanager = pytest.mark.skipif(
    BINARY is None, reason="Alertmanager not installed (Debian package prometheus-alertmanager)"
)


@dataclass
class Receiver:
    """Records every POST by path: Alertmanager's webhook payloads and Slack messages."""

    port: int
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self, path_prefix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for path, body in self.posts if path.startswith(path_prefix)]

    def alerts(self, receiver: str, status: str | None = None) -> list[dict[str, Any]]:
        """Every alert of every webhook notification ``receiver`` got (optionally by status)."""
        out = []
        for body in self.received(f"/hooks/{receiver}"):
            out += [a for a in body.get("alerts", []) if status is None or a["status"] == status]
        return out


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with receiver.lock:
                receiver.posts.append((self.path, body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server


def receiver_config(receiver: Receiver, *, fast: bool = True) -> dict[str, Any]:
    """The deployed configuration with its receivers pointed at ``receiver`` (and a Slack
    receiver that renders the shipped templates); with ``fast``, short group timings."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    config["templates"] = [str(TEMPLATES / "*.tmpl")]
    for entry in config["receivers"]:
        for hook in entry.get("webhook_configs", []):
            hook["url"] = f"{receiver.url}/hooks/{entry['name']}"
        if entry["name"] == "comms-chat":
            entry["slack_configs"] = [
                {
                    "api_url": f"{receiver.url}/slack/{entry['name']}",
                    "channel": "#comms-oncall",
                    "send_resolved": True,
                    "title": '{{ template "stormvarsel.title" . }}',
                    "text": '{{ template "stormvarsel.text" . }}',
                }
            ]
    if fast:
        routes = [config["route"], *config["route"].get("routes", [])]
        for route in routes:
            for key, value in (("group_wait", "1s"), ("group_interval", "2s")):
                if key in route or route is config["route"]:
                    route[key] = value
    return config


class RunningAlertmanager(LocalAlertmanager):
    """The demo's local Alertmanager, plus what the tests ask of its API."""

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return list(json.loads(response.read()))

    def post(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running, server = start_receiver()
    yield running
    server.shutdown()


StartAlertmanager = Callable[[dict[str, Any]], RunningAlertmanager]


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[StartAlertmanager]:
    """Starts a real Alertmanager with a configuration (``receiver_config``'s, changed as the
    test needs) and stops it after the test. The one way the tests start one: the guard in
    conftest.py sees this fixture and asks for the ``integration`` marker."""
    started: list[RunningAlertmanager] = []

    def start(config: dict[str, Any]) -> RunningAlertmanager:
        assert BINARY is not None
        name = f"alertmanager-{len(started)}" if started else "alertmanager"
        running = RunningAlertmanager(BINARY, tmp_path / name)
        started.append(running)
        running.start(config)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stop()


@pytest.fixture
def am(start_alertmanager: StartAlertmanager, receiver: Receiver) -> RunningAlertmanager:
    """A real Alertmanager with the deployed configuration, delivering to ``receiver``."""
    return start_alertmanager(receiver_config(receiver))
