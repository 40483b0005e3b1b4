"""Delivery to Alertmanager when something in between misbehaves: a redirect, an alert it
refuses, one unreachable replica of an HA pair, nothing to send yet (real Alertmanager; the
notifier's agent and loop run on a stand-in Faust app, without Kafka)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from faust.types import TP
from prometheus_client import REGISTRY

from streams.agents import notify
from streams.alertmanager import AlertmanagerClient, Links, am_alerts, instance_label, labels
from streams.kafka_local import free_port
from tests.alertmanager_support import RunningAlertmanager, needs_alertmanager

LINKS = Links("https://runbooks.example/r", "https://grafana.example")
TTL_MS = 900_000


def storm(alert_id: str, *, severity: str = "warning", start_ms: float | None = None) -> dict:
    now = int(time.time() * 1000)
    start = int(start_ms if start_ms is not None else now - 600_000)
    return {
        "alert_id": alert_id,
        "brand": alert_id.rsplit("-", 1)[0],
        "brand_name": alert_id.rsplit("-", 1)[0].title(),
        "kind": "storm",
        "change": "opened",
        "status": "firing",
        "severity": severity,
        "peak_severity": severity,
        "changed_at_ms": start,
        "start_ms": start,
        "oncall": {"team": "comms-nordic"},
    }


def episodes(am: RunningAlertmanager) -> set[str]:
    return {a["labels"]["episode"] for a in am.alerts()}


def test_storm_alerts_carry_the_brands_on_call_team_as_a_label() -> None:
    """Alertmanager routes on labels only: as an annotation, the team could not choose a pager."""
    alert = storm("fjellbrod-1")
    alert["oncall"] = {"team": "comms-food"}
    assert labels(alert, "critical")["team"] == "comms-food"
    assert "team" not in labels({**alert, "oncall": None}, "critical")  # a record without one


def test_metric_label_of_an_alertmanager_url_never_shows_its_password() -> None:
    assert instance_label("https://pager:s3cret@am.example:9093/am") == "https://am.example:9093/am"


@pytest.mark.integration
@needs_alertmanager
def test_an_alert_dated_ahead_is_still_accepted(am: RunningAlertmanager) -> None:
    """An episode dated after now + TTL (a producer clock ahead of this host's) made
    Alertmanager answer 400 "start time must be before end time"."""

    async def run() -> None:
        ahead = storm("acme-1", start_ms=time.time() * 1000 + 2 * TTL_MS)
        client = AlertmanagerClient([am.url])
        try:
            [delivery] = await client.post(am_alerts(ahead, [], LINKS, time.time() * 1000, TTL_MS))
        finally:
            await client.close()
        assert delivery.reached and delivery.rejected is None
        assert episodes(am) == {"acme-1"}

    asyncio.run(run())


@pytest.mark.integration
@needs_alertmanager
def test_a_refused_alert_is_a_partial_delivery_not_an_outage(
    am: RunningAlertmanager,
) -> None:

    async def run() -> None:
        good = am_alerts(storm("acme-1"), [], LINKS, time.time() * 1000, TTL_MS)
        bad = {**good[0], "labels": {**good[0]["labels"], "episode": "acme-2"}}
        bad["startsAt"], bad["endsAt"] = bad["endsAt"], bad["startsAt"]
        client = AlertmanagerClient([am.url])
        try:
            [delivery] = await client.post([*good, bad])
        finally:
            await client.close()
        assert delivery.reached
        assert (
            delivery.rejected is not None
            and "start time must be before end time" in delivery.rejected
        )
        assert episodes(am) == {"acme-1"}  # Alertmanager stored the valid one

    asyncio.run(run())


async def redirecting_proxy(target: str) -> tuple[web.AppRunner, str]:
    """An ingress that moves every request elsewhere with a 301 (http -> https, say)."""

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"{target}{request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.integration
@needs_alertmanager
def test_a_redirect_in_front_of_alertmanager_is_an_error_not_a_silent_success(
    am: RunningAlertmanager,
) -> None:
    """Following a 301 turns the POST into a GET of the alert list: HTTP 200, nothing sent."""

    async def run() -> None:
        runner, url = await redirecting_proxy(am.url)
        client = AlertmanagerClient([url])
        try:
            [delivery] = await client.post(
                am_alerts(storm("acme-1"), [], LINKS, time.time() * 1000, TTL_MS)
            )
        finally:
            await client.close()
            await runner.cleanup()
        assert not delivery.reached
        assert delivery.error is not None
        assert f"redirected to {am.url}/api/v2/alerts" in delivery.error
        assert episodes(am) == set()

    asyncio.run(run())


@dataclass
class StandInApp:
    """What ``notify.register`` uses of a Faust app: a table, the agent, the loop."""

    should_stop: bool = False
    table: dict[str, Any] = field(default_factory=dict)
    agent_fn: Any = None
    loop_fn: Any = None
    on_rebalance_complete: Any = field(
        default_factory=lambda: SimpleNamespace(connect=lambda _fn: None)
    )
    revoked_handlers: list[Any] = field(default_factory=list)
    on_partitions_revoked: Any = None
    recovered_handlers: list[Any] = field(default_factory=list)
    consumer_generation_id: int = 1
    consumer: Any = field(default_factory=lambda: SimpleNamespace(assignment=set))

    def __post_init__(self) -> None:
        self.on_partitions_revoked = SimpleNamespace(connect=self.revoked_handlers.append)
        self.on_rebalance_complete = SimpleNamespace(connect=self.recovered_handlers.append)

    def Table(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return self.table

    def agent(self, _source: Any, name: str = "") -> Any:
        def keep(fn: Any) -> Any:
            self.agent_fn = fn
            return fn

        return keep

    def task(self, fn: Any) -> Any:
        self.loop_fn = fn
        return fn


class AlertsTopic:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def get_topic_name(self) -> str:
        return "alerts"

    def send(self, alert: dict[str, Any]) -> None:
        self.queue.put_nowait(json.dumps(alert).encode())

    async def events(self) -> AsyncIterator[Any]:
        offset = 0
        while True:
            value = await self.queue.get()
            offset += 1
            yield SimpleNamespace(message=SimpleNamespace(value=value, offset=offset, partition=0))


@dataclass
class RunningNotifier:
    app: StandInApp
    topic: AlertsTopic
    tasks: list[asyncio.Task[Any]]

    async def stop(self) -> None:
        self.app.should_stop = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def start_notifier(urls: list[str], resend_s: float = 60.0, **options: Any) -> RunningNotifier:
    """The notify stage on a stand-in app; ``options``: more NotifyConfig fields."""
    app, topic = StandInApp(), AlertsTopic()
    config = notify.NotifyConfig(urls=urls, links=LINKS, partitions=1, resend_s=resend_s, **options)
    notify.register(app, source=topic, config=config)  # type: ignore[arg-type]
    tasks = [asyncio.create_task(app.loop_fn()), asyncio.create_task(app.agent_fn(topic))]
    return RunningNotifier(app, topic, tasks)


def up(url: str) -> float | None:
    """The exported ``stormvarsel_alertmanager_up`` of ``url``; None while there is none."""
    return REGISTRY.get_sample_value(
        "stormvarsel_alertmanager_up", {"alertmanager": instance_label(url)}
    )


async def wait_until(predicate: Any, timeout_s: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout_s``."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, "timed out"
        await asyncio.sleep(0.1)
    return time.monotonic() - start


@pytest.mark.integration
@needs_alertmanager
def test_one_unreachable_replica_does_not_hold_back_a_new_page(
    am: RunningAlertmanager,
) -> None:
    """The loop backs off while a replica is down; a change must still go out at once to the
    replica that is up (it used to wait for the back-off: up to the re-send interval)."""

    async def run() -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        notifier = start_notifier([am.url, dead], resend_s=60)
        try:
            notifier.topic.send(storm("acme-1"))
            await wait_until(lambda: "acme-1" in episodes(am), 10)
            await asyncio.sleep(8)  # failed posts: the back-off has grown to 8 s or more
            assert up(am.url) == 1 and up(dead) == 0
            notifier.topic.send(storm("nordlys-1", severity="critical"))
            assert await wait_until(lambda: "nordlys-1" in episodes(am), 10) < 3
        finally:
            await notifier.stop()

    asyncio.run(run())


@pytest.mark.integration
@needs_alertmanager
def test_alertmanager_is_checked_before_the_first_storm(am: RunningAlertmanager) -> None:
    """With nothing to send, a wrong URL used to show as up until the first storm failed."""

    async def run() -> None:
        wrong = f"http://127.0.0.1:{free_port()}"
        notifier = start_notifier([am.url, wrong])
        try:
            await wait_until(lambda: up(am.url) == 1 and up(wrong) == 0, 10)
        finally:
            await notifier.stop()

    asyncio.run(run())


def posts(result: str) -> float:
    value = REGISTRY.get_sample_value("stormvarsel_alertmanager_posts_total", {"result": result})
    return value or 0.0


def test_a_refusal_is_counted_while_another_replica_is_down() -> None:
    """One Alertmanager of a pair unreachable, the other refusing alerts (HTTP 400): the post
    counted as ``error`` only, so StormvarselAlertsRejected never saw the refusal while the
    replica was down. It is counted as both now."""

    async def refusing(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=400, text="start time must be before end time")

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/api/v2/alerts", refusing)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        dead = f"http://127.0.0.1:{free_port()}"
        before = {result: posts(result) for result in ("error", "rejected")}
        notifier = start_notifier([f"http://127.0.0.1:{port}", dead], resend_s=60)
        try:
            notifier.topic.send(storm("acme-1"))
            await wait_until(lambda: posts("rejected") > before["rejected"], 10)
            assert posts("error") > before["error"]
        finally:
            await notifier.stop()
            await runner.cleanup()

    asyncio.run(run())


def test_alerts_of_revoked_partitions_are_no_longer_re_sent() -> None:
    """Between a rebalance's revocation and its end the notifier went on re-sending the alerts
    of partitions it had given away. Their new owner may resolve an episode in that time, and a
    "firing" from the old owner brought the page back until the next re-send."""
    bodies: list[list[dict[str, Any]]] = []

    async def recording(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(status=200)

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/api/v2/alerts", recording)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        notifier = start_notifier([f"http://127.0.0.1:{port}"], resend_s=0.2)
        try:
            notifier.topic.send(storm("acme-1"))
            await wait_until(lambda: any(body for body in bodies), 10)
            [revoked] = notifier.app.revoked_handlers
            await revoked(notifier.app, {TP("other", 0)})
            seen = len(bodies)
            await wait_until(lambda: len(bodies) >= seen + 2, 10)
            assert all(bodies[seen:]), "an alert of a partition still owned must stay"
            await revoked(notifier.app, {TP("alerts", 0)})
            seen = len(bodies)
            await wait_until(lambda: len(bodies) >= seen + 3, 10)
            assert bodies[seen + 1 :] and not any(bodies[seen + 1 :])
        finally:
            await notifier.stop()
            await runner.cleanup()

    asyncio.run(run())


def test_a_late_recovery_does_not_take_back_the_alerts_of_revoked_partitions() -> None:
    """A recovery of the generation before can complete after the next rebalance revoked the
    partitions and before it assigned any: the consumer's assignment is still the old one, and
    the rebuild it triggers took the revoked partitions' alerts back, to be re-sent as firing
    after their new owner may have resolved them."""

    async def run() -> None:
        app, topic = StandInApp(), AlertsTopic()
        app.consumer = SimpleNamespace(assignment=lambda: {TP("alerts", 0)})
        config = notify.NotifyConfig(urls=[], links=LINKS, partitions=1)
        notify.register(app, source=topic, config=config)  # type: ignore[arg-type]
        entry = asdict(notify.Tracked(storm("acme-1"), ["warning"], time.time(), 0))
        app.table["acme"] = {"acme-1": entry}
        [recovered], [revoked] = app.recovered_handlers, app.revoked_handlers

        def firing() -> float | None:
            return REGISTRY.get_sample_value("stormvarsel_notify_alerts", {"status": "firing"})

        await recovered(app)
        await revoked(app, {TP("alerts", 0)})  # a rebalance of generation 1 begins
        await recovered(app)  # late: the assignment still names partition 0
        loop = asyncio.create_task(app.loop_fn())
        try:
            await asyncio.sleep(0.3)
            assert firing() == 0
            app.consumer_generation_id = 2  # assigned: partition 0 is ours again
            await recovered(app)
            await wait_until(lambda: firing() == 1, 5)
        finally:
            app.should_stop = True
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(run())
