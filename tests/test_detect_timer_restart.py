"""A quiet partition's storm resolves after a restart when it would have without one.

The detect stage's wall-clock timer moves a quiet partition's watermark on by the wall time since
its newest mention. A rebuild started that quiet clock at the rebuild: a worker down 6 h right
after a storm's last mention resolved the storm 3 h after the restart, 9 h after the brand went
silent (3 h without the restart). The tables now say when each save and pending mention was
written (``wall``), and a rebuilt partition's clock goes back by the time it went unwatched, once
the stage has read what the partition held at the rebuild: mentions queued there during the
downtime must not find their buckets closed (``detect_state.resume``).

Times: the scenario's mentions are fed as they happen (the wall clock is their event time), and
the timer runs every 30 s, as the existing timer tests run it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from detectors.episodes import EpisodeEvent, Output
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents import detect_state
from streams.agents.detect_state import PartitionState
from tests.storm_scenario import BRAND, phases

LATENESS_MS = 60_000
IDLE_CLOSE_S = 120.0
HOUR_MS = 3_600_000
TICK_S = 30


class Storm:
    """The storm of ``tests/storm_scenario.py`` fed and saved as the stage does (a save whenever
    buckets closed), its brand silent after its last mention (``silent_ms``, at monotonic time
    ``silent_mono``)."""

    def __init__(self) -> None:
        self.state = PartitionState(Replayer(None, LATENESS_MS))
        self.states: dict[str, Any] = {}
        self.pending: dict[str, Any] = {}
        scenario = phases()
        self.records = [r for name in ("calm", "onset", "escalation") for r in scenario[name]]
        mentions = [MentionEvent.from_record(r) for r in self.records]
        self.silent_ms = max(m.clock_ms for m in mentions)
        self.silent_mono = time.monotonic()
        for offset, (record, mention) in enumerate(zip(self.records, mentions, strict=True)):
            wall_ms = mention.clock_ms  # fed as it happens
            mono = self.silent_mono + (wall_ms - self.silent_ms) / 1000
            kind = detect_state.disposition(self.state, mention.brand, offset)
            if detect_state.take(
                self.state, kind, offset, record, mention, self.pending, 0, mono, wall_ms
            ):
                detect_state.save(0, self.state, self.states, self.pending, wall_ms=wall_ms)
        self.end = len(self.records)  # the partition's end offset

    def rebuild(self, down_ms: int) -> PartitionState:
        """The partition rebuilt from its tables ``down_ms`` after the brand went silent."""
        return detect_state.rebuild(
            list(self.states.items()),
            list(self.pending.items()),
            {0},
            None,
            LATENESS_MS,
            wall_ms=self.silent_ms + down_ms,
        )[0]


def fed_storm() -> Storm:
    """A :class:`Storm` of its own (fed afresh: the compiled detectors cannot be deep-copied)."""
    return Storm()


def resolved(
    state: PartitionState, mono0: float, wall0_ms: int, silent_ms: int, hours: float = 12
) -> tuple[float, float] | None:
    """Run the timer from monotonic ``mono0`` (wall time ``wall0_ms``) until the storm resolves:
    (hours after the silence when the timer sent ``resolved``, hours after the silence its
    bucket ended), or None if it did not within ``hours``."""

    async def run() -> tuple[float, float] | None:
        for tick in range(1, int(hours * 3600 / TICK_S)):
            sent: list[Output] = []

            async def emit(outputs: list[Output], sent: list[Output] = sent) -> None:
                sent.extend(outputs)

            await detect_state.close_quiet(
                {0: state}, lambda: {0}, mono0 + tick * TICK_S, IDLE_CLOSE_S, LATENESS_MS, emit
            )
            for output in sent:
                if isinstance(output, EpisodeEvent) and output.type == "resolved":
                    at = wall0_ms + tick * TICK_S * 1000
                    return (at - silent_ms) / HOUR_MS, (output.at_ms - silent_ms) / HOUR_MS
        return None

    return asyncio.run(run())


def read_up_to(end: int, read_to: int) -> tuple[Any, Any]:
    """``resume_clocks``'s Kafka: the partition's end offset, and how far the stage has read."""

    async def ends(parts: list[int]) -> Mapping[int, int]:
        return {part: end for part in parts}

    async def positions(parts: list[int]) -> Mapping[int, int] | None:
        return {part: read_to for part in parts}

    return ends, positions


def resume(state: PartitionState, end: int, read_to: int) -> list[int]:
    ends, positions = read_up_to(end, read_to)
    return asyncio.run(detect_state.resume_clocks({0: state}, lambda: {0}, ends, positions))


def test_without_a_restart_the_timer_resolves_the_storm_3_hours_after_the_silence() -> None:
    storm = fed_storm()
    at = resolved(storm.state, storm.silent_mono, storm.silent_ms, storm.silent_ms)
    assert at is not None
    sent_h, ended_h = at
    assert 2.9 <= sent_h <= 3.1 and 2.9 <= ended_h <= 3.1


def test_an_hour_down_resolves_the_storm_as_without_the_restart() -> None:
    """Down an hour right after the last mention: resolved 3 h after the silence, not 4 h."""
    storm = fed_storm()
    before = resolved(storm.state, storm.silent_mono, storm.silent_ms, storm.silent_ms)
    state = storm.rebuild(HOUR_MS)
    assert 3599 <= state.unwatched_s <= 3600
    assert resume(state, storm.end, storm.end) == [0]
    after = resolved(state, time.monotonic(), storm.silent_ms + HOUR_MS, storm.silent_ms)
    assert before is not None and after is not None
    assert abs(after[0] - before[0]) <= 2 * TICK_S / 3600, (before, after)  # old code: 4.0 h
    assert after[1] == before[1]  # the same bucket


def test_six_hours_down_resolves_the_storm_at_once() -> None:
    """The reviewer's reproduction: down 6 h right after the last mention, the storm resolved
    9 h after the silence. Its 3 h are over by the restart: it resolves at the first rounds."""
    storm = fed_storm()
    before = resolved(storm.state, storm.silent_mono, storm.silent_ms, storm.silent_ms)
    state = storm.rebuild(6 * HOUR_MS)
    assert resume(state, storm.end, storm.end) == [0]
    after = resolved(state, time.monotonic(), storm.silent_ms + 6 * HOUR_MS, storm.silent_ms)
    assert before is not None and after is not None
    assert after[0] <= 6 + 2 * TICK_S / 3600, after  # old code: 9.0 h
    assert after[1] == before[1]


def test_a_rebuild_right_after_a_save_keeps_the_quiet_clock_as_it_was() -> None:
    """No downtime: the rebuilt clock is the one a rebuild always gave, and nothing waits."""
    storm = fed_storm()
    state = storm.rebuild(0)
    assert state.unwatched_s == 0
    assert resume(state, storm.end, storm.end) == []
    old_tables = detect_state.rebuild(
        [(k, {**v, "wall": None}) for k, v in storm.states.items()],
        [(k, {**v, "wall": None}) for k, v in storm.pending.items()],
        {0},
        None,
        LATENESS_MS,
    )[0]
    assert abs(state.last_wall - old_tables.last_wall) < 1
    after = resolved(state, time.monotonic(), storm.silent_ms, storm.silent_ms)
    assert after is not None and 2.9 <= after[0] <= 3.1


def test_a_rebuild_right_after_the_timers_save_goes_on_as_before() -> None:
    """The timer had closed an hour of a quiet partition and saved it; a restart right then
    goes on from there (the saves' lead, as before), and gets nothing more on top."""
    storm = fed_storm()
    state = storm.state
    wall_ms = [storm.silent_ms]

    def save(part: int, saved: PartitionState) -> None:
        detect_state.save(part, saved, storm.states, storm.pending, wall_ms=wall_ms[0])
        saved.dirty = False

    async def an_hour() -> None:
        for tick in range(1, 3600 // TICK_S + 1):
            wall_ms[0] = storm.silent_ms + tick * TICK_S * 1000

            async def emit(outputs: list[Output]) -> None:
                pass

            now = storm.silent_mono + tick * TICK_S
            await detect_state.close_quiet(
                {0: state}, lambda: {0}, now, IDLE_CLOSE_S, LATENESS_MS, emit, save
            )

    asyncio.run(an_hour())
    assert storm.states[BRAND]["wall"] >= storm.silent_ms + HOUR_MS - 120_000
    rebuilt = detect_state.rebuild(
        list(storm.states.items()),
        list(storm.pending.items()),
        {0},
        None,
        LATENESS_MS,
        wall_ms=storm.states[BRAND]["wall"],
    )[0]
    assert rebuilt.unwatched_s == 0
    wall0 = storm.states[BRAND]["wall"]
    after = resolved(rebuilt, time.monotonic(), wall0, storm.silent_ms)
    assert after is not None and 2.9 <= after[0] <= 3.1, after


def test_a_mention_queued_during_the_downtime_is_not_counted_late() -> None:
    """A mention written to the partition 2 h into a 6 h downtime is still queued after the
    restart. The clock waits until the stage has read the partition's end as of the rebuild;
    moved on at once, the timer closed its bucket first and it was counted late."""
    storm = fed_storm()
    queued_ms = storm.silent_ms + 2 * HOUR_MS
    record = {**storm.records[0], "id": "queued", "created_at_ms": queued_ms}
    queued = MentionEvent.from_record(record)
    end = storm.end + 1  # the queued mention is the last record of the partition

    def after_restart(read_to: int) -> int:
        """Late mentions of the brand once the queued one is counted, the stage having read up
        to ``read_to`` when the timer first ran."""
        state = storm.rebuild(6 * HOUR_MS)
        resume(state, end, read_to)
        start = time.monotonic()
        sent: list[Output] = []

        async def emit(outputs: list[Output]) -> None:
            sent.extend(outputs)

        asyncio.run(
            detect_state.close_quiet(
                {0: state}, lambda: {0}, start + TICK_S, IDLE_CLOSE_S, LATENESS_MS, emit
            )
        )
        kind = detect_state.disposition(state, BRAND, storm.end)
        detect_state.take(state, kind, storm.end, record, queued, {}, 0, start + TICK_S)
        assert state.unwatched_s == 0  # the clock restarts from the queued mention
        return state.replayer.detectors[BRAND].late_total

    late_before = storm.state.replayer.detectors[BRAND].late_total
    assert after_restart(read_to=storm.end) == late_before  # not read yet: the clock waits
    assert after_restart(read_to=end) == late_before + 1  # what the wait prevents


def test_tables_written_before_the_fix_keep_the_old_clock() -> None:
    """Without ``wall`` (an older release's tables), or with a replayed mention that moved the
    watermark but does not say when it was counted, the downtime is not known."""
    storm = fed_storm()
    states = [
        (k, {key: v for key, v in value.items() if key != "wall"})
        for k, value in storm.states.items()
    ]
    pending = [
        (k, {key: v for key, v in value.items() if key != "wall"})
        for k, value in storm.pending.items()
    ]
    for tables in ((states, pending), (list(storm.states.items()), pending)):
        state = detect_state.rebuild(
            *tables, {0}, None, LATENESS_MS, wall_ms=storm.silent_ms + 6 * HOUR_MS
        )[0]
        assert state.unwatched_s == 0
    # Saves without it, mentions with it: the mentions say.
    state = detect_state.rebuild(
        states,
        list(storm.pending.items()),
        {0},
        None,
        LATENESS_MS,
        wall_ms=storm.silent_ms + 6 * HOUR_MS,
    )[0]
    assert 6 * 3600 - 1 <= state.unwatched_s <= 6 * 3600


def test_the_clock_never_passes_the_wall_clock() -> None:
    """A partition whose mentions were dated after its last save's wall time (a worker's clock
    behind) gets back only as much as keeps its clock behind the wall clock."""
    state = PartitionState(Replayer(None, LATENESS_MS))
    state.replayer.max_event_ms = 10 * HOUR_MS
    # A whole number of seconds: `now + 3600 - now` is exact only for some monotonic values.
    now = state.last_wall = 5000.0
    assert detect_state.unwatched_s(state, 5 * HOUR_MS, 12 * HOUR_MS, now) == 2 * 3600
    assert detect_state.unwatched_s(state, 11 * HOUR_MS, 12 * HOUR_MS, now) == 3600
    # The timer had moved it on an hour already: an hour less.
    assert detect_state.unwatched_s(state, 5 * HOUR_MS, 12 * HOUR_MS, now + 3600) == 3600
    assert detect_state.unwatched_s(state, 13 * HOUR_MS, 12 * HOUR_MS, now) == 0  # went back
    assert detect_state.unwatched_s(state, None, 12 * HOUR_MS, now) == 0


def test_the_clock_is_not_resumed_on_a_partition_given_away_or_rebuilt() -> None:
    storm = fed_storm()
    state = storm.rebuild(6 * HOUR_MS)
    last_wall = state.last_wall
    ends, positions = read_up_to(storm.end, storm.end)
    # Not read far enough, or Kafka did not answer: it waits.
    assert resume(state, storm.end, storm.end - 1) == []
    assert state.resume_at == storm.end

    async def no_answer(parts: list[int]) -> Mapping[int, int] | None:
        return None

    assert asyncio.run(detect_state.resume_clocks({0: state}, lambda: {0}, ends, no_answer)) == []
    # Given away (or a rebalance under way): left to the new owner.
    assert asyncio.run(detect_state.resume_clocks({0: state}, lambda: set(), ends, positions)) == []
    # Rebuilt while Kafka was asked: the new state is the next round's.
    partitions = {0: state}
    rebuilt = storm.rebuild(6 * HOUR_MS)

    async def rebuilding(parts: list[int]) -> Mapping[int, int] | None:
        partitions[0] = rebuilt
        return {part: storm.end for part in parts}

    assert asyncio.run(detect_state.resume_clocks(partitions, lambda: {0}, ends, rebuilding)) == []
    assert state.last_wall == last_wall and rebuilt.unwatched_s > 0
    assert resume(state, storm.end, storm.end) == [0]
    assert last_wall - state.last_wall >= 6 * 3600 - 1
