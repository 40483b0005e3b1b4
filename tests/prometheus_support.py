"""A real Prometheus (Debian package ``prometheus``) scraping a test worker on 127.0.0.1, with
the shipped alert rules loaded, and the dashboards' queries made runnable (no tests here)."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streams.local_services import LocalPrometheus, find_binary
from tests.conftest import REPO

RULES = REPO / "deploy" / "prometheus" / "rules"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
BINARY = find_binary("prometheus")
needs_prometheus = pytest.mark.skipif(
    BINARY is None, reason="Prometheus not installed (Debian package prometheus)"
)


class QueryError(AssertionError):
    pass


class RunningPrometheus(LocalPrometheus):
    """The demo's local Prometheus, plus the HTTP API queries the tests make."""

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad query, with Prometheus' reason
            body = json.loads(exc.read())
        if body.get("status") != "success":
            raise QueryError(f"{params.get('query', path)}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[Any]:
        data = self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=str(step)
        )
        return list(data["result"])

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def wait(self, expr: str, timeout_s: float, what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log_tail()
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what} ({expr})")


def start_prometheus(tmp_path: Path, worker_address: str) -> RunningPrometheus:
    """Scrape ``worker_address`` every second as job ``stormvarsel-worker``, with our rules."""
    assert BINARY is not None
    prometheus = RunningPrometheus(BINARY, tmp_path / "prometheus")
    prometheus.start(worker_address, scrape_interval="1s")
    return prometheus


@dataclass(frozen=True)
class DashboardQuery:
    dashboard: str
    where: str  # panel title, "annotation: ..." or "variable: ..."
    expr: str


def dashboard_queries() -> list[DashboardQuery]:
    """Every PromQL expression of every shipped dashboard: panels, annotations, variables."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board.get("panels", []):
            for target in panel.get("targets", []):
                found.append(DashboardQuery(path.name, panel["title"], target["expr"]))
        for annotation in board.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append(
                    DashboardQuery(
                        path.name, f"annotation: {annotation['name']}", annotation["expr"]
                    )
                )
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else query
                found.append(DashboardQuery(path.name, f"variable: {variable['name']}", text))
    return found


def runnable(expr: str, *, rate_interval: str, brand: str) -> str:
    """What Grafana would send: its variables filled in, ``label_values(m, l)`` as ``m``."""
    values = json.dumps(brand)[1:-1]
    expr = expr.replace("$__rate_interval", rate_interval).replace("$brand", values)
    match = re.fullmatch(r"label_values\((.+),\s*\w+\)", expr.strip())
    return match.group(1) if match else expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (good enough for our own rules and panels)."""
    names = set(re.findall(r"\b(stormvarsel_[A-Za-z0-9_:]+)", expr))
    if re.search(r"\bup\{", expr):
        names.add("up")
    return names
