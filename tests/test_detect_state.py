"""The detect stage's tables survive a kill at any moment: the restarted stage ends with exactly
the pure core's detectors and episodes.

The stage's bookkeeping (``streams.agents.detect_state``) runs here on tables that record their
changelog. A kill keeps, of each table's changelog, everything flushed at the last offset commit
and any further prefix (the two changelogs are flushed independently); Kafka then redelivers from
the committed offset. This is the integration test's SIGKILL (``tests/test_detect_stage.py``)
made exhaustive and deterministic.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest

from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent, Output, canonical_json
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents import detect_state
from streams.agents.detect_state import Disposition, PartitionState
from tests.storm_scenario import phases
from tests.test_detect_stage import AIRLINES, scored_airline_records

LATENESS_MS = 60_000
SAVE_EVERY = 150  # records between saves (the worker: 5 s of wall time)
COMMIT_EVERY = 97  # records between offset commits (Faust: about 3 s)


#: What the stage wrote, in order: ("states" or "pending", changelog length), ("alert", the
#: episode change, once Kafka has it) and ("commit", the next offset Kafka would deliver).
Journal = list[tuple[str, Any]]


class ChangelogTable(MutableMapping[str, Any]):
    """A dict that also keeps its changelog: every set and delete, in order (and in a journal
    shared with other tables and the alerts, if given one)."""

    def __init__(
        self,
        ops: list[tuple[str, Any]] | None = None,
        journal: Journal | None = None,
        name: str = "",
    ) -> None:
        self.data: dict[str, Any] = {}
        self.ops: list[tuple[str, Any]] = []
        self.journal: Journal | None = None
        for key, value in ops or []:
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value
        self.journal = journal
        self.name = name

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        frozen = json.loads(json.dumps(value))  # what the changelog holds
        self.data[key] = frozen
        self.ops.append((key, frozen))
        self._journal()

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.ops.append((key, None))
        self._journal()

    def _journal(self) -> None:
        if self.journal is not None:
            self.journal.append((self.name, len(self.ops)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Mark:
    """Where the stage stood once it had handled one offset."""

    committed: int  # the next offset Kafka would deliver after a restart
    flushed: tuple[int, int]  # changelog lengths (states, pending) at that commit
    written: tuple[int, int]  # changelog lengths now
    episodes: int  # episode changes emitted so far


@dataclass
class Run:
    episodes: list[str]
    marks: list[Mark]
    state: PartitionState


def episodes_of(outputs: list[Output]) -> list[str]:
    return [canonical_json(o.to_dict()) for o in outputs if isinstance(o, EpisodeEvent)]


def run_stage(
    records: list[dict[str, Any]],
    states: ChangelogTable,
    pending: ChangelogTable,
    state: PartitionState,
    start: int,
    journal: Journal | None = None,
    save_every: int = SAVE_EVERY,
    clock: detect_state.FlushClock | None = None,
) -> Run:
    """The detect agent's loop over ``records[start:]`` (one partition, offsets = indices), with
    its order of sends and table writes (``journal``: see :data:`Journal`); a save every
    ``save_every`` records, and ``clock`` told of the flush before each commit."""
    episodes: list[str] = []
    marks: list[Mark] = []

    async def emit(outputs: list[Output]) -> None:
        sent = episodes_of(outputs)
        episodes.extend(sent)
        if journal is not None:
            journal.extend(("alert", episode) for episode in sent)

    async def loop() -> None:
        committed = start
        flushed = (len(states.ops), len(pending.ops))
        for offset in range(start, len(records)):
            record = records[offset]
            mention = MentionEvent.from_record(record)
            kind = detect_state.disposition(state, mention.brand, offset)
            if kind is not Disposition.SKIP:
                outputs = detect_state.count(state, kind, offset, mention)
                await detect_state.settle(
                    state, kind, offset, record, mention, outputs, pending, 0, emit
                )
            if offset % save_every == 0 and detect_state.may_save(state, state.last_save, 0.0):
                detect_state.save(0, state, states, pending, clock)
                state.dirty = False
            if offset % COMMIT_EVERY == 0:
                committed = offset + 1  # Faust flushes the producer, then commits
                flushed = (len(states.ops), len(pending.ops))
                if clock is not None:
                    clock.flush_done(clock.flush_started())
                if journal is not None:
                    journal.append(("commit", committed))
            written = (len(states.ops), len(pending.ops))
            marks.append(Mark(committed, flushed, written, len(episodes)))

    asyncio.run(loop())
    return Run(episodes, marks, state)


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    if not AIRLINES.exists():
        pytest.skip(f"shared data not found at {AIRLINES}")
    return scored_airline_records()


@pytest.fixture(scope="module")
def pure(records: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    replayer = Replayer(lateness_ms=LATENESS_MS)
    episodes = [e for r in records for e in episodes_of(replayer.feed(MentionEvent.from_record(r)))]
    return episodes, {b: canonical_json(d.to_state()) for b, d in replayer.detectors.items()}


@pytest.fixture(scope="module")
def uninterrupted(records: list[dict[str, Any]]) -> tuple[Run, ChangelogTable, ChangelogTable]:
    states, pending = ChangelogTable(), ChangelogTable()
    run = run_stage(records, states, pending, PartitionState(Replayer(None, LATENESS_MS)), 0)
    return run, states, pending


def test_the_stage_without_a_kill_is_the_pure_core(
    uninterrupted: tuple[Run, ChangelogTable, ChangelogTable],
    pure: tuple[list[str], dict[str, str]],
) -> None:
    run = uninterrupted[0]
    assert run.episodes == pure[0]
    assert len(pure[0]) >= 10, "the airline data should give several episode changes"
    got = {b: canonical_json(d.to_state()) for b, d in run.state.replayer.detectors.items()}
    assert got == pure[1]


# Kill points (fractions of the stream) and what survived beyond the last commit: nothing of
# either changelog, all of the states' and none of the pending (a save went out, the pending
# entries before it did not), the reverse, or a random prefix of each.
KILLS = [
    (0.3, "none"),
    (0.45, "states-only"),
    (0.5, "pending-only"),
    (0.62, "states-only"),
    (0.7, "random"),
    (0.81, "states-only"),
    (0.93, "random"),
]


@pytest.mark.parametrize(("fraction", "survived"), KILLS)
def test_a_kill_at_any_moment_ends_with_the_pure_cores_detectors_and_episodes(
    records: list[dict[str, Any]],
    uninterrupted: tuple[Run, ChangelogTable, ChangelogTable],
    pure: tuple[list[str], dict[str, str]],
    fraction: float,
    survived: str,
) -> None:
    kill_and_restart(records, uninterrupted, pure, fraction, survived)


#: Records between saves when saves come faster than commits: an episode change's save, or the
#: timer's, soon after another, or a backlog caught up at speed.
FAST_SAVES = 23


@pytest.fixture(scope="module")
def uninterrupted_fast_saves(
    records: list[dict[str, Any]],
) -> tuple[Run, ChangelogTable, ChangelogTable]:
    states, pending = ChangelogTable(), ChangelogTable()
    run = run_stage(
        records,
        states,
        pending,
        PartitionState(Replayer(None, LATENESS_MS)),
        0,
        save_every=FAST_SAVES,
        clock=detect_state.FlushClock(),
    )
    return run, states, pending


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.62, 0.81])
def test_several_saves_between_two_commits_lose_nothing_at_a_kill(
    records: list[dict[str, Any]],
    uninterrupted_fast_saves: tuple[Run, ChangelogTable, ChangelogTable],
    pure: tuple[list[str], dict[str, str]],
    fraction: float,
) -> None:
    """A save deleted the pending entries of the save before it. With two saves between two
    commits, a kill could keep those deletions (the pending changelog flushed) and lose the
    state writes that covered them (the states changelog not): the mentions in between were
    in neither, and their redelivered records were skipped as replayed (30 of 120 lost in the
    reviewer's reproduction). The deletions now wait until a flush has the covering save."""
    kill_and_restart(
        records,
        uninterrupted_fast_saves,
        pure,
        fraction,
        "pending-only",
        save_every=FAST_SAVES,
        clock=detect_state.FlushClock(),
    )


def kill_and_restart(
    records: list[dict[str, Any]],
    uninterrupted: tuple[Run, ChangelogTable, ChangelogTable],
    pure: tuple[list[str], dict[str, str]],
    fraction: float,
    survived: str,
    **stage: Any,
) -> None:
    """Kill the stage ``fraction`` of the way through, keeping of each changelog what
    ``survived`` says, restart it from the tables, and check it ends as the pure core did."""
    run, states_log, pending_log = uninterrupted
    mark = run.marks[int(len(records) * fraction)]
    flushed_states, flushed_pending = mark.flushed
    written_states, written_pending = mark.written
    rng = random.Random(mark.committed)
    keep_states = {
        "none": flushed_states,
        "states-only": written_states,
        "pending-only": flushed_states,
        "random": rng.randint(flushed_states, written_states),
    }[survived]
    keep_pending = {
        "none": flushed_pending,
        "states-only": flushed_pending,
        "pending-only": written_pending,
        "random": rng.randint(flushed_pending, written_pending),
    }[survived]
    states = ChangelogTable(states_log.ops[:keep_states])
    pending = ChangelogTable(pending_log.ops[:keep_pending])

    rebuilt = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, run.state.replayer.config, LATENESS_MS
    )
    state = rebuilt.get(0) or PartitionState(Replayer(None, LATENESS_MS))
    after = run_stage(records, states, pending, state, mark.committed, **stage)

    before = run.episodes[: mark.episodes]
    assert set(before) | set(after.episodes) == set(pure[0])
    got = {b: canonical_json(d.to_state()) for b, d in after.state.replayer.detectors.items()}
    assert got == pure[1], "a detector's figures differ from the pure core's after the restart"


def test_a_brand_first_seen_ahead_of_the_watermark_rebuilds_to_the_same_state() -> None:
    """Brand X's first mention is dated ten buckets ahead of its arrival; brand Y moves the
    watermark on; a mention of X for a bucket the watermark has passed is late. A kill during
    the next save keeps its pending deletions but loses its state writes: the rebuilt X must
    still count that mention late, as the live one did, from its own saved state (not from the
    partition's lowest saved watermark, which is behind)."""
    state = PartitionState(Replayer(None, 0))
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    bucket = state.replayer.bucket_ms
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % bucket
    stream = [
        ("Y", t0 + 1, None),
        ("X", t0 + 10 * bucket, t0 + 2),  # dated ahead of its arrival
        ("Y", t0 + bucket + 1, None),
        ("Y", t0 + 3 * bucket + 1, None),
        ("X", t0 + 2 * bucket + 5, t0 + 3 * bucket + 2),  # its bucket is closed: late
        ("Y", t0 + 4 * bucket + 1, None),
    ]
    before_kill: dict[str, Any] = {}
    for offset, (brand, at, received) in enumerate(stream):
        record: dict[str, Any] = {
            "id": str(offset),
            "text": "hi",
            "created_at_ms": at,
            "brand": brand,
            "sentiment": {"label": "neutral"},
        }
        if received is not None:
            record["received_at_ms"] = received
        mention = MentionEvent.from_record(record)
        kind = detect_state.disposition(state, brand, offset)
        if detect_state.take(state, kind, offset, record, mention, pending, 0):
            if offset == len(stream) - 1:
                before_kill = copy.deepcopy(states)  # this save's state writes are lost
            detect_state.save(0, state, states, pending)
    live = state.replayer.detectors["X"]
    assert live.late_total == 1
    rebuilt = detect_state.rebuild(
        list(before_kill.items()), list(pending.items()), {0}, DetectorConfig(), 0
    )
    assert rebuilt[0].replayer.detectors["X"].to_state() == live.to_state()


def test_an_episode_change_is_sent_even_if_a_kill_keeps_the_table_writes_after_it() -> None:
    """The rebuild replays pending mentions and saved states silently: what they hold was sent
    before the kill. A kill that kept the pending entry of the record that opened (or
    resolved) a storm, but not the alert record of that change, lost the change for good (a
    storm never paged, or a page that never resolved). The stage now has Kafka take the
    alert records before it writes a table that covers them: here a kill keeps every table
    write before an alert record, never that record, and the change still goes out."""
    scenario = phases()
    records = [r for name in ("calm", "onset", "escalation", "aftermath") for r in scenario[name]]
    journal: Journal = []
    states = ChangelogTable(journal=journal, name="states")
    pending = ChangelogTable(journal=journal, name="pending")
    run = run_stage(
        records, states, pending, PartitionState(Replayer(None, LATENESS_MS)), 0, journal
    )
    kinds = [json.loads(e)["type"] for e in run.episodes]
    assert {"opened", "escalated", "resolved"} <= set(kinds), kinds
    for kill in [i for i, (what, _) in enumerate(journal) if what == "alert"]:
        kept = journal[:kill]
        sent = {value for what, value in kept if what == "alert"}
        committed = max([value for what, value in kept if what == "commit"], default=0)
        survived = {
            name: max([value for what, value in kept if what == name], default=0)
            for name in ("states", "pending")
        }
        after_states = ChangelogTable(states.ops[: survived["states"]])
        after_pending = ChangelogTable(pending.ops[: survived["pending"]])
        rebuilt = detect_state.rebuild(
            list(after_states.items()), list(after_pending.items()), {0}, DetectorConfig(), 60_000
        )
        state = rebuilt.get(0) or PartitionState(Replayer(None, LATENESS_MS))
        after = run_stage(records, after_states, after_pending, state, committed)
        lost = set(run.episodes) - sent - set(after.episodes)
        assert not lost, [(json.loads(e)["type"], json.loads(e)["at"]) for e in lost]


def test_a_mention_dated_a_week_ahead_is_counted_in_the_dated_ahead_metric() -> None:
    """The detector drops a mention dated more than a week ahead; the stage says so in
    ``stormvarsel_mentions_dated_ahead`` instead of losing it unseen. One a day ahead counts."""
    from prometheus_client import REGISTRY

    def dated_ahead() -> float:
        return REGISTRY.get_sample_value("stormvarsel_mentions_dated_ahead_total") or 0.0

    day = 86_400_000
    t0 = 1_772_409_600_000
    state = detect_state.fresh(DetectorConfig(), LATENESS_MS)
    before = dated_ahead()
    now = MentionEvent(brand="acme", event_ms=t0, sentiment="neutral", received_ms=t0)
    detect_state.count(state, Disposition.FEED, 0, now)
    tomorrow = MentionEvent(brand="acme", event_ms=t0 + day, sentiment="neutral", received_ms=t0)
    detect_state.count(state, Disposition.FEED, 1, tomorrow)
    assert dated_ahead() == before
    far = MentionEvent(brand="acme", event_ms=t0 + 8 * day, sentiment="negative", received_ms=t0)
    detect_state.count(state, Disposition.FEED, 2, far)
    assert dated_ahead() == before + 1
    assert state.replayer.detectors["acme"].dropped_total == 1
    unstamped = MentionEvent(brand="globex", event_ms=t0 + 9 * day, sentiment="neutral")
    detect_state.count(state, Disposition.FEED, 3, unstamped)  # against the stream's clock
    assert dated_ahead() == before + 2
    assert state.replayer.detectors["globex"].dropped_total == 1
