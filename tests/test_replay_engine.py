"""The replay pipeline without Kafka: the live stages' code, the live partitioning, and every
record accounted for (a stand-in scorer; the real one runs in tests/test_replay_kafka.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary, EpisodeEvent
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents.detect import alert_record
from streams.agents.score import BatchScorer
from streams.agents.validate import Passed, check_mention, valid_value
from streams.brand_matching import BrandMatcher
from streams.brands import BrandsFile, load_brands
from streams.dedup import Deduplicator
from streams.mention import Limits
from streams.replay.engine import ReplayEngine, RunSpec, SourceRecord, key_partition
from streams.replay.publish import check_prefix
from streams.replay.report_wording import counts_rows, uncounted_warnings
from streams.replay.result import BucketPoint, ReplayResult
from streams.replay.source import ReplayOptionError
from streams.sentiment.base import Sentiment
from streams.settings import Settings
from tests.storm_scenario import BRAND, COMPLAINTS, MINUTE, T0, phases

OTHERS = ("acme", "bolt")
PARTITIONS = 2
HOUR = 60 * MINUTE
COMPLAINT_TEXTS = {text for _, text in COMPLAINTS}
DELAY = 3 * MINUTE


def delayed(t_ms: int) -> bool:
    return 10 * HOUR <= t_ms - T0 < 12 * HOUR


class TextScorer:
    """Negative for the scenario's complaints, neutral otherwise: the same text, the same score."""

    version = "text-rules"

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        return [
            Sentiment(0.9, 0.05, 0.05) if t in COMPLAINT_TEXTS else Sentiment(0.05, 0.9, 0.05)
            for t in texts
        ]


@pytest.fixture(scope="module")
def brands(tmp_path_factory: pytest.TempPathFactory) -> BrandsFile:
    path = tmp_path_factory.mktemp("brands") / "brands.yaml"
    entries = [
        "  - name: Nordlys Energi\n    id: nordlys-energi\n    languages: [nb, sv, en]\n"
        "    oncall: {team: comms-nordic}\n",
        *(f"  - name: {b.title()}\n    id: {b}\n    oncall: {{team: comms-{b}}}\n" for b in OTHERS),
    ]
    path.write_text("brands:\n" + "".join(entries), encoding="utf-8")
    return load_brands(path)


def raw_mentions() -> list[tuple[int, bytes, bytes]]:
    """(timestamp, key, value) of the scenario's storm brand and two calm brands, in time
    order, as a collector sends them to ``mentions``."""
    out = []
    for records in phases().values():
        for r in records:
            out.append((r["created_at_ms"], r["id"], BRAND, r["text"], r["lang"]))
    for i, brand in enumerate(OTHERS):
        for n in range(0, 30 * 60, 2 + i):  # a mention every 2 or 3 minutes for 30 hours
            out.append((T0 + n * MINUTE + 7_000 * i, f"{brand}-{n}", brand, "Fine day", "en"))
    # For two hours bolt's collector runs three minutes behind: bolt has a partition of its own
    # (PARTITIONS = 2), so that does not matter; with a watermark shared with the storm brand's
    # steady stream its mentions would arrive too late.
    out.sort(key=lambda m: (m[0] + (DELAY if m[2] == "bolt" and delayed(m[0]) else 0), m[1]))
    records = []
    for t_ms, mention_id, brand, text, lang in out:
        value = {
            "id": mention_id,
            "text": text,
            "created_at": datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(),
            "brand": brand,
            "lang": lang,
            "platform": "x",
            "author": {"id": f"u-{mention_id}", "followers": 100},
        }
        records.append((t_ms, mention_id.encode(), json.dumps(value).encode()))
    return records


def engine(
    brands: BrandsFile,
    *,
    stage: str = "mentions",
    start_ms: int = T0,
    end_ms: int = T0 + 2 * 24 * HOUR,
    warmup_ms: int = 0,
    selected: frozenset[str] = frozenset(),
    runs: list[RunSpec] | None = None,
    tail_ms: int = 0,
) -> ReplayEngine:
    return ReplayEngine(
        stage=stage,  # type: ignore[arg-type]
        runs=runs or [RunSpec("live configuration", DetectorConfig())],
        start_ms=start_ms,
        end_ms=end_ms,
        warmup_start_ms=start_ms - warmup_ms,
        lateness_ms=60_000,
        partitions=PARTITIONS,
        voices=brands.voices(),
        matcher=BrandMatcher.from_file(brands),
        limits=Limits(),
        dedup_window_ms=24 * 3_600_000,
        scorer=BatchScorer(TextScorer) if stage != "scored" else None,
        batch_size=64,
        brands=selected,
        tail_ms=tail_ms,
    )


def run(eng: ReplayEngine, records: list[tuple[int, bytes, bytes]]) -> list[dict[str, Any]]:
    for offset, (t_ms, key, value) in enumerate(records):
        eng.feed(SourceRecord(0, offset, t_ms, key, value))
    return eng.finish()[0].alerts


@pytest.fixture(scope="module")
def full(brands: BrandsFile) -> tuple[ReplayEngine, list[dict[str, Any]]]:
    eng = engine(brands)
    return eng, run(eng, raw_mentions())


def live_detect_stage(
    brands: BrandsFile, partitions: int
) -> tuple[list[dict[str, Any]], dict[str, list[BucketPoint]]]:
    """What the live detect agent makes of the mentions: one Replayer per partition of
    mentions.scored (brand key, murmur2), mentions in arrival order, alerts in the brand's
    voice; outputs of the range only."""
    replayers = [Replayer(DetectorConfig(), 60_000) for _ in range(partitions)]
    alerts: list[dict[str, Any]] = []
    buckets: dict[str, list[BucketPoint]] = {}
    for t_ms, key, value in raw_mentions():
        record = json.loads(value)
        label = "negative" if record["text"] in COMPLAINT_TEXTS else "neutral"
        event = MentionEvent(
            brand=record["brand"],
            event_ms=t_ms,
            sentiment=label,
            followers=100,
            author=f"u-{key.decode()}",
            lang=record["lang"],
            platform="x",
            text=record["text"],
            mention_id=key.decode(),
        )
        partition = replayers[key_partition(record["brand"].encode(), partitions)]
        for output in partition.feed(event):
            if isinstance(output, EpisodeEvent) and output.at_ms > T0:
                alerts.append(alert_record(output, brands.voices()))
            elif isinstance(output, BucketSummary):
                buckets.setdefault(output.brand, []).append(BucketPoint.from_summary(output))
    return alerts, buckets


def test_alerts_are_the_live_detect_stage_s(
    brands: BrandsFile, full: tuple[ReplayEngine, list[dict[str, Any]]]
) -> None:
    """The live detect agent: one Replayer per partition of mentions.scored (brand key,
    murmur2), mentions in arrival order, alert records in the brand's voice."""
    full_engine, alerts = full
    assert len({key_partition(b.encode(), PARTITIONS) for b in (BRAND, *OTHERS)}) == 2, (
        "the scenario should put two brands on one partition and one on the other"
    )
    expected, buckets = live_detect_stage(brands, PARTITIONS)
    assert alerts == expected
    assert full_engine.results[0].buckets == buckets
    # The input makes the partitioning matter: with one watermark for all brands, bolt's
    # delayed mentions would be late (counted, not added) and its buckets would differ.
    assert sum(p.late for p in buckets["bolt"]) == 0
    shared = live_detect_stage(brands, 1)[1]["bolt"]
    assert sum(p.late for p in shared) > 0 and shared != buckets["bolt"]
    opened = [a for a in alerts if a["change"] == "opened" and a["kind"] == "storm"]
    assert [a["brand"] for a in opened] == [BRAND]
    assert alerts[0]["brand_name"] == "Nordlys Energi"  # the brands file's voice


def test_one_brand_alone_gets_exactly_its_alerts_of_the_full_run(
    brands: BrandsFile, full: tuple[ReplayEngine, list[dict[str, Any]]]
) -> None:
    """--brand: the others are not scored, but their mentions still move the shared watermark."""
    full_engine, alerts = full
    alone = engine(brands, selected=frozenset({BRAND}))
    mine = run(alone, raw_mentions())
    assert mine == [a for a in alerts if a["brand"] == BRAND] and mine
    assert alone.counts.scored < full_engine.counts.scored
    assert alone.counts.other_brands == full_engine.counts.scored - alone.counts.scored
    assert set(alone.results[0].buckets) == {BRAND}


def test_every_record_is_accounted_for(brands: BrandsFile) -> None:
    records = raw_mentions()[:3000]
    t_last = records[-1][0]
    extra = [
        (t_last, b"dup", records[10][2]),  # the same mention again: a duplicate
        (t_last, b"bad", b'{"id": "broken", "text": '),  # invalid JSON
        (t_last, b"none", json.dumps({"id": "n", "text": "nothing here",
                                      "created_at": "2026-03-02T12:00:00Z"}).encode()),
        (T0 + 3 * 24 * HOUR, b"late", records[5][2]),  # after the range
    ]  # fmt: skip
    eng = engine(brands, start_ms=T0 + HOUR, warmup_ms=HOUR)
    run(eng, records + extra)
    c = eng.counts
    assert c.read == len(records) + 4
    assert c.outside == 1
    assert c.warmup == sum(1 for t, _, _ in records if t < T0 + HOUR)
    assert c.in_range == len(records) + 3 - c.warmup
    assert c.duplicates == 1 and c.unmatched == 1 and c.dead_letters == {"invalid_json": 1}
    assert c.passed == c.scored == c.detected == len(records)
    # Nothing from the warm-up hour is reported.
    starts = [p.start_ms for pts in eng.results[0].buckets.values() for p in pts]
    assert starts and min(starts) >= T0 + HOUR


def test_replaying_the_scored_topic_gives_the_same_alerts(
    brands: BrandsFile, full: tuple[ReplayEngine, list[dict[str, Any]]]
) -> None:
    """From mentions.scored (detection only, partitions as recorded) the very same alerts; a
    copy an upstream stage wrote twice is counted once, as live."""
    _, alerts = full
    scorer = BatchScorer(TextScorer)
    eng = engine(brands, stage="scored")
    matcher = BrandMatcher.from_file(brands)
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    for t_ms, _key, value in raw_mentions():
        record = json.loads(value)
        record["brand"] = matcher.resolve(record["brand"])
        record["created_at_ms"] = t_ms
        ((payload, _),) = scorer.run([json.dumps(record).encode()])  # type: ignore[misc]
        partition = key_partition(record["brand"].encode(), PARTITIONS)
        copies = 2 if record["id"] == "storm-5000" else 1  # a crashed scorer wrote it twice
        for _ in range(copies):
            eng.feed(SourceRecord(partition, offsets[partition], t_ms, None, payload))
            offsets[partition] += 1
    assert eng.finish()[0].alerts == alerts
    assert eng.counts.copies == 1  # dropped as the live detect stage drops it


def test_a_second_configuration_runs_on_the_same_scores(brands: BrandsFile) -> None:
    touchy = DetectorConfig.from_dict({"states": {"watch_enter": 0.6, "watch_exit": 0.3}})
    eng = engine(
        brands,
        runs=[RunSpec("live configuration", DetectorConfig()), RunSpec("candidate", touchy)],
    )
    run(eng, raw_mentions())
    live, candidate = (r.alerts for r in eng.results)
    assert eng.counts.scored == len(raw_mentions())  # scored once for both
    first = {r: next(a["changed_at_ms"] for a in alerts if a["brand"] == BRAND)
             for r, alerts in (("live", live), ("candidate", candidate))}  # fmt: skip
    assert first["candidate"] <= first["live"]


def test_publish_prefix_never_names_a_live_topic() -> None:
    settings = Settings(topic_prefix="prod.")
    assert check_prefix(settings, "replay.", 2)[1] == (
        "replay.candidate.alerts",
        "replay.candidate.buckets",
    )
    with pytest.raises(ReplayOptionError, match=r"live topic 'prod\.alerts'"):
        check_prefix(settings, "prod.", 1)
    with pytest.raises(ReplayOptionError, match="not a valid topic name"):
        check_prefix(settings, "a b", 1)


def test_replaying_the_validated_topic_gives_the_same_alerts(
    brands: BrandsFile, full: tuple[ReplayEngine, list[dict[str, Any]]]
) -> None:
    """From mentions.valid (scoring and detection): the very same alerts."""
    _, alerts = full
    matcher = BrandMatcher.from_file(brands)
    dedup = Deduplicator({}, 24 * 3_600_000)
    eng = engine(brands, stage="valid")
    offsets: dict[int, int] = {}
    for offset, (t_ms, _key, value) in enumerate(raw_mentions()):
        outcome = check_mention(
            value, 0, offset, limits=Limits(), matcher=matcher, dedup=dedup, generation=0
        )
        assert isinstance(outcome, Passed)
        for brand_id, record in outcome.records:
            partition = key_partition(brand_id.encode(), PARTITIONS)
            at = offsets[partition] = offsets.get(partition, -1) + 1
            eng.feed(SourceRecord(partition, at, t_ms, brand_id.encode(), valid_value(record)))
    assert eng.finish()[0].alerts == alerts
    assert eng.counts.scored == eng.counts.passed == len(raw_mentions())


def test_validation_stamps_the_arrival_that_caps_the_watermark(brands: BrandsFile) -> None:
    """Each passed record carries the validator's clock as ``received_at_ms``; the detectors
    read it back, so a replay of ``mentions.valid`` or ``mentions.scored`` moves the watermark
    exactly as the live stage did, even for a mention dated ahead of its arrival."""
    matcher = BrandMatcher.from_file(brands)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    ahead = int(now.timestamp()) + 1800  # half an hour ahead: within the allowed skew
    mention = {"id": "1", "text": "again", "created_at": ahead, "brand": BRAND}
    value = json.dumps(mention).encode()
    outcome = check_mention(
        value,
        0,
        0,
        limits=Limits(),
        matcher=matcher,
        dedup=Deduplicator({}, 24 * 3_600_000),
        generation=0,
        now=now,
    )
    assert isinstance(outcome, Passed)
    [(_brand, record)] = outcome.records
    assert record["received_at_ms"] == int(now.timestamp() * 1000)
    event = MentionEvent.from_record({**record, "sentiment": {"label": "neutral"}})
    assert (event.event_ms, event.clock_ms) == (ahead * 1000, int(now.timestamp() * 1000))


def test_a_brand_alone_sees_the_full_run_s_watermark_after_a_mention_dated_ahead(
    brands: BrandsFile,
) -> None:
    """From mentions.valid, where the validate stage's arrival stamps are: an acme mention
    dated 30 minutes ahead of its arrival, on the storm brand's partition. The full run and a
    run of the storm brand alone (acme only ticks there) must both move the watermark by its
    arrival, not its date, so the storm brand's buckets are the same and none of its mentions
    is late."""
    raws = raw_mentions()
    assert key_partition(b"acme", PARTITIONS) == key_partition(BRAND.encode(), PARTITIONS)
    middle = len(raws) // 2
    arrival = raws[middle][0]
    ahead = {
        "id": "ahead",
        "text": "Fine day",
        "created_at": datetime.fromtimestamp((arrival + 30 * MINUTE) / 1000, UTC).isoformat(),
        "brand": "acme",
    }
    raws.insert(middle, (arrival, b"ahead", json.dumps(ahead).encode()))
    matcher = BrandMatcher.from_file(brands)
    dedup = Deduplicator({}, 24 * 3_600_000)
    valid: list[SourceRecord] = []
    offsets: dict[int, int] = {}
    for offset, (t_ms, _key, value) in enumerate(raws):
        outcome = check_mention(
            value,
            0,
            offset,
            limits=Limits(),
            matcher=matcher,
            dedup=dedup,
            generation=0,
            now=datetime.fromtimestamp(t_ms / 1000, UTC),
        )
        assert isinstance(outcome, Passed)
        for brand_id, record in outcome.records:
            partition = key_partition(brand_id.encode(), PARTITIONS)
            at = offsets[partition] = offsets.get(partition, -1) + 1
            valid.append(SourceRecord(partition, at, t_ms, brand_id.encode(), valid_value(record)))
    results = []
    for selected in (frozenset(), frozenset({BRAND})):
        eng = engine(brands, stage="valid", selected=selected)
        for record in valid:
            eng.feed(record)
        results.append(eng.finish()[0])
    full, alone = results
    assert alone.buckets[BRAND] == full.buckets[BRAND]
    assert alone.alerts == [a for a in full.alerts if a["brand"] == BRAND] and alone.alerts
    assert sum(p.late for p in full.buckets[BRAND]) == 0


def test_the_last_buckets_before_the_end_close_as_they_did_live(brands: BrandsFile) -> None:
    """The records just after --to still move the watermark (as they did live) without being
    counted; before, they were skipped, so the buckets of the range's last minutes never
    closed and its last episode changes were missing."""
    end = T0 + 20 * HOUR + 30 * MINUTE
    eng = engine(brands, end_ms=end, tail_ms=15 * MINUTE)
    records = raw_mentions()
    run(eng, records)
    live = {
        brand: [p for p in points if p.start_ms < end]
        for brand, points in live_detect_stage(brands, PARTITIONS)[1].items()
    }
    got = eng.results[0].buckets
    assert got == live
    assert max(p.end_ms for p in got[BRAND]) == end  # closed right up to the end
    c = eng.counts
    assert c.after == sum(1 for t, _, _ in records if end <= t < end + 15 * MINUTE) > 0
    assert c.in_range + c.after + c.outside == c.read
    assert c.detected == c.in_range  # the records after the end are not counted as mentions


def test_every_detected_mention_is_in_a_bucket_late_or_still_open(brands: BrandsFile) -> None:
    """The report reconciles "mentions detected" with the charts: late mentions and those in
    buckets no later record closed are counted, and warned about when they are many."""
    end = T0 + 20 * HOUR
    records = [r for r in raw_mentions() if r[0] < end]  # the topic ends with the range
    # A collector held 20 mentions for 10 minutes: their buckets had closed when they came.
    held, rest = records[1000:1020], records[:1000] + records[1020:]
    at = next(i for i, r in enumerate(rest) if r[0] > held[-1][0] + 10 * MINUTE)
    eng = engine(brands, end_ms=end, tail_ms=15 * MINUTE)
    run(eng, rest[:at] + held + rest[at:])
    result = eng.results[0]
    in_buckets = sum(p.volume for points in result.buckets.values() for p in points)
    assert result.late == 20
    assert result.unclosed > 0
    assert in_buckets + result.late + result.unclosed == eng.counts.detected
    replay = ReplayResult(
        topic="mentions",
        stage="mentions",
        start_ms=T0,
        end_ms=end,
        warmup_start_ms=T0,
        runs=eng.results,
        counts=eng.counts,
    )
    assert uncounted_warnings(replay) == []  # 20 + a few in 4,600: below the 1 % warned at
    result.late = eng.counts.detected // 20
    (warning,) = uncounted_warnings(replay)
    assert f"{result.late:,} arrived after their bucket had closed" in warning
    assert "later --to" in warning


def _reconciled(eng: ReplayEngine) -> tuple[int, int]:
    """(mentions of the range the detectors were given, those the counts table puts somewhere:
    in a charted bucket, late, in a bucket still open, in the bucket --from cuts)."""
    result = eng.results[0]
    in_buckets = sum(p.volume for points in result.buckets.values() for p in points)
    return eng.counts.detected_in_range, in_buckets + result.late + result.unclosed + result.cut


def test_a_mention_of_the_range_counted_late_after_the_end_is_still_counted(
    brands: BrandsFile,
) -> None:
    """A mention dated 3 minutes before --to that came after mentions dated 10 minutes past it
    (its bucket had closed) is late; the next bucket of its brand that closes, where the
    detector reports it, lies past the end and is not reported. Before, the mention was in no
    count of the table: mentions in buckets + late + open fell one short of those detected."""
    end = T0 + 20 * HOUR
    records = [r for r in raw_mentions() if r[0] < end + 15 * MINUTE]
    moved = next(i for i, r in enumerate(records) if r[0] >= end - 3 * MINUTE)
    held = records.pop(moved)
    at = next(i for i, r in enumerate(records) if r[0] >= end + 10 * MINUTE)
    records.insert(at, held)
    eng = engine(brands, end_ms=end, tail_ms=15 * MINUTE)
    run(eng, records)
    assert eng.results[0].late == 1
    detected, placed = _reconciled(eng)
    assert detected == placed == eng.counts.in_range


def test_warm_up_mentions_are_counted_apart_from_those_of_the_range(brands: BrandsFile) -> None:
    """With a warm-up, "mentions detected" held the warm-up's too: the range's buckets, late
    and open mentions could never add up to it, and the share warned about was diluted."""
    start, end = T0 + 6 * HOUR + 30_000, T0 + 20 * HOUR  # --from inside a bucket
    records = [r for r in raw_mentions() if r[0] < end]
    eng = engine(brands, start_ms=start, end_ms=end, warmup_ms=6 * HOUR + 30_000)
    run(eng, records)
    c = eng.counts
    assert c.detected_warmup == sum(1 for t, _, _ in records if t < start) > 0
    assert c.detected == c.detected_warmup + c.detected_in_range
    detected, placed = _reconciled(eng)
    assert detected == placed == sum(1 for t, _, _ in records if start <= t < end)
    assert eng.results[0].cut > 0  # mentions of 06:00:30-06:01, in the bucket --from cuts
    replay = ReplayResult(
        topic="mentions",
        stage="mentions",
        start_ms=start,
        end_ms=end,
        warmup_start_ms=T0,
        runs=eng.results,
        counts=c,
    )
    rows = dict(counts_rows(replay))
    assert rows["of them dated in the warm-up (teaching the detectors only)"] == (
        f"{c.detected_warmup:,}"
    )
    assert rows["of them dated in the range"] == f"{c.detected_in_range:,}"
