"""Alertmanager API v2: storm alerts as Alertmanager alerts, and a client that posts them.

Each (episode, severity) is one Alertmanager alert with the labels ``alertname="BrandStorm"``,
``brand``, ``severity``, ``episode`` (the stable episode id) and ``team`` (the brand's on-call
team from the brands file, to route on; ``comms-oncall``, the shared team, for a brand not in
it, see ``detectors.alerting.voice.DEFAULT_TEAM``). Posting the same labels again
updates the alert Alertmanager already has, which is why re-sends, retries and a restarted
worker never page twice. A firing alert is posted with ``endsAt`` = now + TTL and re-sent well
before that; an escalation or de-escalation resolves the alert of the former severity (its
summary says the storm is still open, at which severity); a resolution is posted with ``endsAt``
set.

The client posts to every configured Alertmanager and reports each one's outcome. Redirects are
not followed: a client following a 301 or 302 turns the POST into a GET, which "succeeds" and
delivers nothing. A 400 means Alertmanager stored the valid alerts of the batch and refused the
others (its API validates them one by one), so it is reported as a partial delivery, not as an
outage that would hold back every other page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

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


def team(alert: Mapping[str, Any]) -> str:
    """The brand's on-call team: its ``oncall.team`` from the brands file, ``comms-oncall``
    for a brand not in it (the record carries it); empty only for a record without one."""
    return texts.team_of(alert)


def labels(alert: dict[str, Any], severity: str, to_team: str | None = None) -> dict[str, str]:
    """The alert's labels at ``severity``, for ``to_team`` (default: the record's team)."""
    out = {
        "alertname": ALERTNAME,
        "brand": str(alert["brand"]),
        "severity": severity,
        "episode": str(alert["alert_id"]),
    }
    on_call = team(alert) if to_team is None else to_team
    if on_call:
        out["team"] = on_call
    return out


def am_annotations(alert: dict[str, Any], links: Links) -> dict[str, str]:
    return {
        "summary": texts.summary(alert),
        "description": texts.description(alert),
        "statements": texts.statements_text(alert),
        "drivers": texts.drivers_text(alert),
        "runbook_url": links.runbook_url,
        "dashboard_url": links.dashboard(alert),
        "alert_id": str(alert["alert_id"]),
        "team": team(alert),
    }


def am_alerts(
    alert: dict[str, Any],
    severities: list[str],
    links: Links,
    now_ms: float,
    ttl_ms: float,
    teams: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The Alertmanager alerts that express the latest state of one storm.

    ``severities`` are all the severities this episode was ever posted with: those other than
    the current one (or all, once resolved) are posted as resolved. ``teams`` are all the
    on-call teams it was posted to: the team is a label, so a storm whose brand was given to
    another team (the brands file changed) would leave the old team's alert firing until its
    ``endsAt``, a TTL later; it is posted resolved, saying who has the storm now.
    """
    notes = am_annotations(alert, links)
    start_ms = float(alert.get("start_ms") or alert["changed_at_ms"])
    resolved = alert["status"] == "resolved"
    end_ms = min(float(alert.get("end_ms") or now_ms), now_ms) if resolved else now_ms
    out = []
    for severity in dict.fromkeys([*severities, alert["severity"]]):
        firing = not resolved and severity == alert["severity"]
        ends_ms = now_ms + ttl_ms if firing else max(end_ms, now_ms - 1)
        # A severity the open storm has left ends, but says that the storm goes on.
        left = not resolved and not firing
        out.append(
            {
                "labels": labels(alert, severity),
                "annotations": {**notes, "summary": texts.left_summary(alert, severity)}
                if left
                else notes,
                # Alertmanager refuses an alert that starts after it ends (an episode dated
                # ahead of this host's clock): it starts when it ends at the latest.
                "startsAt": rfc3339(min(start_ms, ends_ms)),
                "endsAt": rfc3339(ends_ms),
                "generatorURL": links.dashboard(alert),
            }
        )
    for former in dict.fromkeys(teams):
        if former == team(alert):
            continue
        moved = {**notes, "summary": texts.moved_summary(alert, former)}
        ends_ms = max(end_ms, now_ms - 1)
        out.extend(
            {
                "labels": labels(alert, severity, former),
                "annotations": notes if resolved else moved,
                "startsAt": rfc3339(min(start_ms, ends_ms)),
                "endsAt": rfc3339(ends_ms),
                "generatorURL": links.dashboard(alert),
            }
            for severity in dict.fromkeys([*severities, alert["severity"]])
        )
    return out


class AlertmanagerError(Exception):
    """Alertmanager could not be reached, or refused the whole post."""


class AlertsRejected(Exception):
    """Alertmanager stored the valid alerts of a post and refused the others (HTTP 400)."""


def instance_label(url: str) -> str:
    """An Alertmanager URL as a metric label: host, port and path, never its user-info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class Delivery:
    """What one Alertmanager made of a post: ``error`` (nothing delivered) or ``rejected``
    (delivered, except the alerts it names) or neither."""

    url: str
    error: str | None = None
    rejected: str | None = None

    @property
    def reached(self) -> bool:
        return self.error is None


class AlertmanagerClient:
    """Posts alerts to every configured Alertmanager (an HA cluster wants them all)."""

    def __init__(
        self, urls: list[str], *, token: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, alerts: list[dict[str, Any]]) -> list[Delivery]:
        """Post to all instances, one :class:`Delivery` each (in ``urls`` order).

        An empty list is posted too: Alertmanager accepts it, so a wrong URL or token shows
        before the first storm needs it."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        results = await asyncio.gather(
            *(self._post_one(self._session, url, alerts) for url in self.urls),
            return_exceptions=True,
        )
        out = []
        for url, result in zip(self.urls, results, strict=True):
            if isinstance(result, AlertsRejected):
                out.append(Delivery(url, rejected=str(result)))
            elif isinstance(result, BaseException):
                out.append(Delivery(url, error=f"{redact_url(url)}: {result}"))
            else:
                out.append(Delivery(url))
        return out

    @staticmethod
    async def _post_one(
        session: aiohttp.ClientSession, url: str, alerts: list[dict[str, Any]]
    ) -> None:
        try:
            async with session.post(
                f"{url}/api/v2/alerts", json=alerts, allow_redirects=False
            ) as response:
                if response.status < 300:
                    return
                body = (await response.text())[:200].strip()
                if response.status == 400:
                    raise AlertsRejected(f"{redact_url(url)}: HTTP 400: {body}")
                if 300 <= response.status < 400:
                    location = redact_url(response.headers.get("Location", "?"))
                    raise AlertmanagerError(
                        f"HTTP {response.status}: redirected to {location}; "
                        "set the URL it redirects to (a redirected POST delivers nothing)"
                    )
                raise AlertmanagerError(f"HTTP {response.status}: {body}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AlertmanagerError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
