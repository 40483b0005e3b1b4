"""Prometheus, Alertmanager and a webhook receiver on 127.0.0.1, for the demo.

They use the Debian packages' binaries (``prometheus``, ``prometheus-alertmanager``) when
installed, or the Alertmanager of the compose file's version when ``deploy/local.sh`` has built
it (:func:`alertmanager_tool`), and the shipped configuration under ``deploy/``, with addresses
and timings made local: Prometheus scrapes the demo's worker every few seconds with the
pipeline's alert rules, and Alertmanager routes exactly as in production but delivers every
receiver's notifications to an in-process webhook receiver, so the demo can show the page as
the on-call person gets it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from streams.errors import StormvarselError
from streams.kafka_local import free_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def find_binary(*names: str) -> str | None:
    """The first of ``names`` on PATH or in /usr/bin (where Debian installs them)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin")
        if found:
            return found
    return None


def compose_image_version(image: str, compose_file: Path | None = None) -> str | None:
    """The X.Y.Z of ``image:vX.Y.Z`` in the compose file (None if it is not pinned so, or the
    file is absent, as in an installed package)."""
    path = compose_file or DEPLOY.parent / "docker-compose.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(rf"^\s*image:\s*{re.escape(image)}:v(\d+\.\d+\.\d+)\s*$", text, re.M)
    return match.group(1) if match else None


def compose_tool_path(directory: str, image: str, tool: str) -> tuple[str | None, Path | None]:
    """The compose file's version of ``image`` and where ``deploy/local.sh`` builds ``tool`` of
    that version (``~/.cache/stormvarsel/<directory>-vX.Y.Z/<tool>``), built or not."""
    version = compose_image_version(image)
    if version is None:
        return None, None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return version, cache / "stormvarsel" / f"{directory}-v{version}" / tool


def alertmanager_tool(tool: str) -> str | None:
    """``alertmanager`` or ``amtool``: the compose file's version if ``deploy/local.sh`` built it
    (what production runs), else Debian's (``prometheus-alertmanager`` is Debian's name for
    the server), else None."""
    _, built = compose_tool_path("alertmanager", "prom/alertmanager", tool)
    if built is not None and os.access(built, os.X_OK):
        return str(built)
    if tool == "alertmanager":
        return find_binary("prometheus-alertmanager", "alertmanager")
    return find_binary(tool)


@dataclass
class WebhookReceiver:
    """Collects Alertmanager webhook notifications (one JSON body per POST) by receiver path."""

    port: int = field(default_factory=free_port)
    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                with receiver._lock:
                    receiver.notifications.append((self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def alerts(self, receiver: str | None = None) -> list[dict[str, Any]]:
        """Every alert of every notification, in arrival order (optionally of one receiver)."""
        with self._lock:
            bodies = [
                body
                for path, body in self.notifications
                if receiver is None or path.endswith(f"/{receiver}")
            ]
        return [alert for body in bodies for alert in body.get("alerts", [])]


def alertmanager_config(receiver: WebhookReceiver) -> dict[str, Any]:
    """The shipped configuration, every receiver a webhook to ``receiver``, fast timings."""
    config: dict[str, Any] = yaml.safe_load(
        (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    )
    config["templates"] = [str(DEPLOY / "alertmanager" / "templates" / "*.tmpl")]
    for entry in config["receivers"]:
        entry.pop("slack_configs", None)
        entry.pop("pagerduty_configs", None)
        entry["webhook_configs"] = [
            {"url": f"{receiver.url}/hooks/{entry['name']}", "send_resolved": True}
        ]

    def quicken(route: dict[str, Any]) -> None:
        for key, value in (
            ("group_wait", "1s"),
            ("group_interval", "5s"),
            ("repeat_interval", "1h"),
        ):
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            quicken(child)

    quicken(config["route"])
    return config


class _Process:
    name = "process"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.name}.yml"

    def _write_config(self, config: dict[str, Any]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def _launch(self, args: list[str], timeout_s: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [self.binary, *args], stdout=handle, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StormvarselError(
                    f"{self.name} exited with code {self.process.returncode}; see {self.log}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise StormvarselError(
            f"{self.name} was not ready within {timeout_s:.0f} s; see {self.log}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class LocalAlertmanager(_Process):
    name = "alertmanager"

    def start(self, config: dict[str, Any] | None = None) -> None:
        """Start with ``config`` (or, restarting, the last one) on the same port and storage."""
        if config is not None:
            self._write_config(config)
        self._launch(
            [
                f"--config.file={self.config_path}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ]
        )


class LocalPrometheus(_Process):
    name = "prometheus"

    def start(self, worker_address: str, scrape_interval: str = "2s") -> None:
        self._write_config(
            {
                "global": {
                    "scrape_interval": scrape_interval,
                    "evaluation_interval": scrape_interval,
                },
                "rule_files": [str(DEPLOY / "prometheus" / "rules" / "*.yml")],
                "scrape_configs": [
                    {
                        "job_name": "stormvarsel-worker",
                        "static_configs": [{"targets": [worker_address]}],
                    }
                ],
            }
        )
        self._launch(
            [
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ]
        )
