"""A brand's ``notifier-alerts`` entry stays one Kafka record (``notify_table``): seven storms in a
day, each with top posts of emoji ids, links and texts (12 bytes each as JSON escapes), made it
1.13 MB, and the producer's refusal stopped the worker on every restart."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from streams.agents import notify, notify_table
from streams.alertmanager import am_alerts
from tests.test_notify_delivery import LINKS, start_notifier, storm, wait_until

EMOJI = "\U0001f600"


def hostile(alert_id: str, status: str = "firing", at_ms: int = 0) -> dict[str, Any]:
    """A storm alert whose five top posts are as large as validation lets a mention make them."""
    alert = storm(alert_id)
    alert["changed_at_ms"] += at_ms
    if status == "resolved":
        alert |= {"status": "resolved", "change": "resolved"}
    posts = [
        {
            "id": EMOJI * 255 + str(n),
            "url": "https://x.example/" + EMOJI * 2000,
            "platform": "x",
            "lang": "en",
            "reach": 10_000 - n,
            "engagement": n,
            "sentiment": "negative",
            "text": EMOJI * 280,
        }
        for n in range(5)
    ]
    alert["drivers"] = {"terms": [{"term": "refund", "score": 5.0}], "top_posts": posts}
    return alert


def entry(alert: dict[str, Any], changed_wall: float) -> dict[str, Any]:
    return asdict(notify.Tracked(alert, [alert["severity"]], changed_wall, 0))


def fitted_counter(action: str) -> float:
    value = REGISTRY.get_sample_value("stormvarsel_notify_table_fitted_total", {"action": action})
    return value or 0.0


def test_a_small_entry_is_written_as_it_is() -> None:
    entries = {"acme-1": entry(storm("acme-1"), 1.0)}
    fitted = notify_table.fit(entries)
    assert fitted.value == entries and not fitted.changed


def test_resolved_posts_go_first_then_resolved_alerts_then_firing_posts() -> None:
    resolved = {f"acme-{n}": entry(hostile(f"acme-{n}", "resolved"), float(n)) for n in range(3)}
    firing = {f"acme-{n}": entry(hostile(f"acme-{n}"), float(n)) for n in range(3, 5)}
    entries = resolved | firing
    one = notify_table.encoded_size({"acme-0": entries["acme-0"]})
    bare = notify_table.encoded_size(notify_table.fit(entries, limit=1).value or {})
    assert bare == 2  # nothing fits in one byte: nothing written

    # Room for everything but about one alert's posts: the oldest resolved one loses them.
    fitted = notify_table.fit(entries, limit=notify_table.encoded_size(entries) - one // 2)
    assert fitted.compacted == ["acme-0"] and fitted.dropped == []
    assert (
        fitted.value is not None and fitted.value["acme-0"]["alert"]["drivers"]["top_posts"] == []
    )
    assert fitted.size <= notify_table.encoded_size(entries) - one // 2

    # Room for the firing alerts whole and no more: the resolved ones are dropped, the
    # oldest first, and the firing ones keep their posts.
    limit = notify_table.encoded_size(firing) + 50
    fitted = notify_table.fit(entries, limit=limit)
    assert fitted.value is not None and set(fitted.value) == set(firing)
    assert fitted.dropped == ["acme-0", "acme-1", "acme-2"] and fitted.compacted == []
    assert all(e["alert"]["drivers"]["top_posts"] for e in fitted.value.values())

    # Room for less: the oldest firing alert is stored without its posts.
    fitted = notify_table.fit(entries, limit=limit - one // 2)
    assert fitted.value is not None and fitted.compacted == ["acme-3"]
    assert fitted.value["acme-4"]["alert"]["drivers"]["top_posts"]
    # The caller's alerts (the notifier's, re-sent to Alertmanager) are left whole.
    assert all(e["alert"]["drivers"]["top_posts"] for e in entries.values())


def test_a_stored_alert_without_its_posts_is_still_paged() -> None:
    alert = entry(hostile("acme-1"), 1.0)
    fitted = notify_table.fit({"acme-1": alert}, limit=notify_table.encoded_size(alert) // 2)
    assert fitted.value is not None
    [item] = notify.owned_alerts([("acme", fitted.value)], {0}, 1).values()
    [page] = am_alerts(item.alert, [], LINKS, 0.0, 0.0)
    assert page["labels"]["alertname"] and "Terms: refund" in page["annotations"]["drivers"]


def test_seven_storms_of_hostile_posts_in_a_day_keep_the_brand_in_one_record() -> None:
    """The notify agent itself: six resolved storms and a firing one."""

    async def run() -> None:
        notifier = start_notifier(["http://127.0.0.1:9"], resend_s=3600)
        try:
            before = fitted_counter("compacted")
            with capture_logs() as logs:
                for n in range(6):
                    notifier.topic.send(hostile(f"acme-{n}", at_ms=n))
                    notifier.topic.send(hostile(f"acme-{n}", "resolved", at_ms=n + 1))
                notifier.topic.send(hostile("acme-6", at_ms=10))

                def written() -> bool:
                    value = notifier.app.table.get("acme")
                    return isinstance(value, dict) and "acme-6" in value

                await wait_until(written, 10)
            value = notifier.app.table["acme"]
            full = sum(
                notify_table.encoded_size(asdict(notify.Tracked(hostile(f"acme-{n}"), [], 0.0)))
                for n in range(7)
            )
            assert full > 1_048_576  # what the old code wrote
            assert notify_table.encoded_size(value) <= notify_table.CHANGELOG_VALUE_MAX_BYTES
            assert set(value) == {f"acme-{n}" for n in range(7)}
            assert value["acme-6"]["alert"]["drivers"]["top_posts"]  # the firing one whole
            assert fitted_counter("compacted") > before
            warned = [e for e in logs if e["event"] == "notify.table_entry_too_large"]
            assert warned and warned[-1]["saved"] is True
            assert json.loads(json.dumps(value)) == value
        finally:
            await notifier.stop()

    asyncio.run(run())
