"""A worker restarted with another detector configuration keeps watching (no crash, no blind
spell where it can be avoided): states continue under changed thresholds, and only a state whose
bucket or window sizes changed is started afresh, with an error and a metric."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client import REGISTRY

from detectors.alerting.summary import summary
from detectors.brand import BrandDetector, StateMismatch, abandoned_episodes
from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary, EpisodeEvent, Output
from detectors.events import MentionEvent
from detectors.replay import Replayer
from detectors.timeslots import hour_of_day
from streams.agents import detect_state
from streams.agents.detect import alert_record
from streams.agents.detect_state import PartitionState
from streams.detector_seeds import read_table
from streams.kafka_local import LocalKafka
from streams.settings import Settings
from tests.detector_support import DAY, HOUR, T0, daily_rate, stream
from tests.running_worker import RunningWorker, send_scored, start_worker
from tests.test_detect_state import LATENESS_MS, ChangelogTable, run_stage

RETUNED = "stormvarsel_detector_states_retuned_total"
DISCARDED = "stormvarsel_detector_states_discarded_total"


def as_record(event: MentionEvent) -> dict[str, Any]:
    return {
        "id": event.mention_id,
        "text": event.text,
        "created_at_ms": event.event_ms,
        "brand": event.brand,
        "platform": event.platform,
        "lang": event.lang,
        "author": {"id": event.author, "handle": None, "followers": event.followers},
        "engagement": {"likes": 0, "shares": 0, "replies": 0},
        "is_brand_reply": False,
        "sentiment": {"label": event.sentiment, "model": "test"},
    }


@pytest.fixture(scope="module")
def saved() -> tuple[ChangelogTable, ChangelogTable, int]:
    """Two brands' detectors after two days, saved by the stage under the default config."""
    events = [
        e
        for brand, seed in (("acme", 1), ("globex", 2))
        for e in stream(brand, T0, 2 * 1440, lambda t: daily_rate(hour_of_day(t), 1.0), seed=seed)
    ]
    events.sort(key=lambda e: (e.event_ms, e.mention_id))
    records = [as_record(e) for e in events]
    states, pending = ChangelogTable(), ChangelogTable()
    run_stage(records, states, pending, PartitionState(Replayer(None, LATENESS_MS)), 0)
    return states, pending, len(records)


def count(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def rebuilt(
    saved: tuple[ChangelogTable, ChangelogTable, int], config: DetectorConfig
) -> PartitionState:
    states, pending, _ = saved
    partitions = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, config, LATENESS_MS
    )
    return partitions[0]


def test_changed_thresholds_continue_the_saved_history(
    saved: tuple[ChangelogTable, ChangelogTable, int],
) -> None:
    before = count(RETUNED), count(DISCARDED)
    stricter = DetectorConfig.from_dict({"states": {"watch_enter": 1.3, "watch_exit": 0.6}})
    state = rebuilt(saved, stricter)
    assert count(RETUNED) == before[0] + 2
    assert count(DISCARDED) == before[1]
    _, _, n = saved
    detectors = state.replayer.detectors
    assert sorted(detectors) == ["acme", "globex"]
    # Every mention of the two days is still counted, and the baseline is warm: no blind spell.
    assert sum(d.observed_total for d in detectors.values()) == n
    assert all(d.baseline.warm for d in detectors.values())
    assert all(d.config == stricter for d in detectors.values())


def test_other_bucket_sizes_start_the_brands_afresh(
    saved: tuple[ChangelogTable, ChangelogTable, int],
) -> None:
    before = count(DISCARDED)
    state = rebuilt(saved, DetectorConfig.from_dict({"bucket_minutes": 5}))
    assert count(DISCARDED) == before + 2
    _, pending, _ = saved
    # The saved states are dropped; the mentions pending since the last save go to fresh
    # detectors, and no record is skipped as "in the saved state" any more.
    fed = sum(d.observed_total for d in state.replayer.detectors.values())
    assert fed == len(pending)
    assert state.saved_offset == {}
    assert all(not d.baseline.warm for d in state.replayer.detectors.values())


def test_after_a_bucket_size_change_the_fresh_detectors_fill_and_close_their_buckets() -> None:
    """1-minute buckets, then 5: the dropped states' watermark (17:57, a 1-minute boundary) must
    not start the fresh detectors off the 5-minute grid. It did: the first mention after the
    restart (written before that watermark, read 90 s later) started "acme" at 17:57, its
    buckets closed at 17:57, 18:02, ... while its mentions sat in 18:00, 18:05, ...: every
    bucket closed empty, the mentions piled up for good, and the next day's storm went
    unseen."""
    calm = [
        e
        for brand, seed in (("acme", 1), ("globex", 2))
        for e in stream(brand, T0, 2 * 1440, lambda t: daily_rate(hour_of_day(t), 1.0), seed=seed)
        if e.event_ms < T0 + 2 * DAY - 60_000
    ]
    calm.sort(key=lambda e: (e.event_ms, e.mention_id))
    records = [as_record(e) for e in calm]
    states, pending = ChangelogTable(), ChangelogTable()
    before = PartitionState(Replayer(None, LATENESS_MS))
    run_stage(records, states, pending, before, 0)
    detect_state.save(0, before, states, pending)
    assert {v["adv"] % (5 * 60_000) for v in states.values()} != {0}, "a 1-minute boundary"

    five = DetectorConfig.from_dict({"bucket_minutes": 5})
    state = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, five, LATENESS_MS
    )[0]
    start = T0 + 2 * DAY
    day = [
        e
        for brand, seed in (("acme", 5), ("globex", 6))
        for e in stream(brand, start, 1440, lambda t: daily_rate(hour_of_day(t), 1.0), seed=seed)
    ]
    surge = stream("acme", start + DAY - 45 * 60_000, 45, lambda t: 10.0, negative_share=0.9)
    later = [as_record(e) for e in sorted([*day, *surge], key=lambda e: (e.event_ms, e.mention_id))]
    saved_adv = min(v["adv"] for v in states.values())
    later[0] = {**later[0], "created_at_ms": saved_adv - 30_000, "received_at_ms": start + 30_000}
    outputs: list[Output] = []
    for offset, record in enumerate(later, start=len(records)):
        mention = MentionEvent.from_record(record)
        kind = detect_state.disposition(state, mention.brand, offset)
        outputs.extend(detect_state.take(state, kind, offset, record, mention, pending, 0))
    outputs.extend(state.replayer.flush())

    for brand in ("acme", "globex"):
        detector = state.replayer.detectors[brand]
        assert detector.closed_until is not None and detector.closed_until % (5 * 60_000) == 0
        closed = [o for o in outputs if isinstance(o, BucketSummary) and o.brand == brand]
        fed = sum(1 for r in later if r["brand"] == brand)
        # Every mention the fresh detector took (the pending ones and the day's) is in a closed
        # bucket, but the few dated before the carried watermark (late); none is left behind.
        assert detector.observed_total >= fed
        assert detector.late_total < 30
        assert sum(b.volume for b in closed) == detector.observed_total - detector.late_total
        assert not detector.open, brand
    changes = [
        (o.type, o.episode["brand"], o.episode["kind"])
        for o in outputs
        if isinstance(o, EpisodeEvent)
    ]
    assert ("opened", "acme", "storm") in changes, changes


def test_a_brand_never_starts_off_its_bucket_grid() -> None:
    """Whatever set a replayer's watermark off its grid, a brand new there starts on it; and a
    state saved off its grid (by a worker with the bug above) is put back on it."""
    five = DetectorConfig.from_dict({"bucket_minutes": 5})
    replayer = Replayer(five, LATENESS_MS)
    replayer.max_event_ms = T0 + 3 * 60_000
    replayer._advanced_to = T0 + 2 * 60_000  # a 1-minute boundary
    replayer.feed(MentionEvent(brand="acme", event_ms=T0 + 60_000, sentiment="neutral"))
    outputs = replayer.tick(T0 + 5 * 60_000 + LATENESS_MS)
    assert [o.volume for o in outputs if isinstance(o, BucketSummary)] == [1]
    assert replayer.detectors["acme"].closed_until == T0 + 5 * 60_000
    misaligned = BrandDetector("acme", five)
    misaligned.start_at(T0 + 2 * 60_000)
    misaligned.observe(MentionEvent(brand="acme", event_ms=T0 + 6 * 60_000, sentiment="neutral"))
    restored = detect_state.restore("acme", misaligned.to_state(), five)
    assert restored is not None and restored.closed_until == T0
    outputs = restored.advance(T0 + 10 * 60_000)
    assert [o.volume for o in outputs if isinstance(o, BucketSummary)] == [0, 1]


def test_without_retune_a_changed_configuration_is_refused() -> None:
    detector = BrandDetector("acme")
    state = detector.to_state()
    other = DetectorConfig.from_dict({"states": {"watch_enter": 1.3}})
    with pytest.raises(StateMismatch, match="different configuration"):
        BrandDetector.from_state(state, other)
    assert BrandDetector.from_state(state, other, retune=True).config == other
    del state["layout"]  # saved before layouts were recorded
    with pytest.raises(StateMismatch, match="cannot continue"):
        BrandDetector.from_state(state, other, retune=True)


def rebuilt_on_five_minutes(
    states: ChangelogTable, pending: ChangelogTable
) -> dict[int, PartitionState]:
    """The stage's partitions rebuilt from its tables with 5-minute buckets (saved with 1)."""
    return detect_state.rebuild(
        list(states.items()),
        list(pending.items()),
        {0},
        DetectorConfig.from_dict({"bucket_minutes": 5}),
        LATENESS_MS,
    )


def mid_storm_records() -> list[dict[str, Any]]:
    """Three calm days of "acme", then a surge that opens a storm still open at the end."""
    surge = stream("acme", T0 + 3 * DAY + 14 * HOUR, 45, lambda t: 10.0, negative_share=0.9, seed=7)
    calm = stream("acme", T0, 4 * 1440, lambda t: daily_rate(hour_of_day(t), 1.0), seed=3)
    events = sorted([*surge, *calm], key=lambda e: (e.event_ms, e.mention_id))
    return [as_record(e) for e in events if e.event_ms < T0 + 3 * DAY + 15 * HOUR]


def mid_storm_tables() -> tuple[ChangelogTable, ChangelogTable, EpisodeEvent]:
    """The stage's tables saved during an open storm of "acme", and the event that opened it."""
    records = mid_storm_records()
    states, pending = ChangelogTable(), ChangelogTable()
    state = PartitionState(Replayer(None, LATENESS_MS))
    run_stage(records, states, pending, state, 0)
    detect_state.save(0, state, states, pending)
    replayer = Replayer(None, LATENESS_MS)
    outputs = [o for r in records for o in replayer.feed(MentionEvent.from_record(r))]
    first = next(o for o in outputs if isinstance(o, EpisodeEvent) and o.type == "opened")
    return states, pending, first


def test_a_dropped_state_ends_its_open_storm_instead_of_leaving_it_firing() -> None:
    """A storm open when the bucket size changed: nothing would ever resolve its alert, so the
    rebuild ends it as ``abandoned``, under the storm's own alert id, saying why."""
    states, pending, opened = mid_storm_tables()
    saved = dict(states.items())["acme"]["state"]
    assert saved["episodes"]["storm"]["end_ms"] is None, "the storm should still be open"
    partitions = rebuilt_on_five_minutes(states, pending)
    [event] = partitions[0].abandoned
    assert isinstance(event, EpisodeEvent) and event.type == "abandoned"
    assert event.episode["episode_id"] == opened.episode["episode_id"]
    assert event.at_ms == saved["closed_until"] == event.episode["end_ms"]
    assert event.episode["drivers"]["words"], "the drivers learnt so far are kept"
    alert = alert_record(event, {})
    assert alert["alert_id"] == opened.episode["episode_id"]
    assert (alert["change"], alert["status"]) == ("abandoned", "resolved")
    assert alert["statements"] == []
    assert "reset" in alert["actions"][0]
    assert "not a sign that it calmed down" in alert["actions"][0]
    assert "no longer followed" in summary(alert)
    # The next save replaces (or deletes) the dropped state: later rebuilds abandon nothing more.
    fresh = partitions[0]
    assert fresh.dropped == ["acme"] and fresh.dirty
    after_states, after_pending = dict(states.items()), dict(pending.items())
    detect_state.save(0, fresh, after_states, after_pending)
    assert "acme" not in after_states or after_states["acme"]["state"]["layout"] != saved["layout"]
    again = detect_state.rebuild(
        list(after_states.items()),
        list(after_pending.items()),
        {0},
        DetectorConfig.from_dict({"bucket_minutes": 5}),
        LATENESS_MS,
    )
    assert all(not p.abandoned and not p.dropped for p in again.values())
    # A state that continues (same layout) abandons nothing.
    kept = detect_state.rebuild(
        list(states.items()), list(pending.items()), {0}, DetectorConfig(), LATENESS_MS
    )
    assert kept[0].abandoned == []
    assert kept[0].replayer.detectors["acme"].episodes["storm"].end_ms is None


def test_a_storm_opened_just_before_a_stop_is_still_abandoned_after_a_rebucket() -> None:
    """The stage saves at most every 5 s, but an episode change at once: a worker stopped a
    moment after a storm opened had its saved state without that storm, so a restart with
    other bucket sizes abandoned nothing, and the storm's page fired for good."""
    records = mid_storm_records()
    states, pending = ChangelogTable(), ChangelogTable()
    state = PartitionState(Replayer(None, LATENESS_MS))
    opened: list[EpisodeEvent] = []

    async def emit(outputs: list[Output]) -> None:
        opened.extend(o for o in outputs if isinstance(o, EpisodeEvent) and o.type == "opened")

    async def stage() -> None:
        # The agent's loop, all of it within one save interval of its last save: only an
        # episode change makes it save.
        now = state.last_save
        for offset, record in enumerate(records):
            mention = MentionEvent.from_record(record)
            kind = detect_state.disposition(state, mention.brand, offset)
            outputs = detect_state.count(state, kind, offset, mention)
            await detect_state.settle(
                state, kind, offset, record, mention, outputs, pending, 0, emit
            )
            if detect_state.may_save(state, now, 5.0):
                detect_state.save(0, state, states, pending)
                state.dirty = False
            if opened:
                return  # stopped right after the storm's ``opened`` went out

    asyncio.run(stage())
    assert [e.episode["kind"] for e in opened] == ["storm"]
    assert not state.episode_sent
    partitions = rebuilt_on_five_minutes(states, pending)
    assert [e.episode["episode_id"] for e in partitions[0].abandoned] == [
        opened[0].episode["episode_id"]
    ]


def test_abandoned_episodes_skip_closed_and_unreadable_ones() -> None:
    states, _, _ = mid_storm_tables()
    saved = dict(states.items())["acme"]["state"]
    assert [e.type for e in abandoned_episodes(saved)] == ["abandoned"]
    assert abandoned_episodes(BrandDetector("calm").to_state()) == []  # nothing open
    unreadable = {**saved, "episodes": {"storm": {"kind": "storm"}}}  # no start: no alert id
    assert abandoned_episodes(unreadable) == []
    foreign = json.loads(json.dumps(saved))
    foreign["episodes"]["storm"]["evidence"] = {"terms": "?"}  # drivers another version wrote
    [event] = abandoned_episodes(foreign)
    assert event.episode["episode_id"] == abandoned_episodes(saved)[0].episode["episode_id"]
    assert event.episode["drivers"]["words"] == []


def saved_storm_open(worker: RunningWorker, brand: str) -> bool:
    """Whether the brand's state saved in the detect stage's changelog holds an open storm."""
    changelog = f"{worker.env['STORMVARSEL_APP_ID']}-detector-state-changelog"
    saved = read_table(Settings(kafka_bootstrap_servers=worker.bootstrap), changelog, 20)
    entry = saved.get(brand)
    if not isinstance(entry, dict) or not isinstance(entry.get("state"), dict):
        return False
    return any(e.episode.get("kind") == "storm" for e in abandoned_episodes(entry["state"]))


def saved_within(worker: RunningWorker, brand: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, f"worker died:\n{worker.log_tail()}"
        if saved_storm_open(worker, brand):
            return True
        time.sleep(0.5)
    return False


def stop_cleanly(worker: RunningWorker) -> None:
    """SIGTERM, so the worker leaves its consumer group and the next one need not wait for the
    group's session timeout; killed if it takes longer than 30 s."""
    worker.process.terminate()
    try:
        worker.process.wait(30)
    except subprocess.TimeoutExpired:
        worker.stop()


# Three workers one after another: 3 min 18 s seen under CPU load, of the default 5 min.
@pytest.mark.integration
@pytest.mark.timeout(480)
def test_a_worker_restarted_with_another_configuration_keeps_detecting(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """On the real Kafka: saved states survive a threshold change and are dropped, with the
    metric, on a bucket change; either way the worker stays up and keeps closing buckets. The
    storm open in a dropped state ends with an ``abandoned`` alert instead of firing for good."""
    surge = stream(
        "acme", T0 + 2 * DAY - 45 * 60_000, 45, lambda t: 10.0, negative_share=0.9, seed=7
    )
    events = [
        e
        for brand, seed in (("acme", 1), ("globex", 2))
        for e in stream(
            brand, T0, 2 * 1440 + 30, lambda t: daily_rate(hour_of_day(t), 1.0), seed=seed
        )
    ] + list(surge)
    events.sort(key=lambda e: (e.event_ms, e.mention_id))
    records = [as_record(e) for e in events]
    later = [r for r in records if r["created_at_ms"] >= T0 + 2 * DAY]
    records = [r for r in records if r["created_at_ms"] < T0 + 2 * DAY]
    env = {"STORMVARSEL_TOPIC_PARTITIONS": "1", "STORMVARSEL_LOG_LEVEL": "INFO"}
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=20)

    first = start_worker(kafka, tmp_path, **env)
    try:
        send_scored(producer, first.topic("mentions.scored"), records)
        first.wait(
            lambda: first.metrics().get("stormvarsel_buckets_closed_total{}", 0) > 5000,
            120,
            "two days of buckets",
        )
        # The stage saves with the first mention after 5 s of wall time: a fast machine can
        # take the whole burst inside that, so send a few more once it has passed.
        time.sleep(6)
        closed = first.metrics()["stormvarsel_buckets_closed_total{}"]
        send_scored(producer, first.topic("mentions.scored"), later[:5])
        first.wait(
            lambda: first.metrics()["stormvarsel_buckets_closed_total{}"] > closed,
            60,
            "the mentions that trigger a save",
        )
        # These mentions close the surge's buckets and open the storm: the stage saves at once
        # after an episode change, not with its next mention 5 s later, so a stop now still
        # leaves the storm in the saved state for the rebucketed worker to abandon.
        assert saved_within(first, "acme", 30), "the first worker never saved acme's open storm"
    finally:
        stop_cleanly(first)

    def restart(name: str, detector_yaml: str, sent: list[dict[str, Any]]) -> RunningWorker:
        config = tmp_path / f"{name}.yaml"
        config.write_text(detector_yaml)
        worker = start_worker(
            kafka,
            tmp_path,
            prefix=first.prefix,
            STORMVARSEL_DETECTOR_CONFIG=str(config),
            **env,
        )
        send_scored(producer, worker.topic("mentions.scored"), sent)
        return worker

    retuned = restart("retuned", "states:\n  watch_enter: 1.3\n", later[5:25])
    try:
        retuned.wait(
            lambda: retuned.metrics().get(f"{RETUNED}{{}}", 0) == 2,
            120,
            "both brands' states to continue under the new thresholds",
        )
        assert retuned.metrics().get(f"{DISCARDED}{{}}", 0) == 0
        # The states are restored when the rebalance completes, before the first record is
        # read, so the buckets close a moment after the metric says so.
        retuned.wait(
            lambda: retuned.metrics().get("stormvarsel_buckets_closed_total{}", 0) > 0,
            60,
            "the restarted worker to close buckets",
        )
        time.sleep(7)
    finally:
        stop_cleanly(retuned)
    assert "detect.state_retuned" in retuned.log.read_text()

    rebucketed = restart("rebucketed", "bucket_minutes: 5\n", later[25:])
    try:
        rebucketed.wait(
            lambda: rebucketed.metrics().get(f"{DISCARDED}{{}}", 0) == 2,
            120,
            "both brands' states to be dropped for their other bucket size",
        )
        rebucketed.wait(
            lambda: rebucketed.metrics().get("stormvarsel_buckets_closed_total{}", 0) > 0,
            60,
            "fresh detectors to close buckets",
        )
        alerts = [json.loads(r.value) for r in rebucketed.consume("alerts", 2)]
    finally:
        rebucketed.stop()
        producer.close()
    assert "detect.state_discarded" in rebucketed.log.read_text()
    storm = [a for a in alerts if a["brand"] == "acme" and a["kind"] == "storm"]
    assert storm and storm[0]["change"] == "opened", [a["change"] for a in alerts]
    assert storm[-1]["change"] == "abandoned", [a["change"] for a in storm]
    assert storm[-1]["alert_id"] == storm[0]["alert_id"]
    assert storm[-1]["status"] == "resolved"
    assert "detect.episode_abandoned" in rebucketed.log.read_text()
