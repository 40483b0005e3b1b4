"""The detect stage writes a table that covers an episode change only once Kafka has its alert.

The rebuild after a restart replays the pending mentions and saved states silently (what they
hold was sent before), so an alert record still in the producer when a kill kept the table
write was lost for good. ``tests/test_detect_state.py`` kills the stage between every alert and
the table writes before it; this checks the live ``emit`` really waits for Faust's delivery.
"""

from __future__ import annotations

import asyncio
from typing import Any

from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents import detect_state
from streams.agents.detect import sender
from streams.agents.detect_state import Disposition, PartitionState
from tests.storm_scenario import phases

LATENESS_MS = 60_000


class SlowTopic:
    """A Faust topic whose producer takes a record (``publish_message``) and whose delivery
    future Kafka completes later (here: the test)."""

    def __init__(self) -> None:
        self.deliveries: list[asyncio.Future[Any]] = []

    def as_future_message(self, **_record: Any) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery

    async def publish_message(self, delivery: asyncio.Future[Any]) -> None:
        return None


def test_the_pending_entry_of_an_episode_change_waits_for_its_alert_record() -> None:
    records = [r for name in ("calm", "onset") for r in phases()[name]]
    state = PartitionState(Replayer(None, LATENESS_MS))
    pending: dict[str, Any] = {}
    topic = SlowTopic()
    emit = sender(topic, {})  # type: ignore[arg-type]

    async def run() -> None:
        for offset, record in enumerate(records):
            mention = MentionEvent.from_record(record)
            outputs = detect_state.count(state, Disposition.FEED, offset, mention)
            settling = asyncio.ensure_future(
                detect_state.settle(
                    state, Disposition.FEED, offset, record, mention, outputs, pending, 0, emit
                )
            )
            await asyncio.sleep(0)
            if not topic.deliveries or topic.deliveries[-1].done():
                await settling
                continue
            # An episode change is with the producer: nothing that covers it is written yet,
            # and the partition is not saved meanwhile.
            key = detect_state.pending_key(mention.brand, offset)
            for _ in range(3):
                await asyncio.sleep(0)
            assert not settling.done() and key not in pending
            assert state.sending == 1
            assert not detect_state.may_save(state, state.last_save + 3600, 5.0)
            topic.deliveries[-1].set_result(None)
            await settling
            assert key in pending and state.sending == 0
            assert detect_state.may_save(state, state.last_save + 3600, 5.0)
            return
        raise AssertionError("the storm scenario's onset should open an episode")

    asyncio.run(run())
