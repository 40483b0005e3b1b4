"""The detect stage's durable state, kept apart from Faust so that it can be tested on plain dicts.

Two mappings (changelog-backed Faust tables in the worker) hold a partition's detectors:

- ``states``: brand -> ``{"partition", "state", "max", "adv", "offset", "wall"}``, a brand's
  detector as of a save, the partition's watermark then, the highest source offset it covered
  and the wall-clock time of the save (epoch ms);
- ``pending``: ``brand|offset`` -> ``{"partition", "offset", "mention", "wall"}``, every mention
  observed since (with the wall-clock time it was counted at), deleted by a save made once Kafka
  has the save that covers it (:class:`FlushClock`: the two tables' changelogs are flushed
  independently, so a kill may keep the old state while deletions went through).

Readers ignore keys they do not know, and tables without ``wall`` (older releases) still
rebuild. The wall times tell a rebuild how long a partition went unwatched: the wall-clock
timer moves a quiet partition's watermark on by the wall time since its newest mention, and a
rebuilt partition's quiet clock gets the downtime back once the stage has read what the
partition held at the rebuild (:func:`resume`), so a quiet brand's storm resolves when it would
have without the restart, and the mentions queued during the downtime are not made late.

What a kill can lose is a *suffix* of each changelog partition (a changelog partition is written
in order), never a record whose offset Kafka already committed (Faust flushes the producer before
committing). So after a restart every redelivered record is one of:

- replayed from ``pending`` already (its offset is at most the highest replayed one): skipped;
- covered by its brand's saved state (offset at most the brand's saved offset), even though its
  pending entry was lost or deleted: it only moves the watermark, as it did;
- neither: its pending entry was lost with the changelog's suffix, so it was never counted
  anywhere and is fed again, in its original order.

The rebuild replays silently: what the tables hold was sent before the kill. So the alert
records of a record's episode changes are in Kafka before the table writes that cover them:
:func:`settle` writes the record's pending entry once Kafka has taken them, and no partition is
saved while outputs of it are in flight (``PartitionState.sending``).

A brand's saved offset speaks only for that brand: the rebuild no longer skips a record because
the partition's newest save covered a higher offset (a brand left out of that save would lose
it). ``tests/test_detect_state.py`` kills the stage at many moments, with every combination of
what the two changelogs kept, and checks the pure core's detectors and episodes come out.
"""

from __future__ import annotations

import enum
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from detectors.brand import (
    BrandDetector,
    StateMismatch,
    abandoned_episodes,
    config_fingerprint,
    first_report,
)
from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent, Output
from detectors.events import MentionEvent, too_far_ahead
from detectors.replay import Carried, Replayer, Seed
from streams import encoded_values, metrics
from streams.log_setup import get_logger
from streams.topic_limit import CHANGELOG_VALUE_MAX_BYTES

log = get_logger(__name__)

#: The largest brand state :func:`save` writes, as JSON (Faust's codec writes no more): Kafka's
#: default record limit (``max.message.bytes``, the producer's ``max_request_size``) is 1 MiB,
#: less the key and the batch's framing. The pure core keeps a state far below this (its term
#: tables and posts are bounded in bytes); only a bucket of thousands of authors with long
#: non-Latin names could reach it.
MAX_STATE_BYTES = CHANGELOG_VALUE_MAX_BYTES


@dataclass
class PartitionState:
    replayer: Replayer
    pending: dict[str, list[str]] = field(default_factory=dict)  # brand -> pending keys
    last_wall: float = field(default_factory=time.monotonic)
    last_save: float = field(default_factory=time.monotonic)
    dirty: bool = False
    #: Highest source offset whose mention is in the detectors through this worker's own feed or
    #: the rebuild's replay: Kafka redelivers what follows the last committed offset after a
    #: crash, and those records must not be counted twice.
    high_offset: int = -1
    #: Highest source offset each brand's saved state covers (see the module notes).
    saved_offset: dict[str, int] = field(default_factory=dict)
    saved_until: dict[str, int | None] = field(default_factory=dict)
    #: Pending keys covered by each save not yet known to be in Kafka, with the save's number
    #: (:class:`FlushClock`); deleted by a later save once it is (see the module notes).
    covered: list[tuple[int, list[str]]] = field(default_factory=list)
    #: ``abandoned`` events of the open episodes of states the rebuild dropped, to be sent.
    abandoned: list[Output] = field(default_factory=list)
    #: Brands whose saved state the rebuild dropped: the next save replaces or deletes it, so
    #: later rebuilds neither abandon its episodes again nor take its watermark.
    dropped: list[str] = field(default_factory=list)
    #: Sends of this partition's outputs under way (see :func:`settle`).
    sending: int = 0
    #: Offsets the rebuild replayed from pending entries (counted before the restart).
    replayed: set[int] = field(default_factory=set)
    #: An episode change was sent since the last save: the next save does not wait for the save
    #: interval. A rebuild under another bucket size can end (``abandoned``) only the episodes
    #: a saved state holds; one opened after the last save would have stayed paged for good.
    episode_sent: bool = False
    #: The partition's watermark (``max``, ``adv``) when a brand with no saved state took its
    #: first mention here, until it is saved: if its first state is too large to save
    #: (:func:`save`), its marker says where a rebuild must replay its mentions from.
    first_marks: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    #: Brands the last save left unsaved (too large): until none is, no pending entry is
    #: deleted, as a rebuild replays their mentions from an older watermark, and the other
    #: brands' mentions since then must tick it on exactly as they did.
    unsaved: set[str] = field(default_factory=set)
    #: Seconds of wall time the partition went unwatched before a rebuild (since its newest save
    #: or pending mention: :func:`rebuild`), by which its quiet clock (``last_wall``) goes back
    #: once the stage has read what the partition held at the rebuild (:func:`resume`): the
    #: timer then goes on as if the worker had not stopped. Dropped when a mention moves the
    #: watermark first (the clock restarts from it).
    unwatched_s: float = 0.0
    #: The partition's end offset at the rebuild, which the stage must have read up to before
    #: ``unwatched_s`` counts (None: not known yet).
    resume_at: int | None = None


class FlushClock:
    """Which saves Kafka has for certain: a producer flush (Faust flushes before every offset
    commit) that began after a save was made has its table writes. A save's pending entries
    are deleted only then: deleted by the next save while both saves were still unflushed (an
    episode change's save, or the timer's, soon after another), the deletions could reach
    Kafka while the state writes that cover them did not (the two changelogs are flushed
    independently), and a kill lost the mentions in between (30 of 120 in the reviewer's
    reproduction, `tests/test_detect_state.py`)."""

    def __init__(self) -> None:
        self.saves = 0
        #: The number of the last save a completed flush began after.
        self.flushed = 0

    def saved(self) -> int:
        """A save is being made: its number."""
        self.saves += 1
        return self.saves

    def flush_started(self) -> int:
        return self.saves

    def flush_done(self, started: int) -> None:
        self.flushed = max(self.flushed, started)


@runtime_checkable
class CoveringSeed(Protocol):
    """A :data:`Seed` that also knows which source offsets its detectors hold already."""

    def __call__(self, brand: str, event_ms: int) -> Carried | None: ...

    def covered(self, brand: str, partition: int) -> tuple[int, str] | None:
        """The highest offset of ``partition`` that ``brand``'s usable seed holds, with the
        :func:`fingerprint` of its mention there (None: none)."""
        ...


def fingerprint(mention: Mapping[str, Any]) -> str:
    """A pending mention's fingerprint: a seed names the last one it holds by its offset and
    this, so that mentions of a re-created topic at the same offsets are not taken for it."""
    text = json.dumps(mention, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class Seeding:
    """A partition's way to the carried-over detectors (``Replayer.seed``), one-shot per brand:
    a brand that has, or had, saved state on the partition (``known``, from the tables) is
    never seeded again. It was whenever the brand was new to a replayer, also after its saved
    state was dropped (another bucket size), and the seed, from the last growth of the topics,
    sent ``abandoned`` again for episodes that had long ended."""

    seed: Seed
    known: set[str] = field(default_factory=set)
    #: The source partition this is for (None: not known, nothing counts as covered).
    partition: int | None = None
    #: ``late_total`` of each carried detector when it was handed over (for the late metric).
    carried_late: dict[str, int] = field(default_factory=dict)

    def __call__(self, brand: str, event_ms: int) -> Carried | None:
        if brand in self.known:
            return None
        carried = self.seed(brand, event_ms)
        if carried is not None and carried.detector is not None:
            self.carried_late[brand] = carried.detector.late_total
        return carried

    def covered(self, brand: str) -> tuple[int, str] | None:
        """The highest offset of this partition that ``brand``'s seed holds already, with the
        fingerprint of its mention there (None: none). A reset whose deletion of the state
        topics failed has written seeds that hold the tables' pending mentions: a worker
        restarted on those tables must not count them again on top of the seed (see
        ``streams.detector_seeds``)."""
        if brand in self.known or self.partition is None:
            return None
        if not isinstance(self.seed, CoveringSeed):
            return None
        return self.seed.covered(brand, self.partition)


def fresh(
    config: DetectorConfig,
    lateness_ms: int,
    seed: Seed | None = None,
    known: Collection[str] = (),
    partition: int | None = None,
) -> PartitionState:
    """A partition's state before anything of it was counted (``known``: brands with saved
    state on it, never seeded)."""
    seeding = Seeding(seed, set(known), partition) if seed is not None else None
    return PartitionState(Replayer(config, lateness_ms, seeding))


class Disposition(enum.Enum):
    """What the stage does with a record of its partition."""

    SKIP = "skip"  # already in the detectors
    TICK = "tick"  # in its brand's saved state: moves the watermark only
    FEED = "feed"  # counted now


def pending_key(brand: str, offset: int) -> str:
    return f"{brand}|{offset:020d}"


def disposition(state: PartitionState, brand: str, offset: int) -> Disposition:
    if offset <= state.high_offset:
        return Disposition.SKIP
    if offset <= state.saved_offset.get(brand, -1):
        return Disposition.TICK
    return Disposition.FEED


def count(
    state: PartitionState,
    kind: Disposition,
    offset: int,
    mention: MentionEvent,
    now: float | None = None,
) -> list[Output]:
    """Apply a TICK or FEED decision to the detectors (in memory only: :func:`settle` then
    sends the outputs and writes the record's pending entry, in that order).

    The partition's quiet clock (``last_wall``) restarts at ``now`` (monotonic time) only when
    the record moves its watermark on: the timer extrapolates from the newest event time, and
    a trickle of older mentions (a back-fill, counted late) would keep it from ever closing a
    silent brand's buckets, and resolving its storm."""
    state.high_offset = offset
    state.replayed.clear()  # the redelivered records are behind
    newest = state.replayer.max_event_ms
    late_before = _late_total(state, mention.brand)
    if kind is Disposition.TICK:
        outputs = state.replayer.tick(mention.clock_ms)
    else:
        if too_far_ahead(mention, state.replayer.clock_ms()):
            # The detector drops it (detectors.brand); said here, or it would vanish unseen.
            metrics.MENTIONS_DATED_AHEAD.inc()
            log.warning(
                "detect.mention_dated_ahead",
                brand=mention.brand,
                offset=offset,
                event_ms=mention.event_ms,
                received_ms=mention.received_ms,
            )
        mark_first(state, mention.brand)
        outputs = state.replayer.feed(mention)
        _count_late(state, mention.brand, late_before)
    if state.replayer.max_event_ms != newest:
        state.last_wall = time.monotonic() if now is None else now
        # The quiet clock restarts from this mention: a downtime before it no longer counts.
        state.unwatched_s = 0.0
        state.resume_at = None
    return outputs


def mark_first(state: PartitionState, brand: str) -> None:
    """Remember the watermark before a mention of a brand that has no saved state is fed."""
    if brand not in state.saved_until and brand not in state.first_marks:
        state.first_marks[brand] = (state.replayer.max_event_ms, state.replayer._advanced_to)


def _late_total(state: PartitionState, brand: str) -> int | None:
    detector = state.replayer.detectors.get(brand)
    return detector.late_total if detector is not None else None


def _count_late(state: PartitionState, brand: str, before: int | None) -> None:
    """``stormvarsel_late_mentions`` for a mention just fed, on its own detector: a brand new
    here starts from zero, or from its carried detector's count (not the partition's sum,
    which jumped by a carried detector's whole history)."""
    after = _late_total(state, brand)
    if after is None:
        return
    if before is None:
        seeding = state.replayer.seed
        carried = seeding.carried_late.pop(brand, 0) if isinstance(seeding, Seeding) else 0
        before = carried
    if after > before:
        metrics.LATE_MENTIONS.inc(after - before)


def note(
    state: PartitionState,
    kind: Disposition,
    offset: int,
    record: dict[str, Any],
    mention: MentionEvent,
    pending: MutableMapping[str, Any],
    partition: int,
    wall_ms: int | None = None,
) -> None:
    """Note a counted record as pending (a FEED one in the table, for the rebuild to replay),
    with the wall time it was counted at (``wall_ms``, epoch milliseconds; default now): a
    rebuild learns from it how long the partition went unwatched (:func:`rebuild`)."""
    key = pending_key(mention.brand, offset)
    if kind is Disposition.FEED:
        pending[key] = {
            "partition": partition,
            "offset": offset,
            "mention": record,
            "wall": wall_now_ms(wall_ms),
        }
    # A TICK record's brand's saved state holds it; a stale pending entry of it is deleted with
    # the brand's next save.
    state.pending.setdefault(mention.brand, []).append(key)


def take(
    state: PartitionState,
    kind: Disposition,
    offset: int,
    record: dict[str, Any],
    mention: MentionEvent,
    pending: MutableMapping[str, Any],
    partition: int,
    now: float | None = None,
    wall_ms: int | None = None,
) -> list[Output]:
    """:func:`count` and :func:`note` at once, for callers that send nothing (tests, tools)."""
    outputs = count(state, kind, offset, mention, now)
    note(state, kind, offset, record, mention, pending, partition, wall_ms)
    return outputs


def wall_now_ms(wall_ms: int | None = None) -> int:
    """``wall_ms``, or the wall-clock time now, in epoch milliseconds."""
    return int(time.time() * 1000) if wall_ms is None else int(wall_ms)


async def settle(
    state: PartitionState,
    kind: Disposition,
    offset: int,
    record: dict[str, Any],
    mention: MentionEvent,
    outputs: list[Output],
    pending: MutableMapping[str, Any],
    partition: int,
    emit: Callable[[list[Output]], Awaitable[None]],
) -> None:
    """Send a counted record's outputs, then write its pending entry. ``emit`` returns once
    Kafka has the alert records: the rebuild does not send again what a pending entry or a
    saved state holds (it replays them silently), so the records of the episode changes they
    hold must be durable before them. The other order lost an episode change (an ``opened``
    or a ``resolved``) when a kill kept the table write but not the alert record.

    :func:`save` waits, too, while outputs are in flight (``state.sending``): the timer's
    (:func:`close_quiet`), or a record's between :func:`count` and its pending entry."""
    state.sending += 1
    try:
        await emit(outputs)
    finally:
        state.sending -= 1
    note(state, kind, offset, record, mention, pending, partition)
    sent(state, outputs)


def sent(state: PartitionState, outputs: list[Output]) -> None:
    """Mark what Kafka now has of a partition's outputs as still to be saved: closed buckets at
    the next save, an episode change at once (``PartitionState.episode_sent``)."""
    state.dirty = state.dirty or bool(outputs)
    if any(isinstance(output, EpisodeEvent) for output in outputs):
        state.episode_sent = True


def may_save(state: PartitionState, now: float, save_interval_s: float) -> bool:
    """Whether to :func:`save` a partition now: buckets closed since its last save, at least
    ``save_interval_s`` of wall time ago or with an episode change among them, and none of its
    outputs in flight (a save must not hold an episode change Kafka may not have)."""
    if not state.dirty or state.sending:
        return False
    return state.episode_sent or now - state.last_save >= save_interval_s


def forget(
    state: PartitionState, brand: str, offset: int, pending: MutableMapping[str, Any]
) -> None:
    """Undo the pending entry of a record whose :func:`take` raised: it goes to the dead-letter
    topic instead, and a rebuild must not replay it (it would raise there too, every time)."""
    key = pending_key(brand, offset)
    pending.pop(key, None)
    keys = state.pending.get(brand, [])
    if key in keys:
        keys.remove(key)


def recover(
    part: int,
    states: Mapping[str, Any],
    pending: Mapping[str, Any],
    config: DetectorConfig,
    lateness_ms: int,
    seed: Seed | None = None,
) -> PartitionState | None:
    """A partition's state rebuilt from the tables after :func:`take` raised on a record (and
    :func:`forget` withdrew it): ``take`` may have counted the mention, closed some brands'
    buckets or moved the watermark before it raised, and the record goes to the dead-letter
    topic, so the partition starts again as a restart would, as if it had never come. None
    when the tables hold nothing of it."""
    rebuilt = rebuild(
        list(states.items()), list(pending.items()), {part}, config, lateness_ms, seed
    )
    return rebuilt.get(part)


def save(
    part: int,
    state: PartitionState,
    states: MutableMapping[str, Any],
    pending: MutableMapping[str, Any],
    clock: FlushClock | None = None,
    topic: str | None = None,
    wall_ms: int | None = None,
) -> None:
    """Persist detectors whose buckets closed; forget the pending mentions that earlier saves
    covered, once Kafka has those saves (``clock``; without one, as if a flush came between
    two saves: the previous save's). ``topic``: the source topic, recorded with each state
    (``streams.agents.detect_source``); ``wall_ms``: the wall-clock time of the save (epoch
    milliseconds, default now), recorded with the watermark as ``wall`` (:func:`rebuild`)."""
    replayer = state.replayer
    wall = wall_now_ms(wall_ms)
    state.episode_sent = False
    number = clock.saved() if clock is not None else 0
    waiting: list[tuple[int, list[str]]] = []
    state.unsaved &= set(replayer.detectors)  # a brand dropped since holds nothing back
    for saved_as, keys in state.covered:
        if state.unsaved or (clock is not None and saved_as > clock.flushed):
            waiting.append((saved_as, keys))
            continue
        for key in keys:
            pending.pop(key, None)
    state.covered = waiting
    covers: list[str] = []
    for brand in state.dropped:
        if brand not in replayer.detectors:
            # Not seeded again (:class:`Seeding`), nor abandoned again by later rebuilds.
            states[brand] = {"partition": part, "dropped": True}
    state.dropped = []
    for brand, detector in replayer.detectors.items():
        if detector.closed_until == state.saved_until.get(brand, "unsaved"):
            continue
        value: dict[str, Any] = {
            "partition": part,
            "state": detector.to_state(),
            "max": replayer.max_event_ms,
            "adv": replayer._advanced_to,
            "offset": state.high_offset,
            "wall": wall,
        }
        if topic is not None:
            value["topic"] = topic
        # Encoded once: to measure it, and (``streams.encoded_values``) as the changelog's record.
        encoded = encoded_values.encode(value)
        size = encoded_values.size(encoded)
        if size > MAX_STATE_BYTES:
            # Unsaved, its pending mentions stay: a restart rebuilds it from the last save
            # that fitted and replays them. The producer would refuse the record and stop the
            # worker, on every restart.
            _mark_unsaved(part, state, brand, states)
            state.unsaved.add(brand)
            metrics.DETECTOR_STATES_UNSAVED.inc()
            log.error(
                "detect.state_too_large",
                brand=brand,
                bytes=size,
                limit=MAX_STATE_BYTES,
                hint="not saved this time; its mentions since the last save stay in "
                "detector-pending, and a restart replays them",
            )
            continue
        states[brand] = encoded  # one assignment: a Faust table writes its changelog on set
        state.first_marks.pop(brand, None)
        state.unsaved.discard(brand)
        state.saved_until[brand] = detector.closed_until
        state.saved_offset[brand] = state.high_offset
        covers.extend(state.pending.pop(brand, []))
    if covers:
        state.covered.append((number, covers))


def _mark_unsaved(
    part: int, state: PartitionState, brand: str, states: MutableMapping[str, Any]
) -> None:
    """A brand never saved whose state is too large: a marker in its place gives a rebuild the
    watermark its first mention came at (a rebuild starts from the oldest saved one, and its
    mentions would otherwise be replayed behind the other brands' and counted late)."""
    if brand in state.saved_until:
        return  # its last save that fitted has its watermark
    marks = state.first_marks.get(brand)
    if marks is None:
        return
    marker = {"partition": part, "unsaved": True, "max": marks[0], "adv": marks[1]}
    if states.get(brand) != marker:
        states[brand] = marker


def restore(brand: str, saved: Any, config: DetectorConfig) -> BrandDetector | None:
    """A brand's saved detector under the current configuration, or None to start it afresh.

    A changed threshold or half-life must not blind the worker: the state continues under the
    new configuration. A state that cannot (other bucket or window sizes, a newer state
    version) is dropped with an error, and the brand warms up again from its next mention; its
    pending mentions are then fed to the fresh detector, since the dropped state no longer
    holds them. So is a state that cannot be read at all (damaged, or of another release):
    whatever the reading raises, that brand alone starts afresh, as the rebuild runs while
    Faust completes a rebalance, and an exception there stopped the worker on every restart.
    Keys this release does not know are ignored, each named once in the log."""
    try:
        detector = BrandDetector.from_state(saved, config, retune=True)
        closed = detector.closed_until
        if closed is not None and closed % detector.bucket_ms:
            # Saved by a worker that started the brand off its bucket grid (after a bucket-size
            # change): its open buckets would never close. Back on the grid, they close again.
            detector.closed_until = closed - closed % detector.bucket_ms
            log.warning("detect.state_realigned", brand=brand, closed_until=closed)
        current = config_fingerprint(detector.config)  # the brand's own, zone included
    except StateMismatch as exc:
        reason = str(exc)
    except Exception as exc:  # one brand's unreadable state must not stop the partition
        reason = f"unreadable detector state ({type(exc).__name__}: {exc})"[:500]
    else:
        ignored = first_report(detector.ignored_keys)
        if ignored:
            log.warning("detect.state_keys_ignored", brand=brand, keys=ignored)
        if saved.get("config") != current:
            metrics.DETECTOR_STATES_RETUNED.inc()
            log.warning(
                "detect.state_retuned",
                brand=brand,
                saved_config=saved.get("config"),
                config=current,
            )
        return detector
    metrics.DETECTOR_STATES_DISCARDED.inc()
    log.error("detect.state_discarded", brand=brand, reason=reason)
    return None


def abandon(brand: str, saved: dict[str, Any], config: DetectorConfig) -> list[Output]:
    """The ``abandoned`` events of a dropped state's open episodes (logged as errors), so their
    alerts end instead of firing for good: nothing else would ever resolve them. They are sent
    again by every rebuild until the brand's fresh detector is saved over the old state; that
    updates the same alerts, as the ids derive from the episodes' starts. A carried-over
    detector that cannot be used is ended the same way (``streams.detector_seeds``)."""
    events = abandoned_episodes(saved, config)
    for event in events:
        log.error(
            "detect.episode_abandoned",
            brand=brand,
            kind=event.episode.get("kind"),
            episode_id=event.episode.get("episode_id"),
            severity=event.episode.get("severity"),
        )
    return list(events)


def rebuild(
    states: Iterable[tuple[str, Any]],
    pending: Iterable[tuple[str, Any]],
    owned: set[int],
    config: DetectorConfig,
    lateness_ms: int,
    seed: Seed | None = None,
    wall_ms: int | None = None,
) -> dict[int, PartitionState]:
    """Detectors of the ``owned`` partitions from their saved states plus pending mentions.

    The replay starts from the partition's oldest saved watermark and goes through the pending
    mentions in their original order: each moves the watermark as it did, and those a brand's
    saved state already holds are not observed again. So brands saved at different moments (a
    save cut short) still close their buckets exactly when they did.

    Each partition's quiet clock starts at the rebuild. The wall time it went unwatched before
    (``wall_ms``, default now, less the newest ``wall`` of its saves and pending mentions) is
    kept in ``unwatched_s``, for :func:`resume` to give back once the stage has read what the
    partition holds: a quiet partition's storm then resolves when it would have without the
    restart, not a whole downtime later."""
    detectors: dict[int, dict[str, BrandDetector]] = {}
    watermarks: dict[int, dict[str, Any]] = {}
    bucket_ms = Replayer(config).bucket_ms
    saved_offset: dict[str, int] = {}
    abandoned: dict[int, list[Output]] = {}
    dropped: dict[int, list[str]] = {}
    known: dict[int, set[str]] = {}
    from_start: set[int] = set()  # an unsaved brand's first mention came before any watermark
    seen_at: dict[int, int] = {}  # the newest wall time of a partition's saves
    for brand, value in states:
        part = int(value["partition"])
        if part not in owned:
            continue
        if value.get("unsaved") and "state" not in value:
            # A brand never saved (see :func:`save`): the watermark of its first mention. Not
            # known: it is seeded, if a seed has it, as it was before its first save.
            if value.get("max") is None:
                from_start.add(part)
            _take_marks(watermarks.setdefault(part, {"max": None, "adv": None}), value)
            continue
        known.setdefault(part, set()).add(brand)
        if "state" not in value:
            continue  # a dropped state's marker (see :func:`save`)
        _take_wall(seen_at, part, value)
        detector = restore(brand, value["state"], config)
        if detector is not None:
            saved_offset[brand] = int(value.get("offset", -1))
            detectors.setdefault(part, {})[brand] = detector
        else:
            abandoned.setdefault(part, []).extend(abandon(brand, value["state"], config))
            dropped.setdefault(part, []).append(brand)
        marks = watermarks.setdefault(part, {"max": None, "adv": None})
        # A dropped state's watermark boundary is on its own (other) bucket grid: a fresh
        # detector started at it would never close a bucket that holds a mention.
        _take_marks(marks, value, bucket_ms if detector is None else None)
    for part in from_start:
        watermarks[part] = {"max": None, "adv": None}
    replays: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    walls: dict[tuple[int, int], Any] = {}  # (partition, offset) -> a pending entry's wall
    for _key, record in pending:
        if int(record["partition"]) in owned:
            part, offset = int(record["partition"]), int(record["offset"])
            replays.setdefault(part, []).append((offset, record["mention"]))
            walls[(part, offset)] = record.get("wall")
            _take_wall(seen_at, part, record)
    partitions: dict[int, PartitionState] = {}
    for part in set(detectors) | set(replays) | set(dropped) | set(known):
        state = fresh(config, lateness_ms, seed, known.get(part, ()), part)
        state.abandoned = abandoned.get(part, [])
        state.dropped = dropped.get(part, [])
        replayer = state.replayer
        replayer.detectors = detectors.get(part, {})
        replayer.max_event_ms = watermarks.get(part, {}).get("max")
        replayer._advanced_to = watermarks.get(part, {}).get("adv")
        state.dirty = bool(state.dropped)  # saved with the partition's next mention
        if replayer.max_event_ms is not None and replayer._advanced_to is not None:
            # The timer had moved a quiet partition's watermark on (its saves say how far):
            # it goes on from there, rather than waiting that long again.
            ahead_ms = replayer._advanced_to + lateness_ms - replayer.max_event_ms
            state.last_wall -= max(0, ahead_ms) / 1000
        for brand, detector in replayer.detectors.items():
            state.saved_until[brand] = detector.closed_until
            state.saved_offset[brand] = saved_offset[brand]
        seeding = replayer.seed if isinstance(replayer.seed, Seeding) else None
        seeded: dict[str, int] = {}  # brand -> highest offset here its seed holds already
        ordered = sorted(replays.get(part, []), key=lambda item: item[0])
        by_offset = dict(ordered) if seeding is not None else {}
        #: A replayed mention that moved the watermark says not when it was counted (written
        #: by an older release): how long the partition went unwatched since is not known.
        unknown_since = False
        # Original arrival order: the shared watermark depends on how brands interleave.
        for offset, mention in ordered:
            newest = replayer.max_event_ms
            try:
                event = MentionEvent.from_record(mention)
                state.high_offset = max(state.high_offset, offset)
                state.replayed.add(offset)
                state.pending.setdefault(event.brand, []).append(pending_key(event.brand, offset))
                brand = event.brand
                if seeding is not None and brand not in seeded:
                    seeded[brand] = held_by_seed(seeding.covered(brand), by_offset)
                if offset <= state.saved_offset.get(brand, -1):
                    replayer.tick(event.clock_ms)  # in the brand's saved state already
                elif offset <= seeded.get(brand, -1):
                    # In the brand's seed already: it takes the seed here (a seed is ahead of
                    # the watermark, which does not move a detector back), and the mentions
                    # its seed holds are not counted on top of it.
                    replayer.tick(event.clock_ms)
                    if brand not in replayer.detectors and seeding is not None:
                        carried = seeding(brand, event.event_ms)
                        if carried is not None:
                            state.abandoned.extend(carried.ended)
                            if carried.detector is not None:
                                replayer.detectors[brand] = carried.detector
                else:
                    mark_first(state, brand)
                    replayer.feed(event)  # its outputs were emitted before the restart
            except Exception:  # one bad entry must not keep the partition from starting
                log.exception("detect.replay_failed", partition=part, offset=offset)
            if replayer.max_event_ms != newest and not isinstance(walls.get((part, offset)), int):
                unknown_since = True
        if not unknown_since:
            state.unwatched_s = unwatched_s(state, seen_at.get(part), wall_now_ms(wall_ms))
        partitions[part] = state
    return partitions


#: A partition unwatched for less than this before a rebuild keeps its quiet clock as it was.
MIN_UNWATCHED_S = 1.0


def unwatched_s(
    state: PartitionState, seen_ms: int | None, wall_ms: int, now: float | None = None
) -> float:
    """How far (seconds) a rebuilt partition's quiet clock is to go back at :func:`resume`: the
    wall time since ``seen_ms``, the newest wall time its tables hold (a save's or a pending
    mention's), but not so far that its clock (the newest event time, moved on by the quiet
    time at monotonic ``now``) would pass the wall clock ``wall_ms``. 0 when nothing says, or
    under a second."""
    newest = state.replayer.max_event_ms
    if seen_ms is None or newest is None:
        return 0.0
    now = time.monotonic() if now is None else now
    clock_ms = newest + (now - state.last_wall) * 1000  # the timer's
    credit_ms = min(wall_ms - seen_ms, wall_ms - clock_ms)
    return credit_ms / 1000 if credit_ms >= MIN_UNWATCHED_S * 1000 else 0.0


def _take_wall(seen_at: dict[int, int], part: int, value: Mapping[str, Any]) -> None:
    """Raise a partition's newest known wall time to a saved value's or pending entry's."""
    wall = value.get("wall")
    if isinstance(wall, int) and not isinstance(wall, bool):
        seen_at[part] = max(seen_at.get(part, wall), wall)


def _take_marks(
    marks: dict[str, Any], value: Mapping[str, Any], regrid_ms: int | None = None
) -> None:
    """Lower the partition's rebuild watermarks to a saved value's (``regrid_ms``: put its
    ``adv`` back on that bucket grid)."""
    for key in ("max", "adv"):
        mark = value.get(key)
        if mark is None:
            continue
        if key == "adv" and regrid_ms is not None:
            mark = int(mark) - int(mark) % regrid_ms
        current = marks[key]
        marks[key] = mark if current is None else min(current, mark)


def held_by_seed(cover: tuple[int, str] | None, pending: Mapping[int, Any]) -> int:
    """The highest pending offset a seed holds (-1: none). Only if the pending mention at its
    mark is the one it names: the seed was written from these very tables."""
    if cover is None:
        return -1
    mark, named = cover
    mention = pending.get(mark)
    return mark if isinstance(mention, dict) and fingerprint(mention) == named else -1


def resume(
    state: PartitionState, read_to: int | None, now: float | None = None, part: int | None = None
) -> bool:
    """Move a rebuilt partition's quiet clock back by the wall time it went unwatched
    (``unwatched_s``, see :func:`rebuild`), once the stage has gone through what the partition
    held at the rebuild: ``read_to`` (the next offset the stage is to process, None: not known)
    has reached ``resume_at``. Until then mentions written to the partition during the downtime
    are still queued, and a clock moved on by the downtime would close their buckets before
    they come (counted late). Returns whether it moved the clock."""
    if state.unwatched_s <= 0 or state.resume_at is None or read_to is None:
        return False
    if read_to < state.resume_at:
        return False
    state.last_wall -= state.unwatched_s
    log.info(
        "detect.quiet_clock_resumed",
        partition=part,
        unwatched_s=round(state.unwatched_s, 1),
        idle_s=round((time.monotonic() if now is None else now) - state.last_wall, 1),
        read_to=read_to,
    )
    state.unwatched_s = 0.0
    state.resume_at = None
    return True


async def resume_clocks(
    partitions: Mapping[int, PartitionState],
    owned: Callable[[], Collection[int]],
    ends: Callable[[list[int]], Awaitable[Mapping[int, int]]],
    read_to: Callable[[list[int]], Awaitable[Mapping[int, int] | None]],
) -> list[int]:
    """The timer's :func:`resume` of the owned partitions whose quiet clock waits for it; returns
    the partitions resumed. ``ends``: the partitions' end offsets now, asked for those whose end
    at the rebuild is not known (a later end is a stricter one); ``read_to``: how far the stage
    has gone through them (the group's committed offsets; None: Kafka did not answer, and
    they wait for the next round). A partition rebuilt or given away meanwhile is left alone."""
    waiting = {
        part: state
        for part, state in list(partitions.items())
        if state.unwatched_s > 0 and part in owned()
    }
    if not waiting:
        return []
    unknown = [part for part, state in waiting.items() if state.resume_at is None]
    if unknown:
        got = await ends(unknown)
        for part in unknown:
            state = waiting[part]
            if part in got and state.unwatched_s > 0 and state.resume_at is None:
                state.resume_at = int(got[part])
    asked = [part for part, state in waiting.items() if state.resume_at is not None]
    if not asked:
        return []
    positions = await read_to(asked) or {}
    return [
        part
        for part in asked
        if partitions.get(part) is waiting[part]
        and part in owned()
        and resume(waiting[part], positions.get(part), part=part)
    ]


def idle_boundary(
    state: PartitionState, now: float, idle_close_s: float, lateness_ms: int
) -> int | None:
    """The bucket boundary a partition quiet for ``idle_close_s`` of wall time closes to at
    monotonic time ``now``: its event-time watermark moved on by the wall time since its last
    mention. None while it is not quiet, has seen nothing, or has closed that far already."""
    replayer = state.replayer
    idle = now - state.last_wall
    if replayer.max_event_ms is None or idle < idle_close_s:
        return None
    watermark = replayer.max_event_ms + int(idle * 1000) - lateness_ms
    boundary = watermark - watermark % replayer.bucket_ms
    if replayer._advanced_to is not None and boundary <= replayer._advanced_to:
        return None
    return boundary


async def close_quiet(
    partitions: Mapping[int, PartitionState],
    owned: Callable[[], Collection[int]],
    now: float,
    idle_close_s: float,
    lateness_ms: int,
    emit: Callable[[list[Output]], Awaitable[None]],
    save: Callable[[int, PartitionState], None] | None = None,
) -> None:
    """The wall-clock timer: close the buckets of partitions that went quiet, so a silent brand
    still closes them (and its episodes de-escalate and resolve).

    What it closed is saved like the rest (``dirty``): by ``save`` once Kafka has the outputs
    (if the partition is still this worker's and ``save`` wants to), else with the partition's
    next mention. Unsaved, a storm the timer resolved was open again after a rebuild, and its
    buckets reported it until the timer resolved it a second time.

    Only partitions in ``owned()`` (the worker: its assignment, none while a rebalance is under
    way), with the state they have now. Both are asked again before each partition, since a
    rebalance can come while an earlier partition's results are sent: a partition given away
    is its new owner's to close (closing it here too would resolve, under the same alert id, a
    storm its new owner still sees), and a rebuild replaces the state. The partitions are
    taken from a snapshot, as a rebuild may change the mapping meanwhile."""
    for part, state in list(partitions.items()):
        if partitions.get(part) is not state or part not in owned():
            continue
        boundary = idle_boundary(state, now, idle_close_s, lateness_ms)
        if boundary is None:
            continue
        state.replayer._advanced_to = boundary
        outputs = state.replayer.advance(boundary)
        state.dirty = state.dirty or bool(outputs)
        state.sending += 1
        try:
            await emit(outputs)
        finally:
            state.sending -= 1
        sent(state, outputs)
        if save is not None and partitions.get(part) is state and part in owned():
            save(part, state)
