"""Notifier: storm alerts from the ``alerts`` topic to Alertmanager, until they are resolved.

The notifier keeps the latest record of every storm episode in a changelog-backed table (key:
brand, so it lives with the brand's partition) and, from a background loop, posts the whole
current set to Alertmanager: at once when something changed, and every ``resend_s`` otherwise,
so firing alerts never reach their ``endsAt``. While Alertmanager is unreachable the loop backs
off (1 s, 2 s, ... up to the re-send interval) and then delivers the then-current state:
nothing pending is lost. Alertmanager merges alerts with equal labels, so neither re-sends nor
a restarted worker page twice. Resolved alerts are re-sent for one TTL after their resolution,
so an Alertmanager that restarted in between still learns of it; then they are forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import faust

from streams import metrics
from streams.alertmanager import AlertmanagerClient, AlertmanagerError, Links, am_alerts
from streams.log_setup import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class NotifyConfig:
    urls: list[str]
    links: Links
    partitions: int
    token: str | None = None
    resend_s: float = 60.0
    ttl_s: float = 900.0
    max_age_s: float = 86400.0


@dataclass
class Tracked:
    """One storm episode as the notifier knows it."""

    alert: dict[str, Any]
    severities: list[str] = field(default_factory=list)
    #: Wall-clock time of the last change (resolved alerts are kept for one TTL after it).
    changed_wall: float = 0.0

    def expired(self, now: float, ttl_s: float) -> bool:
        return self.alert["status"] == "resolved" and now - self.changed_wall > ttl_s


def register(app: faust.App, *, source: faust.TopicT, config: NotifyConfig) -> Any:
    table = app.Table(
        "notifier-alerts",
        partitions=config.partitions,
        key_type=str,
        help="Each brand's storm alerts as last sent to Alertmanager (key: brand).",
    )
    tracked: dict[str, Tracked] = {}
    wake = asyncio.Event()
    generation: list[object] = [None]

    def rebuild() -> None:
        tracked.clear()
        for value in table.values():
            for alert_id, entry in value.items():
                tracked[alert_id] = Tracked(**entry)
        log.info("notify.rebuilt", alerts=len(tracked))

    def ensure_current() -> None:
        if generation[0] != app.rebalancing_count:
            generation[0] = app.rebalancing_count
            rebuild()
            wake.set()

    @app.agent(source, name="stormvarsel.notify")
    async def notify(stream: faust.StreamT) -> None:
        async for event in stream.events():
            ensure_current()
            try:
                alert = json.loads(event.message.value)
                alert_id, brand = str(alert["alert_id"]), str(alert["brand"])
                kind = alert["kind"]
            except (ValueError, TypeError, KeyError) as exc:
                metrics.NOTIFY_SKIPPED.labels(reason="unreadable").inc()
                log.warning("notify.unreadable", offset=event.message.offset, error=str(exc))
                continue
            if kind != "storm":
                metrics.NOTIFY_SKIPPED.labels(reason="buzz").inc()
                continue
            now = time.time()
            previous = tracked.get(alert_id)
            age_s = now - float(alert["changed_at_ms"]) / 1000
            if previous is None and config.max_age_s and age_s > config.max_age_s:
                metrics.NOTIFY_SKIPPED.labels(reason="stale").inc()
                log.info("notify.stale", brand=brand, alert_id=alert_id, age_s=round(age_s))
                continue
            severities = list(previous.severities) if previous else []
            if alert["severity"] not in severities:
                severities.append(alert["severity"])
            tracked[alert_id] = Tracked(alert, severities, now)
            entries = {
                key: value
                for key, value in (table.get(brand) or {}).items()
                if key in tracked and not tracked[key].expired(now, config.ttl_s)
            }
            entries[alert_id] = asdict(tracked[alert_id])
            table[brand] = entries
            log.info(
                "notify.queued",
                brand=brand,
                alert_id=alert_id,
                change=alert["change"],
                severity=alert["severity"],
            )
            wake.set()

    @app.task
    async def push_loop() -> None:
        client = AlertmanagerClient(config.urls, token=config.token)
        backoff = 0.0
        next_resend = 0.0
        last_warning = 0.0
        try:
            while not app.should_stop:
                if backoff:
                    await asyncio.sleep(backoff)
                    metrics.ALERTMANAGER_RETRIES.inc()
                else:
                    timeout = max(0.0, next_resend - time.monotonic())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout)
                wake.clear()
                ensure_current()
                now = time.time()
                for alert_id in [k for k, t in tracked.items() if t.expired(now, config.ttl_s)]:
                    del tracked[alert_id]
                batch = [
                    item
                    for t in tracked.values()
                    for item in am_alerts(
                        t.alert, t.severities, config.links, now * 1000, config.ttl_s * 1000
                    )
                ]
                firing = sum(t.alert["status"] == "firing" for t in tracked.values())
                metrics.NOTIFY_TRACKED.labels(status="firing").set(firing)
                metrics.NOTIFY_TRACKED.labels(status="resolved").set(len(tracked) - firing)
                try:
                    await client.post(batch)
                except Exception as exc:  # the loop must outlive any failure
                    if not isinstance(exc, AlertmanagerError):
                        log.exception("notify.post_failed", alerts=len(batch))
                    backoff = min(config.resend_s, max(1.0, backoff * 2))
                    metrics.ALERTMANAGER_POSTS.labels(result="error").inc()
                    metrics.ALERTMANAGER_UP.set(0)
                    # One warning when it goes away, then a reminder a minute at most.
                    if time.monotonic() - last_warning >= 60:
                        last_warning = time.monotonic()
                        log.warning(
                            "notify.alertmanager_unreachable",
                            error=str(exc),
                            alerts=len(batch),
                            retry_in_s=backoff,
                        )
                    continue
                if batch:
                    metrics.ALERTMANAGER_POSTS.labels(result="ok").inc()
                    if backoff:
                        log.info("notify.alertmanager_back", alerts=len(batch))
                last_warning = 0.0
                metrics.ALERTMANAGER_UP.set(1)
                backoff = 0.0
                next_resend = time.monotonic() + config.resend_s
        finally:
            await client.close()

    return notify
