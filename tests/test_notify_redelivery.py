"""Alert records delivered again (Kafka is at-least-once): after a restart the detect stage may
send a storm's changes a second time, and an old change arriving after a newer one must not
bring a resolved page back (real Alertmanager; the notifier runs on a stand-in Faust app)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from streams.agents.notify import superseded
from streams.kafka_local import free_port
from tests.alertmanager_support import Receiver, RunningAlertmanager, needs_alertmanager
from tests.test_notify_delivery import RunningNotifier, start_notifier, wait_until

START_MS = int(time.time() * 1000) - 600_000


def record(
    change: str, at_ms: int, *, severity: str = "critical", alert_id: str = "acme-1"
) -> dict[str, Any]:
    """An alert record of one episode as the detect stage builds it (the fields used here)."""
    ended = change in ("resolved", "abandoned")
    return {
        "alert_id": alert_id,
        "brand": "acme",
        "brand_name": "Acme",
        "kind": "storm",
        "change": change,
        "status": "resolved" if ended else "firing",
        "severity": severity,
        "peak_severity": severity,
        "changed_at_ms": at_ms,
        "start_ms": START_MS,
        "end_ms": at_ms if ended else None,
        "oncall": {"team": "comms-nordic"},
    }


def skipped() -> float:
    value = REGISTRY.get_sample_value("stormvarsel_notify_skipped_total", {"reason": "superseded"})
    return value or 0.0


def tracked(notifier: RunningNotifier, alert_id: str = "acme-1") -> dict[str, Any]:
    """The record the notifier saved for the episode (what a restarted worker re-sends)."""
    return dict(notifier.app.table["acme"][alert_id]["alert"])


async def deliver(notifier: RunningNotifier, *records: dict[str, Any]) -> None:
    """Send ``records`` in order and wait until the agent has read them all."""
    for item in records:
        notifier.topic.send(item)
    await wait_until(notifier.topic.queue.empty, 5)
    await asyncio.sleep(0.2)  # the agent handles the last one before it asks for the next


def test_an_older_change_is_superseded_by_the_tracked_one() -> None:
    opened = record("opened", START_MS + 60_000)
    escalated = record("escalated", START_MS + 120_000)
    resolved = record("resolved", START_MS + 300_000)
    assert superseded(opened, escalated)
    assert superseded(escalated, resolved)
    assert not superseded(escalated, opened)
    assert not superseded(resolved, escalated)


def test_the_same_record_delivered_again_is_taken() -> None:
    """A plain re-delivery changes nothing: taking it is harmless, counting it would alarm."""
    for change in ("opened", "escalated", "resolved", "abandoned"):
        item = record(change, START_MS + 60_000)
        assert not superseded(item, dict(item))


def test_changes_dated_the_same_millisecond_keep_one_order_whatever_the_delivery_order() -> None:
    """An ``abandoned`` is dated at the end of the last closed bucket, where the episode's last
    change may be dated too; two runs of the detect stage may date different changes alike."""
    at = START_MS + 120_000
    for first, then in [("escalated", "abandoned"), ("opened", "resolved")]:
        assert superseded(record(first, at), record(then, at))
        assert not superseded(record(then, at), record(first, at))
    up, down = record("escalated", at), record("de-escalated", at, severity="warning")
    assert superseded(down, up) and not superseded(up, down)


def test_a_resolved_episode_is_not_reopened_by_a_later_firing_record_of_its_id() -> None:
    """A redo that saw the storm last longer dates its firing changes after the resolution
    the team already got; a new storm has a new episode id and is not held back."""
    resolved = record("resolved", START_MS + 300_000)
    assert superseded(record("escalated", START_MS + 360_000), resolved)
    assert not superseded(record("resolved", START_MS + 420_000), resolved)


def test_an_end_dated_before_the_tracked_firing_change_still_ends_the_episode() -> None:
    """A redo that ended the storm sooner, or an ``abandoned`` dated at the saved state its
    detector was reset from, is older than the escalation already paged: it was dropped, and
    with nothing else to end that id the page fired for good. An end is final."""
    escalated = record("escalated", START_MS + 180_000)
    for change in ("resolved", "abandoned"):
        assert not superseded(record(change, START_MS + 120_000), escalated)

    async def run() -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        notifier = start_notifier([dead], resend_s=60)
        try:
            abandoned = record("abandoned", START_MS + 120_000)
            before = skipped()
            await deliver(notifier, record("opened", START_MS + 60_000), escalated, abandoned)
            assert tracked(notifier) == abandoned
            assert skipped() == before
            await deliver(notifier, escalated)  # and the escalation again: still over
            assert tracked(notifier) == abandoned
            assert skipped() == before + 1
        finally:
            await notifier.stop()

    asyncio.run(run())


def test_the_teams_an_episode_was_paged_to_are_kept() -> None:
    """So that a former team's alert is resolved when the brand's team changes mid-storm
    (``am_alerts``; tests/test_notify_severity_change.py on the real Alertmanager)."""

    async def run() -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        notifier = start_notifier([dead], resend_s=60)
        try:
            opened = record("opened", START_MS + 60_000)
            moved = record("escalated", START_MS + 120_000) | {"oncall": {"team": "comms-oslo"}}
            await deliver(notifier, opened, moved)
            saved = notifier.app.table["acme"]["acme-1"]
            assert saved["teams"] == ["comms-nordic", "comms-oslo"]
        finally:
            await notifier.stop()

    asyncio.run(run())


def test_the_agent_keeps_the_newest_change_and_counts_the_rest() -> None:
    """Every case on the agent itself: what it saves is what a restarted worker re-sends."""

    async def run() -> None:
        dead = f"http://127.0.0.1:{free_port()}"  # the table is the point, not the posts
        notifier = start_notifier([dead], resend_s=60)
        try:
            opened = record("opened", START_MS + 60_000)
            escalated = record("escalated", START_MS + 120_000)
            resolved = record("resolved", START_MS + 300_000)
            before = skipped()
            await deliver(notifier, opened, escalated, resolved)
            assert skipped() == before
            # The redo from the last committed offset: the same changes again, in order.
            await deliver(notifier, opened, escalated)
            assert tracked(notifier)["status"] == "resolved"
            assert skipped() == before + 2
            await deliver(notifier, resolved)  # the same record again: taken, not counted
            assert tracked(notifier) == resolved
            assert skipped() == before + 2
            await deliver(notifier, record("escalated", START_MS + 360_000))  # later, same id
            assert tracked(notifier)["status"] == "resolved"
            assert skipped() == before + 3
            # A new storm of the brand has a new id: paged as usual.
            new = record("opened", START_MS + 900_000, alert_id="acme-2")
            await deliver(notifier, new)
            assert tracked(notifier, "acme-2") == new
            assert skipped() == before + 3
        finally:
            await notifier.stop()

    asyncio.run(run())


@pytest.mark.parametrize("max_age_s", [86_400.0, 0.0])
def test_a_resolution_past_its_ttl_still_supersedes_a_redelivered_opened(
    max_age_s: float,
) -> None:
    """A resolved episode is re-sent for one TTL, then used to be forgotten: an ``opened``
    delivered again after that (dated within ``max_age_s``, so not stale) was tracked as firing
    and paged a storm the team had closed hours before. It is now remembered, not re-sent;
    without an age limit (0), where no record is ever too old to page, for good."""

    async def run() -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        notifier = start_notifier([dead], resend_s=0.2, ttl_s=1.0, max_age_s=max_age_s)
        try:
            opened = record("opened", START_MS + 60_000)
            resolved = record("resolved", START_MS + 300_000)
            await deliver(notifier, opened, resolved)
            sending = ("stormvarsel_notify_alerts", {"status": "resolved"})
            await wait_until(lambda: REGISTRY.get_sample_value(*sending) == 1, 5)
            # One TTL later the resolution is no longer re-sent ...
            await wait_until(lambda: REGISTRY.get_sample_value(*sending) == 0, 5)
            before = skipped()
            await deliver(notifier, opened)  # ... and the redo's old opened arrives
            assert skipped() == before + 1
            assert tracked(notifier)["status"] == "resolved"
            await asyncio.sleep(0.5)  # a re-send or two: nothing firing goes out
            firing = REGISTRY.get_sample_value("stormvarsel_notify_alerts", {"status": "firing"})
            assert firing == 0
        finally:
            await notifier.stop()

    asyncio.run(run())


@pytest.mark.integration
@needs_alertmanager
def test_a_redelivered_opened_does_not_page_a_resolved_storm_again(
    am: RunningAlertmanager, receiver: Receiver
) -> None:
    """The reviewer's reproduction: the old ``opened`` arriving after ``resolved`` made the
    alert firing again (endsAt now + TTL) and the pager rang a second time."""

    def pages(status: str) -> int:
        return len(receiver.alerts("comms-pager", status))

    async def run() -> None:
        notifier = start_notifier([am.url], resend_s=1)
        try:
            opened = record("opened", START_MS + 60_000)
            await deliver(notifier, opened)
            await wait_until(lambda: pages("firing") == 1, 20)
            await deliver(notifier, record("resolved", START_MS + 300_000))
            await wait_until(lambda: pages("resolved") == 1, 20)
            await deliver(notifier, opened)
            # Re-sends every second, group interval 2 s: a re-fired alert would be back by now.
            await asyncio.sleep(6)
            assert am.alerts() == []
            assert pages("firing") == 1
            assert tracked(notifier)["status"] == "resolved"
        finally:
            await notifier.stop()

    asyncio.run(run())
