"""Alertmanager API v2: storm alerts as Alertmanager alerts, and a client that posts them.

Each (episode, severity) is one Alertmanager alert with the labels ``alertname="BrandStorm"``,
``brand``, ``severity`` and ``episode`` (the stable episode id). Posting the same labels again
updates the alert Alertmanager already has, which is why re-sends, retries and a restarted
worker never page twice. A firing alert is posted with ``endsAt`` = now + TTL and re-sent well
before that; an escalation resolves the alert of the former severity; a resolution is posted with
``endsAt`` set.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp

from detectors.alerting import summary as texts
from streams.settings import redact_url

ALERTNAME = "BrandStorm"


@dataclass(frozen=True)
class Links:
    runbook_url: str
    grafana_url: str

    def dashboard(self, alert: dict[str, Any]) -> str:
        """The brand dashboard around the episode (an hour before it began until its end)."""
        start = int(alert.get("start_ms") or alert.get("changed_at_ms") or 0) - 3_600_000
        end = alert.get("end_ms")
        query = {"var-brand": alert["brand"], "from": str(start), "to": str(end or "now")}
        return f"{self.grafana_url.rstrip('/')}/d/stormvarsel-brands/brands?{urlencode(query)}"


def rfc3339(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def labels(alert: dict[str, Any], severity: str) -> dict[str, str]:
    return {
        "alertname": ALERTNAME,
        "brand": str(alert["brand"]),
        "severity": severity,
        "episode": str(alert["alert_id"]),
    }


def am_annotations(alert: dict[str, Any], links: Links) -> dict[str, str]:
    return {
        "summary": texts.summary(alert),
        "description": texts.description(alert),
        "statements": texts.statements_text(alert),
        "drivers": texts.drivers_text(alert),
        "runbook_url": links.runbook_url,
        "dashboard_url": links.dashboard(alert),
        "alert_id": str(alert["alert_id"]),
        "team": str((alert.get("oncall") or {}).get("team") or ""),
    }


def am_alerts(
    alert: dict[str, Any],
    severities: list[str],
    links: Links,
    now_ms: float,
    ttl_ms: float,
) -> list[dict[str, Any]]:
    """The Alertmanager alerts that express the latest state of one storm.

    ``severities`` are all the severities this episode was ever posted with: those other than
    the current one (or all, once resolved) are posted as resolved.
    """
    notes = am_annotations(alert, links)
    starts = rfc3339(float(alert.get("start_ms") or alert["changed_at_ms"]))
    resolved = alert["status"] == "resolved"
    end_ms = min(float(alert.get("end_ms") or now_ms), now_ms) if resolved else now_ms
    out = []
    for severity in dict.fromkeys([*severities, alert["severity"]]):
        firing = not resolved and severity == alert["severity"]
        out.append(
            {
                "labels": labels(alert, severity),
                "annotations": notes,
                "startsAt": starts,
                "endsAt": rfc3339(now_ms + ttl_ms if firing else max(end_ms, now_ms - 1)),
                "generatorURL": links.dashboard(alert),
            }
        )
    return out


class AlertmanagerError(Exception):
    """Alertmanager could not be reached or refused the alerts."""


class AlertmanagerClient:
    """Posts alerts to every configured Alertmanager (an HA cluster wants them all)."""

    def __init__(
        self, urls: list[str], *, token: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        """Post to all instances; raise :class:`AlertmanagerError` unless every one took them."""
        if not alerts:
            return
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        errors = []
        results = await asyncio.gather(
            *(self._post_one(self._session, url, alerts) for url in self.urls),
            return_exceptions=True,
        )
        for url, result in zip(self.urls, results, strict=True):
            if isinstance(result, BaseException):
                errors.append(f"{redact_url(url)}: {result}")
        if errors:
            raise AlertmanagerError("; ".join(errors))

    @staticmethod
    async def _post_one(
        session: aiohttp.ClientSession, url: str, alerts: list[dict[str, Any]]
    ) -> None:
        try:
            async with session.post(f"{url}/api/v2/alerts", json=alerts) as response:
                if response.status >= 300:
                    body = (await response.text())[:200]
                    raise AlertmanagerError(f"HTTP {response.status}: {body.strip()}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AlertmanagerError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
