"""Carrying brands' detectors over a reset of the workers' state (``streams.detector_seeds``), on
plain tables: what is kept, and when a kept detector is used. The real broker and worker:
``tests/test_topic_growth.py``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents import detect_state
from streams.agents.detect_state import Disposition, PartitionState
from streams.detector_seeds import (
    MAX_GAP_MS,
    collect_seeds,
    covered,
    seed_function,
    seed_records,
)
from tests.test_detect_stage import AIRLINES, scored_airline_records

LATENESS_MS = 60_000
DAY_MS = 24 * 3600 * 1000

pytestmark = pytest.mark.skipif(
    not AIRLINES.exists(), reason=f"shared data not found at {AIRLINES}"
)


def run_partition(
    records: list[dict[str, Any]], save_every: int
) -> tuple[PartitionState, dict[str, Any], dict[str, Any]]:
    """The detect stage's bookkeeping over ``records`` on one partition, saving every
    ``save_every`` records, with tables as their changelogs hold them (JSON)."""
    state = PartitionState(Replayer(DetectorConfig(), LATENESS_MS))
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    for offset, record in enumerate(records):
        mention = MentionEvent.from_record(record)
        detect_state.take(state, Disposition.FEED, offset, record, mention, pending, 0)
        if offset % save_every == save_every - 1:
            detect_state.save(0, state, states, pending)
    return state, json.loads(json.dumps(states)), json.loads(json.dumps(pending))


def test_the_seeds_are_the_detectors_as_the_worker_left_them() -> None:
    """The last save is behind the last mention: the mentions since then (pending) are in the
    seeds too, as a restarted worker would replay them."""
    records = scored_airline_records()[:6500]  # the last save was at the 6,000th
    live, states, pending = run_partition(records, save_every=1000)

    seeds = collect_seeds(states, pending, DetectorConfig(), LATENESS_MS)

    assert sorted(seeds) == sorted(live.replayer.detectors)
    for brand, detector in live.replayer.detectors.items():
        assert seeds[brand].to_state() == detector.to_state(), brand
    # Without the pending mentions, the saved states alone are behind.
    saved_only = collect_seeds(states, {}, DetectorConfig(), LATENESS_MS)
    assert sum(d.observed_total for d in saved_only.values()) < len(records)
    assert sum(d.observed_total for d in seeds.values()) == len(records)


def test_a_seed_goes_on_where_its_brand_was_unless_it_is_too_old() -> None:
    records = scored_airline_records()[:6000]
    live, states, pending = run_partition(records, save_every=1000)
    kept = collect_seeds(states, pending, DetectorConfig(), LATENESS_MS)
    topic = json.loads(json.dumps({b: {"state": d.to_state()} for b, d in kept.items()}))
    seed = seed_function(topic, DetectorConfig())
    assert seed is not None
    american = live.replayer.detectors["american"]
    closed = american.closed_until
    assert closed is not None

    carried = seed("american", closed + DAY_MS)
    assert carried is not None and carried.detector is not None
    assert carried.detector.to_state() == american.to_state()
    assert carried.ended == ()
    too_old = seed("american", closed + MAX_GAP_MS + DAY_MS)  # silent too long: afresh
    assert too_old is not None and too_old.detector is None
    assert seed("norwegian", closed) is None  # a brand that has no seed
    assert seed_function({}, DetectorConfig()) is None


def test_a_replayer_takes_a_new_brand_from_its_seed() -> None:
    records = scored_airline_records()
    first_day = [
        r for r in records if r["created_at_ms"] < records[0]["created_at_ms"] + 3 * DAY_MS
    ]
    learnt = Replayer(DetectorConfig(), LATENESS_MS)
    for record in first_day:
        learnt.feed(MentionEvent.from_record(record))
    kept = {b: {"state": d.to_state()} for b, d in learnt.detectors.items()}

    seed = seed_function(json.loads(json.dumps(kept)), DetectorConfig())
    fresh = Replayer(DetectorConfig(), LATENESS_MS, seed)
    following = records[len(first_day)]
    fresh.feed(MentionEvent.from_record(following))
    brand = following["brand"]
    assert fresh.detectors[brand].observed_total == learnt.detectors[brand].observed_total + 1


def storm_seeds() -> tuple[dict[str, Any], list[EpisodeEvent], int]:
    """Seeds kept in the middle of American's 22 February storm (still open), the episode events
    emitted until then, and the seeds' watermark."""
    records = scored_airline_records()
    middle = int(datetime(2015, 2, 23, 12, tzinfo=UTC).timestamp() * 1000)
    learnt = Replayer(DetectorConfig(), LATENESS_MS)
    events = [
        out
        for record in records
        if record["created_at_ms"] < middle
        for out in learnt.feed(MentionEvent.from_record(record))
        if isinstance(out, EpisodeEvent)
    ]
    kept = {b: {"state": d.to_state()} for b, d in learnt.detectors.items()}
    return json.loads(json.dumps(kept)), events, middle


def american_mention(event_ms: int) -> MentionEvent:
    record = {**scored_airline_records()[0], "brand": "american", "created_at_ms": event_ms}
    return MentionEvent.from_record(record)


@pytest.mark.parametrize("why", ["too old", "other bucket size"])
def test_a_seed_that_cannot_go_on_ends_its_open_storm(why: str) -> None:
    """A brand whose seed is not used starts afresh: the storm its seed left open is ended
    (``abandoned``, under the episode's own id) by the first mention, rather than left to its
    carried-over alert, which would fire on for a day with nothing following it."""
    kept, events, middle = storm_seeds()
    opened = [
        e
        for e in events
        if e.episode["brand"] == "american" and e.type == "opened" and e.episode["kind"] == "storm"
    ]
    ended = {e.episode["episode_id"] for e in events if e.type in ("resolved", "abandoned")}
    open_storms = [e for e in opened if e.episode["episode_id"] not in ended]
    assert len(open_storms) == 1, "American's storm is open at the seeds' moment"
    config = DetectorConfig()
    first_ms = middle + DAY_MS
    if why == "too old":
        first_ms = middle + MAX_GAP_MS + DAY_MS
    else:
        config = DetectorConfig(bucket_minutes=5)
    seed = seed_function(kept, config)
    assert seed is not None

    fresh = Replayer(config, LATENESS_MS, seed)
    outputs = fresh.feed(american_mention(first_ms))

    abandoned = [o for o in outputs if isinstance(o, EpisodeEvent) and o.type == "abandoned"]
    assert [
        (e.episode["brand"], e.episode["kind"], e.episode["episode_id"]) for e in abandoned
    ] == [("american", "storm", open_storms[0].episode["episode_id"])]
    assert fresh.detectors["american"].observed_total == 1  # afresh
    # Only the first mention carries them: the brand is on its own detector after that.
    later = fresh.feed(american_mention(first_ms + 60_000))
    assert not [o for o in later if isinstance(o, EpisodeEvent) and o.type == "abandoned"]


def test_a_seed_that_goes_on_ends_nothing() -> None:
    kept, _events, middle = storm_seeds()
    seed = seed_function(kept, DetectorConfig())
    assert seed is not None
    fresh = Replayer(DetectorConfig(), LATENESS_MS, seed)
    outputs = fresh.feed(american_mention(middle + 3_600_000))
    assert not [o for o in outputs if isinstance(o, EpisodeEvent) and o.type == "abandoned"]
    assert fresh.detectors["american"].observed_total > 1


def test_a_brand_with_saved_state_here_is_never_seeded_again() -> None:
    """American continued from its seed after the topics grew, its storm ended and its state
    was saved; then the bucket size changed, and the rebuild dropped that state (it has no open
    episode: nothing to abandon). Its next mention asked the seeds again, and the seed (from
    before the growth, unusable now) sent ``abandoned`` for the storm it had left open: an
    alert the storm's own ``resolved`` had ended long ago was updated again."""
    kept, _events, middle = storm_seeds()
    five = DetectorConfig(bucket_minutes=5)
    seed = seed_function(kept, five)
    assert seed is not None
    calm = BrandDetector("american").to_state()
    states: dict[str, Any] = {
        "american": {"partition": 0, "state": calm, "max": None, "adv": None, "offset": 3}
    }
    rebuilt = detect_state.rebuild(list(states.items()), [], {0}, five, LATENESS_MS, seed)[0]
    assert rebuilt.abandoned == [] and rebuilt.dropped == ["american"]
    outputs = rebuilt.replayer.feed(american_mention(middle + 30 * DAY_MS))
    assert not [o for o in outputs if isinstance(o, EpisodeEvent)]
    assert rebuilt.replayer.detectors["american"].observed_total == 1  # afresh

    # Saved before the brand's next mention: the tables remember it had state here.
    quiet = detect_state.rebuild(list(states.items()), [], {0}, five, LATENESS_MS, seed)[0]
    detect_state.save(0, quiet, states, {})
    again = detect_state.rebuild(list(states.items()), [], {0}, five, LATENESS_MS, seed)[0]
    assert again.abandoned == [] and again.dropped == []
    outputs = again.replayer.feed(american_mention(middle + 30 * DAY_MS))
    assert not [o for o in outputs if isinstance(o, EpisodeEvent)]
    # Brands that never had state here still go on from their seeds.
    state = detect_state.fresh(
        DetectorConfig(), LATENESS_MS, seed_function(kept, DetectorConfig()), {"american"}
    )
    state.replayer.feed(american_mention(middle + 3_600_000))
    assert state.replayer.detectors["american"].observed_total == 1
    united = {**scored_airline_records()[0], "brand": "united", "created_at_ms": middle}
    state.replayer.feed(MentionEvent.from_record(united))
    carried = BrandDetector.from_state(kept["united"]["state"]).observed_total
    assert state.replayer.detectors["united"].observed_total == carried + 1


def test_a_carried_detectors_late_mentions_are_not_counted_again() -> None:
    """``stormvarsel_late_mentions`` went up by a carried detector's whole history of late
    mentions at its brand's first mention after the growth."""
    minute = 60_000
    t0 = 1_772_409_600_000
    learnt = Replayer(DetectorConfig(), LATENESS_MS)
    for i in range(300):
        learnt.feed(MentionEvent(brand="acme", event_ms=t0 + i * minute, sentiment="neutral"))
        if i % 3 == 0 and i > 10:
            late = MentionEvent(brand="acme", event_ms=t0 + (i - 10) * minute, sentiment="neutral")
            learnt.feed(late)
    assert learnt.detectors["acme"].late_total > 50
    kept = json.loads(json.dumps({"acme": {"state": learnt.detectors["acme"].to_state()}}))
    state = detect_state.fresh(DetectorConfig(), LATENESS_MS, seed_function(kept, DetectorConfig()))

    def late_metric() -> float:
        return REGISTRY.get_sample_value("stormvarsel_late_mentions_total") or 0.0

    before = late_metric()
    on_time = MentionEvent(brand="acme", event_ms=t0 + 301 * minute, sentiment="neutral")
    detect_state.count(state, Disposition.FEED, 0, on_time)
    assert state.replayer.detectors["acme"].observed_total > 300  # carried over
    assert late_metric() == before
    late = MentionEvent(brand="acme", event_ms=t0 + 100 * minute, sentiment="neutral")
    detect_state.count(state, Disposition.FEED, 1, late)
    assert late_metric() == before + 1
    other = MentionEvent(brand="globex", event_ms=t0 + 200 * minute, sentiment="neutral")
    detect_state.count(state, Disposition.FEED, 2, other)  # new here, before the watermark
    assert late_metric() == before + 2


def seeded_then(count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The seeds a first reset wrote after three days of the airline week (as the seeds topic
    holds them, JSON), and the ``count`` mentions that followed."""
    records = scored_airline_records()
    split = records[0]["created_at_ms"] + 3 * DAY_MS
    learnt = Replayer(DetectorConfig(), LATENESS_MS)
    for record in records:
        if record["created_at_ms"] < split:
            learnt.feed(MentionEvent.from_record(record))
    first = json.loads(
        json.dumps({b: {"state": d.to_state()} for b, d in learnt.detectors.items()})
    )
    return first, [r for r in records if r["created_at_ms"] >= split][:count]


def test_a_second_reset_keeps_what_a_brand_carried_from_the_first() -> None:
    """The topics grew twice in a row. After the first growth United went on from its seed,
    and its mentions since were still only pending when the second growth collected the seeds:
    rebuilt without the first seeds, its detector held those few mentions alone, and the days of
    baselines it had carried were lost (another warm-up)."""
    first, following = seeded_then(400)

    # The worker after the first growth: brands new on its partition go on from their seeds.
    state = detect_state.fresh(
        DetectorConfig(), LATENESS_MS, seed_function(first, DetectorConfig())
    )
    pending: dict[str, Any] = {}
    for offset, record in enumerate(following):
        mention = MentionEvent.from_record(record)
        detect_state.take(state, Disposition.FEED, offset, record, mention, pending, 0)
    pending = json.loads(json.dumps(pending))
    worker = state.replayer.detectors

    seeds = collect_seeds({}, pending, DetectorConfig(), LATENESS_MS, first)
    assert sorted(seeds) == sorted(worker)
    for brand, detector in worker.items():
        assert seeds[brand].to_state() == detector.to_state(), brand
    united = sum(1 for r in following if r["brand"] == "united")
    carried = BrandDetector.from_state(first["united"]["state"]).observed_total
    assert united > 50 and carried > 1000
    assert seeds["united"].observed_total == carried + united
    without = collect_seeds({}, pending, DetectorConfig(), LATENESS_MS)
    assert without["united"].observed_total == united  # what the second reset kept

    # That second reset wrote its seeds, but deleting the state topics failed, and it is run
    # again on the same tables: its own seeds already hold the pending mentions.
    written = seed_records(seeds, {}, first, 0.0, covered({}, pending))
    again = collect_seeds(
        {}, pending, DetectorConfig(), LATENESS_MS, json.loads(json.dumps(written))
    )
    for brand, detector in worker.items():
        assert again[brand].to_state() == detector.to_state(), brand
    # A seed that covers only some of them (a worker ran on the tables since): the seed, and
    # the mentions it does not hold on top of it, as that worker had them.
    more = dict(pending)
    extra = {**following[0], "brand": "united", "created_at_ms": following[-1]["created_at_ms"]}
    more[detect_state.pending_key("united", 10_000)] = {
        "partition": 0,
        "offset": 10_000,
        "mention": extra,
    }
    partly = collect_seeds({}, more, DetectorConfig(), LATENESS_MS, written)
    assert partly["united"].observed_total == carried + united + 1


def test_workers_restarted_after_an_interrupted_reset_count_nothing_twice() -> None:
    """A reset wrote its seeds, then failed to delete the state topics, and the workers were
    started again on the old tables. A brand with only pending mentions there was seeded with
    a detector that held them already, and the rebuild fed them to it again: every one of them
    counted twice, in the brand's baselines and in the buckets still open."""
    first, following = seeded_then(600)
    # Workers after a completed first reset; nothing saved since (only pending entries).
    state = detect_state.fresh(
        DetectorConfig(), LATENESS_MS, seed_function(first, DetectorConfig())
    )
    states: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    for offset, record in enumerate(following[:400]):
        mention = MentionEvent.from_record(record)
        detect_state.take(state, Disposition.FEED, offset, record, mention, pending, 0)
    pending = json.loads(json.dumps(pending))

    def restart(seeds: dict[str, Any]) -> PartitionState:
        return detect_state.rebuild(
            list(states.items()),
            list(pending.items()),
            {0},
            DetectorConfig(),
            LATENESS_MS,
            seed_function(seeds, DetectorConfig()),
        )[0]

    # The second reset writes its seeds; deleting the state topics then fails.
    seeds = collect_seeds(states, pending, DetectorConfig(), LATENESS_MS, first)
    written = json.loads(json.dumps(seed_records(seeds, {}, first, 0.0, covered(states, pending))))
    # The workers start again on those tables, with the seeds topic as compaction leaves it:
    # as if that reset had not run (the old seeds hold none of the pending mentions).
    restarted, reference = restart({**first, **written}), restart(first)
    united = restarted.replayer.detectors["united"]
    assert united.observed_total == reference.replayer.detectors["united"].observed_total
    # And they go on alike: the next mentions give the same outputs and detectors.
    for offset, record in enumerate(following[400:], start=400):
        mention = MentionEvent.from_record(record)
        got, want = (
            detect_state.take(part, Disposition.FEED, offset, record, mention, {}, 0)
            for part in (restarted, reference)
        )
        assert got == want, offset
    assert sorted(restarted.replayer.detectors) == sorted(reference.replayer.detectors)
    for brand, detector in reference.replayer.detectors.items():
        assert restarted.replayer.detectors[brand].to_state() == detector.to_state(), brand


def test_a_seeds_marks_do_not_hold_the_mentions_of_a_re_created_topic() -> None:
    """The marks name the last pending mention a seed holds by offset *and* content: after a
    completed reset and a re-created source topic, other mentions at the same offsets are new,
    and are counted on top of the seed."""
    records = scored_airline_records()[:900]
    state = detect_state.fresh(DetectorConfig(), LATENESS_MS)
    pending: dict[str, Any] = {}
    for offset, record in enumerate(records[:600]):
        mention = MentionEvent.from_record(record)
        detect_state.take(state, Disposition.FEED, offset, record, mention, pending, 0)
    pending = json.loads(json.dumps(pending))
    seeds = collect_seeds({}, pending, DetectorConfig(), LATENESS_MS)
    written = json.loads(json.dumps(seed_records(seeds, {}, {}, 0.0, covered({}, pending))))
    assert all("covers" in record for record in written.values())

    # New tables (the reset went through), of a topic that starts at offset 0 again.
    later: dict[str, Any] = {}
    fresh = detect_state.fresh(DetectorConfig(), LATENESS_MS)
    for offset, record in enumerate(records[600:]):
        mention = MentionEvent.from_record(record)
        detect_state.take(fresh, Disposition.FEED, offset, record, mention, later, 0)
    later = json.loads(json.dumps(later))
    rebuilt = detect_state.rebuild(
        [],
        list(later.items()),
        {0},
        DetectorConfig(),
        LATENESS_MS,
        seed_function(written, DetectorConfig()),
    )[0].replayer.detectors
    for brand, detector in rebuilt.items():
        new = sum(1 for r in records[600:] if r["brand"] == brand)
        carried = seeds[brand].observed_total if brand in seeds else 0
        assert detector.observed_total == carried + new, brand
