"""Notifier: storm alerts from the ``alerts`` topic to Alertmanager, until they are resolved.

The notifier keeps the latest record of every storm episode in a changelog-backed table (key:
brand, so it lives with the brand's partition) and, from a background loop, posts the whole
current set to Alertmanager: at once when something changed, and every ``resend_s`` otherwise,
so firing alerts never reach their ``endsAt``. While an Alertmanager is unreachable the loop
backs off (1 s, 2 s, ... up to the re-send interval) and then delivers the then-current state:
nothing pending is lost; a change is still posted at once. With nothing to send it posts an
empty list every ``resend_s``, so ``stormvarsel_alertmanager_up`` tells the truth before the
first storm. Alertmanager merges alerts with equal labels, so neither re-sends nor
a restarted worker page twice. Resolved alerts are re-sent for one TTL after their resolution,
so an Alertmanager that restarted in between still learns of it. They are remembered (not
re-sent) for as long as a record of theirs could still be paged, ``max_age_s``: Kafka delivers
at least once, a record older than the episode's tracked one (or firing after it resolved) is
skipped, see :func:`superseded`, and a redelivered ``opened`` must find the resolution there.

With several workers, each posts only the alerts of the ``alerts`` partitions it owns. The table
also holds standby copies of other workers' partitions, which are stale between rebalances: a
worker that posted those would re-send an episode as firing after its owner had resolved it
(the page would come back, or never resolve). So the set is rebuilt when a rebalance has
recovered the tables (Faust's ``on_rebalance_complete``, as the detect stage does too), from the
owned partitions only; events are rare, so waiting for the first one of a new generation could
leave newly owned alerts without re-sends for hours, and Alertmanager would let them expire. The
alerts of revoked partitions are dropped when the rebalance begins (``on_partitions_revoked``):
until it completes, their new owner may already have resolved an episode. A rebuild before the
next assignment (a recovery of the generation before, completing late) is skipped: the
consumer's assignment still names the revoked partitions then.

After ``topics grow`` or ``topics reset-state`` the table starts empty, but the firing alerts it
held are carried over in the seeds topic (``streams.detector_seeds``): a brand with nothing in
the table has them re-sent, so an episode still open is not reported resolved by Alertmanager
when its ``endsAt`` passes. They join the table with the brand's next alert record (the detector,
carried over too, goes on with the episode). A carried alert whose brand has sent nothing within
``CARRIED_S`` of the reset is no longer re-sent: its detector may not have been carried over (a
brand silent for days starts afresh), and then nothing would ever resolve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import faust
from aiokafka.partitioner import murmur2

from streams import metrics
from streams.agents import notify_table
from streams.alertmanager import (
    AlertmanagerClient,
    Delivery,
    Links,
    am_alerts,
    instance_label,
    team,
)
from streams.log_setup import get_logger

log = get_logger(__name__)

#: How long after a reset a carried-over firing alert is re-sent without news from its brand.
CARRIED_S = 24 * 3600.0


@dataclass(frozen=True)
class NotifyConfig:
    urls: list[str]
    links: Links
    partitions: int
    token: str | None = None
    resend_s: float = 60.0
    ttl_s: float = 14400.0
    max_age_s: float = 86400.0
    #: Firing alerts carried over a reset, by brand (:func:`carried_alerts`).
    carried: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class Tracked:
    """One storm episode as the notifier knows it."""

    alert: dict[str, Any]
    severities: list[str] = field(default_factory=list)
    #: Wall-clock time of the last change (resolved alerts are kept for one TTL after it).
    changed_wall: float = 0.0
    #: Partition of ``alerts`` (and of the table) the episode lives on; -1: saved before the
    #: partition was recorded.
    partition: int = -1
    #: Wall-clock time after which a carried-over alert is no longer re-sent (0: no limit).
    until: float = 0.0
    #: The on-call teams this episode was ever posted to ("": none), so that the alerts of a
    #: team it was taken from (the brands file changed) are resolved, not left to expire.
    teams: list[str] = field(default_factory=list)

    def expired(self, now: float, ttl_s: float) -> bool:
        """No longer re-sent: resolved more than ``ttl_s`` ago, or carried over too long ago."""
        if self.until and now > self.until:
            return True
        return self.alert["status"] == "resolved" and now - self.changed_wall > ttl_s


def keep_s(config: NotifyConfig) -> float:
    """How long a resolved episode is remembered: until none of its records could be paged any
    more (``max_age_s``), so a redelivered ``opened`` is superseded by the resolution instead of
    paging a storm the team closed hours ago; at least one TTL, for its re-sends. Without an
    age limit (``max_age_s`` 0) any record could be paged however old, so for good (a few kB
    per storm)."""
    if not config.max_age_s:
        return math.inf
    return max(config.ttl_s, config.max_age_s)


def posted_teams(previous: Tracked | None, alert: Mapping[str, Any]) -> list[str]:
    """The teams an episode was posted to, with ``alert``'s: the tracked entry's, and its
    record's team for an entry saved before the teams were kept."""
    teams = list(previous.teams) if previous else []
    if previous is not None and not teams:
        teams.append(team(previous.alert))
    if team(alert) not in teams:
        teams.append(team(alert))
    return teams


def carried_alerts(seeds: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The firing alerts of the seeds topic's records (brand: {alert id: table entry}), each
    re-sent until ``CARRIED_S`` after the reset and placed by its brand's key on the alerts
    topic as it is now (the partition it was saved with belongs to the old layout)."""
    carried: dict[str, dict[str, Any]] = {}
    for brand, record in seeds.items():
        if not isinstance(record, dict) or not isinstance(record.get("alerts"), dict):
            continue
        until = float(record.get("carried_at") or 0.0) + CARRIED_S
        carried[brand] = {
            alert_id: {**entry, "partition": -1, "until": until}
            for alert_id, entry in record["alerts"].items()
        }
    return carried


def owned_alerts(
    items: Iterable[tuple[str, Mapping[str, Mapping[str, Any]]]], owned: set[int], partitions: int
) -> dict[str, Tracked]:
    """The alerts of the table's items (brand, that brand's alerts) that live on ``owned``
    partitions of an ``alerts`` topic of ``partitions`` partitions.

    An entry saved before the partition was recorded gets the one its brand's key hashes to, as
    the producer placed it: kept by every worker, it would be re-sent by all of them, and a
    worker whose copy is stale would post "firing" after the owner resolved the episode."""
    tracked: dict[str, Tracked] = {}
    for brand, value in items:
        for alert_id, entry in value.items():
            item = Tracked(**entry)
            if item.partition < 0:
                item.partition = key_partition(brand, partitions)
            if item.partition in owned:
                tracked[alert_id] = item
    return tracked


#: Order of an episode's changes dated the same millisecond: an end outranks any firing
#: change, a rise outranks a fall, and the opening comes first. Unknown changes sit between.
CHANGE_RANK = {"opened": 0, "de-escalated": 1, "escalated": 2, "resolved": 3, "abandoned": 3}


def change_order(alert: Mapping[str, Any]) -> tuple[float, int, int]:
    """Where a record stands in its episode's history: event time, then ended, then change."""
    return (
        float(alert["changed_at_ms"]),
        int(alert.get("status") == "resolved"),
        CHANGE_RANK.get(str(alert.get("change")), 1),
    )


def superseded(alert: Mapping[str, Any], tracked: Mapping[str, Any]) -> bool:
    """True if the tracked record of the same episode is newer than ``alert``, which is then
    dropped: Kafka delivers at least once, so after a restart the detect stage may send a
    storm's changes again (opened ... resolved, then opened ... again) and an old ``opened``
    would otherwise bring a resolved page back, and be saved as firing.

    Ties (the same record delivered again) are taken: they change nothing. An end is final,
    whatever the times say: a resolved episode stays resolved even for a later-dated firing
    record of the same id (a redo of the detect stage that saw the storm last longer), and an
    end dated before the tracked firing change is taken (a redo that ended it sooner, or an
    ``abandoned`` dated at the saved state the detector was reset from): dropped, nothing else
    would ever end that id, and its page would fire for good. A new storm has a new id.
    A tracked record without a usable ``changed_at_ms`` (saved before it was checked) never
    holds a newer one back by its time."""
    if tracked.get("status") == "resolved" and alert["status"] == "firing":
        return True
    if alert["status"] == "resolved" and tracked.get("status") == "firing":
        return False
    changed = tracked.get("changed_at_ms")
    if isinstance(changed, bool) or not isinstance(changed, int | float):
        return False
    return change_order(alert) < change_order(tracked)


def post_results(errors: Sequence[object], rejected: Sequence[object]) -> list[str]:
    """How one post to the Alertmanagers counts: ``error`` when one was not reached,
    ``rejected`` when one refused alerts (both can be true of one post), else ``ok``."""
    results = (["error"] if errors else []) + (["rejected"] if rejected else [])
    return results or ["ok"]


def revoked_partitions(revoked: Iterable[Any], topic: str) -> set[int]:
    """The ``alerts`` partitions among a rebalance's revoked topic partitions."""
    return {tp.partition for tp in revoked if tp.topic == topic}


def key_partition(brand: str, partitions: int) -> int:
    """The partition the producer's default partitioner gives a record keyed by ``brand``."""
    return (murmur2(brand.encode()) & 0x7FFFFFFF) % partitions


def readable_alert(value: bytes | None, links: Links) -> dict[str, Any]:
    """An ``alerts`` record the notifier can track and post; ValueError says what is wrong.

    Checked whole on the way in, by building its Alertmanager alerts once: the background loop
    posts every tracked alert together, so one it could not build would stop all pages."""
    alert = json.loads(value or b"")
    if not isinstance(alert, dict):
        raise ValueError("not a JSON object")
    for key in ("alert_id", "brand", "kind", "change", "severity"):
        if not isinstance(alert.get(key), str):
            raise ValueError(f"{key}: required, a string")
    if alert.get("status") not in ("firing", "resolved"):
        raise ValueError(f"status: expected 'firing' or 'resolved', got {alert.get('status')!r}")
    changed = alert.get("changed_at_ms")
    if (
        isinstance(changed, bool)
        or not isinstance(changed, int | float)
        or not math.isfinite(changed)
    ):
        raise ValueError("changed_at_ms: required, epoch milliseconds")
    try:
        am_alerts(alert, [], links, 0.0, 0.0)
    except Exception as exc:  # any field the texts or links need, in the wrong shape
        raise ValueError(
            f"cannot build its Alertmanager alert: {type(exc).__name__}: {exc}"
        ) from exc
    return alert


def drafts_to_fix(alert: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The language and lint problems of each draft the detect stage could not make pass the
    statement lint (``lint``): it is paged with a warning under it, and said in the log too."""
    out = []
    for statement in alert.get("statements") or []:
        if isinstance(statement, dict) and statement.get("lint"):
            out.append({"lang": statement.get("lang"), "problems": statement["lint"]})
    return out


def save_brand(
    table: Any, brand: str, tracked: Mapping[str, Tracked], now: float, keep: float
) -> None:
    """Write ``brand``'s tracked alerts (carried-over ones included) to the table, fitted to a
    Kafka record (:mod:`streams.agents.notify_table`)."""
    entries = {
        key: asdict(item)
        for key, item in tracked.items()
        if item.alert.get("brand") == brand and not item.expired(now, keep)
    }
    fitted = notify_table.fit(entries)
    if fitted.changed:
        for action, ids in (("compacted", fitted.compacted), ("dropped", fitted.dropped)):
            if ids:
                metrics.NOTIFY_TABLE_FITTED.labels(action=action).inc(len(ids))
        if fitted.value is None:
            metrics.NOTIFY_TABLE_FITTED.labels(action="unsaved").inc()
        (log.error if fitted.value is None else log.warning)(
            "notify.table_entry_too_large",
            brand=brand,
            bytes=fitted.size,
            limit=notify_table.CHANGELOG_VALUE_MAX_BYTES,
            posts_left_out=fitted.compacted,
            resolved_left_out=fitted.dropped,
            saved=fitted.value is not None,
        )
    if fitted.value is not None:
        table[brand] = fitted.value


def register(app: faust.App, *, source: faust.TopicT, config: NotifyConfig) -> Any:
    table = app.Table(
        "notifier-alerts",
        partitions=config.partitions,
        key_type=str,
        help="Each brand's storm alerts as last sent to Alertmanager (key: brand).",
    )
    tracked: dict[str, Tracked] = {}
    wake = asyncio.Event()
    #: The consumer generation whose partitions were last revoked. Until the next assignment
    #: (a new generation) the consumer's assignment is still that generation's, and a rebuild
    #: then (a recovery of that generation completing late) would take the given-away alerts
    #: back. Faust sets the generation before it recovers the tables of an assignment.
    revoked_generation: int | None = None

    def rebuild() -> None:
        generation = getattr(app, "consumer_generation_id", None)
        if revoked_generation is not None and generation == revoked_generation:
            log.info("notify.rebuild_skipped", reason="revoked, no new assignment yet")
            return
        topic = source.get_topic_name()
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
        items = list(table.items())
        saved = {brand for brand, _ in items}
        # The brand's entry in the table is newer than anything carried over for it.
        carried = [(b, entries) for b, entries in config.carried.items() if b not in saved]
        now = time.time()
        tracked.clear()
        for alert_id, item in owned_alerts(items + carried, owned, config.partitions).items():
            if not item.expired(now, keep_s(config)):
                tracked[alert_id] = item
        resent = sum(bool(item.until) for item in tracked.values())
        log.info("notify.rebuilt", alerts=len(tracked), carried=resent, partitions=sorted(owned))
        wake.set()

    async def on_recovered(sender: Any, *_args: Any, signal: Any = None, **_kwargs: Any) -> None:
        rebuild()

    async def on_revoked(sender: Any, revoked: Any = (), **_kwargs: Any) -> None:
        # Until the rebalance completes, the push loop would go on re-sending the alerts of
        # partitions given away: their new owner may resolve an episode meanwhile, and a
        # "firing" from here would bring the page back until its next re-send.
        nonlocal revoked_generation
        revoked_generation = getattr(app, "consumer_generation_id", None)
        gone = revoked_partitions(revoked, source.get_topic_name())
        for alert_id in [k for k, item in tracked.items() if item.partition in gone]:
            del tracked[alert_id]
        log.info("notify.revoked", partitions=sorted(gone), alerts=len(tracked))

    # Kept strongly referenced by the signal (the default); typed loosely for mode's union.
    app.on_rebalance_complete.connect(cast(Any, on_recovered))
    app.on_partitions_revoked.connect(cast(Any, on_revoked))

    @app.agent(source, name="stormvarsel.notify")
    async def notify(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                alert = readable_alert(event.message.value, config.links)
                alert_id, brand, kind = alert["alert_id"], alert["brand"], alert["kind"]
            except (ValueError, TypeError) as exc:
                metrics.NOTIFY_SKIPPED.labels(reason="unreadable").inc()
                log.warning(
                    "notify.unreadable",
                    partition=event.message.partition,
                    offset=event.message.offset,
                    error=str(exc),
                )
                continue
            if kind != "storm":
                metrics.NOTIFY_SKIPPED.labels(reason="buzz").inc()
                continue
            now = time.time()
            previous = tracked.get(alert_id)
            if previous is not None and superseded(alert, previous.alert):
                metrics.NOTIFY_SKIPPED.labels(reason="superseded").inc()
                log.info(
                    "notify.superseded",
                    brand=brand,
                    alert_id=alert_id,
                    change=alert["change"],
                    changed_at_ms=alert["changed_at_ms"],
                    tracked_change=previous.alert.get("change"),
                    tracked_changed_at_ms=previous.alert.get("changed_at_ms"),
                    tracked_status=previous.alert.get("status"),
                )
                continue
            age_s = now - float(alert["changed_at_ms"]) / 1000
            if previous is None and config.max_age_s and age_s > config.max_age_s:
                metrics.NOTIFY_SKIPPED.labels(reason="stale").inc()
                log.info("notify.stale", brand=brand, alert_id=alert_id, age_s=round(age_s))
                continue
            severities = list(previous.severities) if previous else []
            if alert["severity"] not in severities:
                severities.append(alert["severity"])
            teams = posted_teams(previous, alert)
            tracked[alert_id] = Tracked(
                alert, severities, now, event.message.partition, teams=teams
            )
            # Every tracked alert of the brand, the carried-over ones included: once the brand
            # has an entry, its carried alerts are no longer taken from the seeds.
            save_brand(table, brand, tracked, now, keep_s(config))
            log.info(
                "notify.queued",
                brand=brand,
                alert_id=alert_id,
                change=alert["change"],
                severity=alert["severity"],
            )
            for draft in drafts_to_fix(alert):
                log.warning("notify.draft_fails_lint", brand=brand, alert_id=alert_id, **draft)
            wake.set()

    @app.task
    async def push_loop() -> None:
        client = AlertmanagerClient(config.urls, token=config.token)
        backoff = 0.0
        next_resend = 0.0
        last_warning = 0.0
        last_rejected = 0.0
        try:
            while not app.should_stop:
                # A change is posted at once, also while backing off: one unreachable
                # Alertmanager of an HA pair must not hold a new page back from the others.
                timeout = backoff or max(0.0, next_resend - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout)
                if backoff:
                    metrics.ALERTMANAGER_RETRIES.inc()
                wake.clear()
                now = time.time()
                for alert_id in [k for k, t in tracked.items() if t.expired(now, keep_s(config))]:
                    del tracked[alert_id]
                sent = [t for t in tracked.values() if not t.expired(now, config.ttl_s)]
                batch = [
                    item
                    for t in sent
                    for item in am_alerts(
                        t.alert,
                        t.severities,
                        config.links,
                        now * 1000,
                        config.ttl_s * 1000,
                        teams=t.teams,
                    )
                ]
                firing = sum(t.alert["status"] == "firing" for t in sent)
                metrics.NOTIFY_TRACKED.labels(status="firing").set(firing)
                metrics.NOTIFY_TRACKED.labels(status="resolved").set(len(sent) - firing)
                try:
                    deliveries = await client.post(batch)
                except Exception as exc:  # the loop must outlive any failure
                    log.exception("notify.post_failed", alerts=len(batch))
                    deliveries = [Delivery(url, error=repr(exc)) for url in config.urls]
                for delivery in deliveries:
                    metrics.ALERTMANAGER_UP.labels(alertmanager=instance_label(delivery.url)).set(
                        1 if delivery.reached else 0
                    )
                errors = [d.error for d in deliveries if d.error]
                rejected = [d.rejected for d in deliveries if d.rejected]
                if batch:  # an empty post only checks that Alertmanager is there
                    # Both, when one Alertmanager of several was not reached and another
                    # refused alerts: counted as an error only, the refusal hid from the
                    # StormvarselAlertsRejected alert while a replica was down.
                    for result in post_results(errors, rejected):
                        metrics.ALERTMANAGER_POSTS.labels(result=result).inc()
                if rejected and time.monotonic() - last_rejected >= 60:
                    # The valid alerts were stored; the refused ones are re-sent (and refused)
                    # with every post, so say it once a minute at most.
                    last_rejected = time.monotonic()
                    log.error("notify.alerts_rejected", errors=rejected, alerts=len(batch))
                if errors:
                    backoff = min(config.resend_s, max(1.0, backoff * 2))
                    # One warning when it goes away, then a reminder a minute at most.
                    if time.monotonic() - last_warning >= 60:
                        last_warning = time.monotonic()
                        log.warning(
                            "notify.alertmanager_unreachable",
                            error="; ".join(errors),
                            alerts=len(batch),
                            retry_in_s=backoff,
                        )
                    continue
                if backoff:
                    log.info("notify.alertmanager_back", alerts=len(batch))
                last_warning = 0.0
                backoff = 0.0
                next_resend = time.monotonic() + config.resend_s
        finally:
            await client.close()

    return notify
