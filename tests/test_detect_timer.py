"""The detect stage's wall-clock timer closes only the partitions the worker owns.

The timer closes the buckets of a partition that went quiet, extrapolating its event-time
watermark, so that a silent brand's storm still resolves. It once went through every partition
the stage had state for, rebuilt only at the first record after a rebalance: a worker that had
given a partition away resolved its storms after the cool-down, under the same alert ids, while
their new owner still saw them (the notifier resolved the page mid-storm). A rebuild while it
sent results also broke its loop ("dictionary changed size during iteration").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from detectors.episodes import BucketSummary, EpisodeEvent, Output
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents import detect_state
from streams.agents.detect import PartitionTable, timer_partitions
from streams.agents.detect_state import PartitionState
from tests.storm_scenario import BRAND, T0, phases

LATENESS_MS = 60_000
IDLE_CLOSE_S = 120.0
HOURS_LATER = 6 * 3600.0


def stormy() -> PartitionState:
    """A partition whose brand is in a critical storm (its mentions stopped there)."""
    state = PartitionState(Replayer(None, LATENESS_MS))
    scenario = phases()
    for name in ("calm", "onset", "escalation"):
        for record in scenario[name]:
            state.replayer.feed(MentionEvent.from_record(record))
    return state


def calm(brand: str) -> PartitionState:
    state = PartitionState(Replayer(None, LATENESS_MS))
    state.replayer.feed(MentionEvent(brand=brand, event_ms=T0, sentiment="neutral"))
    return state


class Sent:
    """The timer's ``emit``: records what it was given, with the brands of the outputs."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []

    async def __call__(self, outputs: list[Output]) -> None:
        self.outputs.extend(outputs)

    def brands(self) -> set[str]:
        return {
            str(o.episode.get("brand")) if isinstance(o, EpisodeEvent) else o.brand
            for o in self.outputs
        }

    def episodes(self) -> list[tuple[str, str]]:
        return [
            (str(o.episode.get("brand")), str(o.type))
            for o in self.outputs
            if isinstance(o, EpisodeEvent)
        ]


def run_timer(
    partitions: dict[int, PartitionState], owned: Callable[[], Collection[int]], emit: Sent
) -> None:
    now = time.monotonic() + HOURS_LATER
    asyncio.run(detect_state.close_quiet(partitions, owned, now, IDLE_CLOSE_S, LATENESS_MS, emit))


def test_timer_resolves_a_quiet_storm_of_an_owned_partition() -> None:
    sent = Sent()
    run_timer({0: stormy()}, lambda: {0}, sent)
    assert (BRAND, "resolved") in sent.episodes()


def test_timer_leaves_a_partition_given_away_alone() -> None:
    """After a rebalance took partition 0 away, its storm is the new owner's: resolving it
    here would resolve the page while the storm goes on."""
    given_away, kept = stormy(), calm("acme")
    advanced_to = given_away.replayer._advanced_to
    sent = Sent()
    run_timer({0: given_away, 1: kept}, lambda: {1}, sent)
    assert sent.brands() == {"acme"}
    assert sent.episodes() == []
    assert given_away.replayer._advanced_to == advanced_to


def test_timer_does_nothing_while_a_rebalance_is_under_way() -> None:
    topic = "mentions.scored"
    assignment = {TP(topic, 0), TP(topic, 2), TP("mentions.valid", 1)}
    app: Any = SimpleNamespace(
        rebalancing=False, consumer=SimpleNamespace(assignment=lambda: assignment)
    )
    assert timer_partitions(app, topic) == {0, 2}
    app.rebalancing = True
    assert timer_partitions(app, topic) == set()
    sent = Sent()
    run_timer({0: stormy()}, lambda: timer_partitions(app, topic), sent)
    assert sent.outputs == []


def test_rebalance_while_the_timer_sends_results() -> None:
    """A rebalance completes while partition 0's results are sent: the stage's state is
    rebuilt (partition 1 given away, 2 and 3 taken over, 0 rebuilt). The timer goes on without
    touching the replaced or given-away state, and the next round closes the new state."""
    partitions = {0: calm("acme"), 1: stormy()}
    owned = {0, 1}
    given_away = partitions[1]
    given_away_to = given_away.replayer._advanced_to
    rebuilt = {0: calm("acme"), 2: calm("fjord"), 3: calm("saga")}
    rebuilt_to = {part: state.replayer._advanced_to for part, state in rebuilt.items()}

    class Rebalancing(Sent):
        rebalanced = False

        async def __call__(self, outputs: list[Output]) -> None:
            await super().__call__(outputs)
            if not self.rebalanced:
                self.rebalanced = True
                owned.clear()
                owned.update(rebuilt)
                partitions.clear()
                partitions.update(rebuilt)

    sent = Rebalancing()
    run_timer(partitions, lambda: owned, sent)  # no "dictionary changed size during iteration"
    assert sent.rebalanced
    assert sent.brands() == {"acme"}
    assert sent.episodes() == []  # the storm of partition 1, given away, stays open
    assert given_away.replayer._advanced_to == given_away_to
    assert {part: state.replayer._advanced_to for part, state in rebuilt.items()} == rebuilt_to

    sent = Sent()
    run_timer(partitions, lambda: owned, sent)
    assert sent.brands() == {"acme", "fjord", "saga"}


def test_idle_boundary() -> None:
    state = calm("acme")
    now = state.last_wall
    assert detect_state.idle_boundary(state, now + 1, IDLE_CLOSE_S, LATENESS_MS) is None
    boundary = detect_state.idle_boundary(state, now + 600, IDLE_CLOSE_S, LATENESS_MS)
    bucket_ms = state.replayer.bucket_ms
    assert boundary == (T0 + 600_000 - LATENESS_MS) // bucket_ms * bucket_ms
    state.replayer._advanced_to = boundary
    assert detect_state.idle_boundary(state, now + 600, IDLE_CLOSE_S, LATENESS_MS) is None
    assert detect_state.idle_boundary(PartitionState(Replayer()), now + 600, 1, 0) is None


def saved_storm() -> tuple[PartitionState, dict[str, Any], dict[str, Any]]:
    """A partition in a critical storm whose brand went quiet, its state saved by the stage."""
    state = PartitionState(Replayer(None, LATENESS_MS))
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    scenario = phases()
    records = [r for name in ("calm", "onset", "escalation") for r in scenario[name]]
    for offset, record in enumerate(records):
        mention = MentionEvent.from_record(record)
        kind = detect_state.disposition(state, mention.brand, offset)
        if detect_state.take(state, kind, offset, record, mention, pending, 0):
            detect_state.save(0, state, states, pending)
    return state, states, pending


def quiet_hours(
    partitions: dict[int, PartitionState],
    sent: Sent,
    save: Callable[[int, PartitionState], None] | None = None,
) -> None:
    """Six hours of the timer (every 30 s) over partitions that stay quiet."""
    start = time.monotonic()

    async def run() -> None:
        for tick in range(1, int(HOURS_LATER / 30)):
            now = start + tick * 30
            await detect_state.close_quiet(
                partitions,
                lambda: set(partitions),
                now,
                IDLE_CLOSE_S,
                LATENESS_MS,
                sent,
                *([save] if save is not None else []),
            )

    asyncio.run(run())


def test_a_storm_the_timer_resolved_stays_resolved_after_a_rebuild() -> None:
    """The timer resolves a quiet brand's storm. That was never saved (tables were written only
    with a mention of the partition): a rebuild had the storm open again, its buckets reported
    it critical and the timer resolved it a second time hours later."""
    state, states, pending = saved_storm()
    assert states[BRAND]["state"]["episodes"]["storm"]["end_ms"] is None

    def save(part: int, saved: PartitionState) -> None:
        assert saved.sending == 0  # Kafka has the outputs it covers
        detect_state.save(part, saved, states, pending)
        saved.dirty = False

    sent = Sent()
    quiet_hours({0: state}, sent, save)
    assert (BRAND, "resolved") in sent.episodes()
    assert "storm" not in states[BRAND]["state"]["episodes"] or (
        states[BRAND]["state"]["episodes"]["storm"]["end_ms"] is not None
    )
    rebuilt = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, state.replayer.config, LATENESS_MS
    )[0]
    assert (
        rebuilt.replayer.detectors[BRAND].to_state() == state.replayer.detectors[BRAND].to_state()
    )
    again = Sent()
    quiet_hours({0: rebuilt}, again, save)
    assert again.episodes() == []
    levels = {o.storm_level for o in again.outputs if isinstance(o, BucketSummary)}
    assert levels == {"normal"}


def test_what_the_timer_closed_is_saved_with_the_next_mention() -> None:
    """Without a save of its own (``save`` None), the timer leaves the partition dirty: the
    agent saves it with its next mention."""
    state, _, _ = saved_storm()
    state.dirty = False
    sent = Sent()
    quiet_hours({0: state}, sent)
    assert sent.outputs and state.dirty


def test_the_timer_writes_a_table_on_the_partitions_own_changelog_partition() -> None:
    """Outside stream iteration Faust has no event to take the changelog partition from."""

    class Table:
        def __init__(self) -> None:
            self.data: dict[str, Any] = {"old": 1}
            self.sent: list[tuple[int, str, Any, Any]] = []

        def send_changelog(
            self, partition: int, key: str, value: Any, value_serializer: Any = None
        ) -> None:
            self.sent.append((partition, key, value, value_serializer))

    table = Table()
    view = PartitionTable(table, 3)
    view["acme"] = {"state": 1}
    assert view.pop("old") == 1
    assert view.pop("gone", None) is None
    assert dict(view) == {"acme": {"state": 1}} == table.data
    assert table.sent == [(3, "acme", {"state": 1}, None), (3, "old", None, "raw")]


def test_old_mentions_do_not_keep_the_timer_from_resolving_a_quiet_storm() -> None:
    """The storm's brand goes silent; another brand of the partition gets a back-filled mention
    every 90 s, older than the partition's newest (counted late). Each used to restart the
    partition's quiet clock, so the timer never closed a bucket and the storm stayed open."""
    state = stormy()
    newest = state.replayer.max_event_ms
    assert newest is not None
    start = time.monotonic()
    state.last_wall = start
    sent = Sent()

    async def run() -> None:
        for tick in range(1, int(HOURS_LATER / 30)):
            now = start + tick * 30
            if tick % 3 == 0:
                old = MentionEvent(
                    brand="other", event_ms=newest - 2 * 3_600_000 + tick, sentiment="neutral"
                )
                kind = detect_state.disposition(state, "other", tick)
                sent.outputs.extend(detect_state.count(state, kind, tick, old, now))
            await detect_state.close_quiet(
                {0: state}, lambda: {0}, now, IDLE_CLOSE_S, LATENESS_MS, sent
            )

    asyncio.run(run())
    assert (BRAND, "resolved") in sent.episodes()


def test_a_mention_that_moves_the_watermark_restarts_the_quiet_clock() -> None:
    state = calm("acme")
    state.last_wall = 100.0
    later = MentionEvent(brand="acme", event_ms=T0 + 60_000, sentiment="neutral")
    detect_state.count(state, detect_state.Disposition.FEED, 1, later, 200.0)
    assert state.last_wall == 200.0
    earlier = MentionEvent(brand="acme", event_ms=T0 + 1_000, sentiment="neutral")
    detect_state.count(state, detect_state.Disposition.FEED, 2, earlier, 300.0)
    assert state.last_wall == 200.0
