"""The ``abandoned`` events of dropped detector states are sent again after a failed send.

Once a rebuild's dropped-state markers are saved, no later rebuild makes those events again, so
a send that failed (Kafka refusing the producer for a moment) used to lose them: the storm's
page then fired on until Alertmanager expired it."""

from __future__ import annotations

import asyncio

import pytest

from detectors.episodes import EpisodeEvent, Output
from streams.agents.detect import AbandonedSender


def abandoned(brand: str) -> EpisodeEvent:
    episode = {"brand": brand, "kind": "storm", "episode_id": f"{brand}-1", "level": "warning"}
    return EpisodeEvent(type="abandoned", at_ms=1_772_409_600_000, episode=episode)


class FlakyEmit:
    """An ``emit`` that fails its first ``failures`` calls, and records what it sent."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[list[Output]] = []

    async def __call__(self, outputs: list[Output]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("KafkaTimeoutError: the producer could not reach the brokers")
        self.sent.append(list(outputs))


def test_a_failed_send_is_retried_with_the_next_call_and_never_raises() -> None:
    emit = FlakyEmit(failures=2)
    sender = AbandonedSender(emit)
    first = [abandoned("telenor")]
    asyncio.run(sender.send(first))  # fails: kept, not raised into Faust's recovery
    assert sender.unsent == first and emit.sent == []
    asyncio.run(sender.send())  # fails again (the next record or timer tick)
    assert sender.unsent == first
    later = [abandoned("equinor")]
    asyncio.run(sender.send(later))  # a later rebuild's events go after the older ones
    assert emit.sent == [first + later]
    assert sender.unsent == []
    asyncio.run(sender.send())
    assert emit.sent == [first + later]  # nothing sent twice, no empty sends


@pytest.mark.parametrize("outputs", [[], ()])
def test_nothing_to_send_sends_nothing(outputs: list[Output]) -> None:
    emit = FlakyEmit(failures=0)
    asyncio.run(AbandonedSender(emit).send(outputs))
    assert emit.sent == []
