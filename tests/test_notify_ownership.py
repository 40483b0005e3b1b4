"""Which stored alerts a notifier re-sends: only those of the partitions it owns."""

from __future__ import annotations

from dataclasses import asdict

from streams.agents.notify import Tracked, owned_alerts


def entry(alert_id: str, status: str, partition: int) -> dict[str, object]:
    alert = {"alert_id": alert_id, "status": status, "brand": alert_id.split("-")[0]}
    return asdict(Tracked(alert, ["critical"], 100.0, partition))


def test_standby_copies_of_other_partitions_are_not_resent() -> None:
    """A standby copy can still say firing after the owner resolved the episode; a notifier
    that re-sent it would bring the page back."""
    values = [
        {"acme-1": entry("acme-1", "firing", 0)},
        {
            "nordlys-1": entry("nordlys-1", "firing", 3),
            "nordlys-0": entry("nordlys-0", "resolved", 3),
        },
    ]
    assert sorted(owned_alerts(values, {0, 1})) == ["acme-1"]
    assert sorted(owned_alerts(values, {3})) == ["nordlys-0", "nordlys-1"]
    assert owned_alerts(values, set()) == {}


def test_entries_saved_before_partitions_were_recorded_are_kept() -> None:
    old = {"alert": {"alert_id": "acme-1", "status": "firing"}, "severities": ["warning"]}
    tracked = owned_alerts([{"acme-1": old}], {2})
    assert tracked["acme-1"].partition == -1
    assert tracked["acme-1"].severities == ["warning"]
