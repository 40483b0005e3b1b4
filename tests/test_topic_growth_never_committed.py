"""``topics grow`` and topics the workers' consumer group never committed on, without Kafka:
unread scored mentions count (the detect stage reads them from the first record), unread alerts
only where the group reads ``alerts`` at all (it has no reader without Alertmanager)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    NotCoordinatorError,
)
from kafka.structs import OffsetAndMetadata

from streams import topic_growth
from streams.errors import StormvarselError
from streams.settings import Settings
from streams.topic_growth import GrowthPlan, check_read, unread_records


class Admin:
    """Offsets 100..1300 on every partition; the group's commits are ``committed``."""

    def __init__(self, committed: dict[TopicPartition, int]) -> None:
        self.committed = committed

    def list_group_offsets(self, groups: dict[str, Any]) -> dict[str, Any]:
        return {
            group: {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self.committed.items()}
            for group in groups
        }

    def list_partition_offsets(self, specs: dict[TopicPartition, Any]) -> dict[Any, Any]:
        return {
            tp: SimpleNamespace(offset=100 if spec == OffsetSpec.EARLIEST else 1300)
            for tp, spec in specs.items()
        }

    # plan_growth's other questions
    def list_topics(self) -> list[str]:
        return [f"p.{name}" for name in topic_growth.PIPELINE_TOPICS]

    def close(self) -> None:
        pass


TOPICS = {"p.mentions.scored": 2, "p.alerts": 2}


def test_unread_scored_mentions_count_though_the_group_never_committed_on_them() -> None:
    unread = unread_records(Admin({}), "g", TOPICS, read_if_consumed={"p.alerts"})
    assert unread == {"p.mentions.scored": {0: 1200, 1: 1200}, "p.alerts": {}}


def test_alerts_count_once_the_group_reads_them() -> None:
    admin = Admin(
        {TopicPartition("p.alerts", 0): 1300, TopicPartition("p.mentions.scored", 1): 1300}
    )
    unread = unread_records(admin, "g", TOPICS, read_if_consumed={"p.alerts"})
    assert unread == {"p.mentions.scored": {0: 1200, 1: 0}, "p.alerts": {0: 0, 1: 1200}}


def test_the_plan_refuses_and_says_nothing_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = Admin({})
    monkeypatch.setattr(topic_growth, "connect_admin", lambda settings, timeout_s: admin)
    monkeypatch.setattr(topic_growth, "refuse_while_workers_run", lambda admin, group: None)
    monkeypatch.setattr(
        topic_growth,
        "partition_counts",
        lambda admin, names: dict.fromkeys(names, 2),
    )
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", topic_prefix="p.", app_id="g")
    plan = topic_growth.plan_growth(settings, 3)
    everything = {0: 1200, 1: 1200}
    assert plan.unread == {
        "p.mentions": everything,
        "p.mentions.valid": everything,
        "p.mentions.scored": everything,
        "p.alerts": {},
    }
    with pytest.raises(StormvarselError) as refused:
        check_read(plan)
    message = str(refused.value)
    assert "p.mentions.scored: 2,400 records (partitions 0, 1)" in message
    assert "p.mentions: 2,400 records" in message and "p.mentions.valid: 2,400" in message
    assert "second detector" in message and "counted late" in message
    assert "Nothing of p.mentions or p.mentions.scored or p.mentions.valid" in message
    assert "p.alerts" not in message and "--force grows anyway" in message


def test_unread_mentions_before_the_brand_keys_refuse_the_growth_too() -> None:
    """A review grew the topics while the collectors went on: the backlog on the old
    partitions of ``mentions`` reached the detector behind newer mentions from the new ones,
    and 29 of 30 were counted late. Unread ``mentions`` and ``mentions.valid`` were called
    harmless and let through."""
    plan = GrowthPlan(
        3,
        {"p.mentions": 2, "p.mentions.valid": 2, "p.mentions.scored": 2, "p.alerts": 2},
        {"p.mentions": {0: 30, 1: 0}, "p.mentions.valid": {}, "p.mentions.scored": {0: 0}},
        before_keys=frozenset({"p.mentions", "p.mentions.valid"}),
    )
    with pytest.raises(StormvarselError) as refused:
        check_read(plan)
    message = str(refused.value)
    assert "p.mentions: 30 records (partition 0)" in message and "counted late" in message
    assert "second detector" not in message  # nothing keyed by brand is behind
    check_read(plan, force=True)  # --force grows anyway
    check_read(plan, force=True)


def test_a_plan_with_everything_read_passes() -> None:
    check_read(GrowthPlan(3, {}, {"p.mentions.scored": {0: 0}, "p.alerts": {}}))


@pytest.mark.parametrize(
    "error", [CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError]
)
def test_a_coordinator_not_ready_is_asked_again(error: type[Exception]) -> None:
    """A CI run's ``topics grow`` right after the broker started failed at once on "not the
    coordinator" (error 16): only "not available" was asked again."""

    class NotReady(Admin):
        calls = 0

        def list_group_offsets(self, groups: dict[str, Any]) -> dict[str, Any]:
            self.calls += 1
            if self.calls <= 2:
                raise error("moving")
            return super().list_group_offsets(groups)

    admin = NotReady({TopicPartition("p.alerts", 0): 1300})
    unread = unread_records(admin, "g", TOPICS, read_if_consumed={"p.alerts"})
    assert admin.calls == 3 and unread["p.alerts"] == {0: 0, 1: 1200}
