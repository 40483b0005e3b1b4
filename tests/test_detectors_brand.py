"""The brand detector on synthetic streams: storms, buzz, gates, cold start, late mentions,
determinism and state round-trips."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary, EpisodeEvent, Output, canonical_json
from detectors.events import MentionEvent
from detectors.replay import Replayer, replay
from detectors.timeslots import hour_of_day
from tests.detector_support import DAY, HOUR, MINUTE, T0, angry_posts_at_4am, daily_rate, stream


def normal_week(brand: str = "acme", days: int = 7, base: float = 1.0) -> list[MentionEvent]:
    return list(stream(brand, T0, days * 1440, lambda t: daily_rate(hour_of_day(t), base)))


def episodes(outputs: Iterable[Output]) -> list[EpisodeEvent]:
    return [o for o in outputs if isinstance(o, EpisodeEvent)]


def merged(*streams: Iterable[MentionEvent]) -> list[MentionEvent]:
    return sorted((e for s in streams for e in s), key=lambda e: (e.event_ms, e.mention_id))


def test_negative_surge_opens_a_storm_with_drivers() -> None:
    surge_at = T0 + 7 * DAY + 14 * HOUR
    surge = stream(
        "acme",
        surge_at,
        180,
        lambda t: 12.0,
        negative_share=0.85,
        seed=7,
        texts=["refund missing, app crashed at checkout #acmefail", "app crashed again, no refund"],
    )
    events = merged(normal_week(days=8), surge)
    out = episodes(replay(events))
    storms = [e for e in out if e.episode["kind"] == "storm"]
    assert storms and storms[0].type == "opened"
    first = storms[0].episode
    assert surge_at <= first["start_ms"] <= surge_at + 30 * MINUTE
    assert first["first_abnormal_ms"] <= first["start_ms"]
    share = first["figures"]["negative_share"]
    assert share["now"] > share["baseline"]
    resolved = next(e for e in storms if e.type == "resolved").episode
    peak = resolved["peak_figures"]
    assert peak["volume"]["now"] > 3 * peak["volume"]["baseline"]
    assert peak["negative_share"]["now"] > 2 * peak["negative_share"]["baseline"]
    words = [t["term"] for t in resolved["drivers"]["words"][:5]]
    assert {"crashed", "refund"} <= set(words)
    assert "#acmefail" in [t["term"] for t in resolved["drivers"]["hashtags"]]
    assert resolved["drivers"]["top_posts_by_reach"][0]["url"].startswith("https://")
    assert resolved["drivers"]["top_authors"]
    assert resolved["drivers"]["languages"] == {"en": 1.0}
    assert resolved["episode_id"] == first["episode_id"]
    assert resolved["peak_severity"] in ("warning", "critical")


def test_positive_viral_burst_is_buzz_not_storm() -> None:
    burst_at = T0 + 7 * DAY + 15 * HOUR
    burst = stream(
        "acme",
        burst_at,
        120,
        lambda t: 15.0,
        negative_share=0.05,
        positive_share=0.85,
        seed=9,
        texts=["love the new ad campaign", "this ad is brilliant"],
    )
    out = episodes(replay(merged(normal_week(days=8), burst)))
    kinds = {e.episode["kind"] for e in out}
    assert "buzz" in kinds
    assert "storm" not in kinds


def test_normal_weeks_raise_nothing() -> None:
    out = episodes(replay(normal_week(days=14)))
    assert [e.episode["kind"] for e in out if e.episode["severity"] != "watch"] == []


def test_three_angry_posts_at_4am_are_not_a_storm() -> None:
    quiet = list(stream("tiny", T0, 7 * 1440, lambda t: 0.003, seed=3))  # ~4 posts a day
    angry = angry_posts_at_4am("tiny", 3)
    assert episodes(replay(merged(quiet, angry))) == []


def test_cold_start_one_day_of_history_does_not_page_on_the_first_normal_evening() -> None:
    # The brand appears at 08:00 on day one; day two's evening peak (three times the daily
    # mean) is the first evening after one day of history.
    start = T0 + 8 * HOUR
    events = list(stream("fresh", start, 38 * 60, lambda t: daily_rate(hour_of_day(t), 2.0)))
    out = episodes(replay(events))
    assert [e for e in out if e.episode["severity"] in ("warning", "critical")] == []


def test_late_mentions_are_counted_not_lost() -> None:
    d = BrandDetector("acme", DetectorConfig())
    d.observe(MentionEvent("acme", T0 + 30_000, "neutral", mention_id="a"))
    out = d.advance(T0 + 2 * MINUTE)
    assert [o.volume for o in out] == [1, 0]  # type: ignore[union-attr]
    d.observe(MentionEvent("acme", T0 + 10_000, "negative", mention_id="late"))
    assert d.late_total == 1
    d.observe(MentionEvent("acme", T0 + 2 * MINUTE + 1, "neutral", mention_id="b"))
    out = d.advance(T0 + 3 * MINUTE)
    assert out[0].late == 1 and out[0].volume == 1  # type: ignore[union-attr]
    assert d.late_total == 1


def test_a_mention_dated_ahead_of_its_arrival_does_not_make_other_brands_late() -> None:
    """A collector writing Oslo time with a ``Z`` dates a mention an hour ahead, within the
    validator's allowed skew. Its brand still gets it in its own bucket, but the partition's
    watermark moves only as far as the mention's arrival: the other brands' current mentions
    are counted in their buckets, not late for an hour."""

    def run(stamped: bool) -> Replayer:
        replayer = Replayer(lateness_ms=MINUTE)
        ahead = T0 + 60 * MINUTE
        received = T0 if stamped else None
        replayer.feed(
            MentionEvent("skewed", ahead, "neutral", mention_id="z", received_ms=received)
        )
        for minute in range(1, 30):
            at = T0 + minute * MINUTE
            replayer.feed(
                MentionEvent("acme", at, "neutral", mention_id=f"a{minute}", received_ms=at)
            )
        replayer.flush()
        return replayer

    before = run(stamped=False)  # a record without the stamp: the old behaviour
    assert before.detectors["acme"].late_total == 29
    after = run(stamped=True)
    assert after.detectors["acme"].late_total == 0
    skewed = after.detectors["skewed"]
    assert skewed.late_total == 0 and skewed.observed_total == 1
    assert skewed.closed_until is not None and skewed.closed_until > T0 + 60 * MINUTE
    assert skewed.open == {}  # counted in its own (future) bucket once time got there


def test_a_new_brand_older_than_the_watermark_is_late_not_a_year_of_buckets() -> None:
    """A backfill of a brand the stream has not seen (a year-old first mention) counts as late,
    as it would for any known brand, instead of making it close every bucket since."""
    r = Replayer(DetectorConfig(), lateness_ms=MINUTE)
    r.feed(MentionEvent("acme", T0 + 10 * MINUTE, "neutral", mention_id="a"))
    year_ago = T0 - 365 * DAY
    assert r.feed(MentionEvent("newco", year_ago, "negative", mention_id="old")) == []
    assert r.feed(MentionEvent("newco", year_ago + HOUR, "negative", mention_id="old2")) == []
    newco = r.detectors["newco"]
    assert newco.late_total == 2 and not newco.open
    out = r.feed(MentionEvent("newco", T0 + 12 * MINUTE, "neutral", mention_id="now"))
    closed = [o for o in out if o.brand == "newco"]  # type: ignore[union-attr]
    # From the shared watermark on: a minute or two of buckets, the first carrying the late count.
    assert 1 <= len(closed) <= 2
    assert closed[0].start_ms == T0 + 9 * MINUTE and closed[0].late == 2  # type: ignore[union-attr]
    # A brand whose first mention is current starts at its own first bucket, as before.
    r.feed(MentionEvent("third", T0 + 12 * MINUTE + 5_000, "neutral", mention_id="c"))
    assert r.detectors["third"].closed_until is None and r.detectors["third"].late_total == 0


def test_quiet_brand_buckets_close_empty() -> None:
    d = BrandDetector("acme", DetectorConfig())
    d.observe(MentionEvent("acme", T0, "neutral", mention_id="a"))
    out = d.advance(T0 + 10 * MINUTE)
    assert len(out) == 10 and sum(o.volume for o in out) == 1  # type: ignore[union-attr]
    assert d.baseline.history_minutes == 10


def _storm_stream() -> list[MentionEvent]:
    surge = stream(
        "acme", T0 + 3 * DAY + 14 * HOUR, 120, lambda t: 10.0, negative_share=0.9, seed=5
    )
    other = stream("other", T0, 4 * 1440, lambda t: 0.5, seed=11)
    return merged(normal_week(days=4), surge, other)


def test_same_ordered_input_gives_byte_identical_episodes() -> None:
    events = _storm_stream()
    first = [canonical_json(e.to_dict()) for e in episodes(replay(events))]
    second = [canonical_json(e.to_dict()) for e in episodes(replay(events))]
    assert first and first == second
    assert "\n".join(first).encode() == "\n".join(second).encode()


def test_state_round_trip_gives_identical_future_outputs() -> None:
    events = [e for e in _storm_stream() if e.brand == "acme"]
    cut = T0 + 3 * DAY + 14 * HOUR + 30 * MINUTE  # in the middle of the storm

    def run(restore: bool) -> list[str]:
        d = BrandDetector("acme")
        out: list[str] = []
        watermark = T0
        for e in events:
            if restore and e.event_ms >= cut and watermark < cut:
                out += [canonical_json(o.to_dict()) for o in d.advance(cut)]
                watermark = cut
                state = json.loads(json.dumps(d.to_state()))
                d = BrandDetector.from_state(state, DetectorConfig())
                assert json.loads(json.dumps(d.to_state())) == state
            d.observe(e)
            if e.event_ms - MINUTE > watermark:
                watermark = e.event_ms - MINUTE
                for o in d.advance(watermark):
                    out.append(canonical_json(o.to_dict()))
        return out

    plain, restored = run(False), run(True)
    assert len(plain) > 1000
    assert plain == restored


def test_state_stays_bounded() -> None:
    d = BrandDetector("acme")
    for e in normal_week(days=3, base=5.0):
        d.observe(e)
    d.advance(T0 + 3 * DAY)
    size = len(json.dumps(d.to_state()))
    assert size < 300_000


def usual_share_after(events: Iterable[MentionEvent], brand: str = "acme") -> float:
    detector = BrandDetector(brand)
    for event in events:
        detector.observe(event)
    last = max(e.event_ms for e in events) if isinstance(events, list) else 0
    detector.advance(last + 2 * MINUTE)
    return detector.negative_share()


def test_a_past_storm_does_not_poison_the_usual_negative_share() -> None:
    """Three calm days at 25 % negative, then 70 minutes at 85 % and ten times the volume: the
    usual share must stay about where the calm days put it (it rose from 0.25 to 0.32 before
    storm buckets were winsorised; now about 0.26), so the next storm is measured against it."""
    history = normal_week(days=3, base=3.0)
    calm = usual_share_after(history)
    storm = list(
        stream("acme", T0 + 3 * DAY + 14 * HOUR, 70, lambda t: 30.0, negative_share=0.85, seed=9)
    )
    stormy = usual_share_after(merged(history, storm))
    assert abs(calm - 0.25) < 0.02, calm
    assert stormy - calm < 0.02, (calm, stormy)


def test_a_lasting_change_of_tone_still_reaches_the_usual_share() -> None:
    """Winsorising must not freeze the share: after a week at 40 % negative it has moved most
    of the way there."""
    before = normal_week(days=3, base=3.0)
    after = list(
        stream(
            "acme",
            T0 + 3 * DAY,
            7 * 1440,
            lambda t: daily_rate(hour_of_day(t), 3.0),
            negative_share=0.40,
            seed=4,
        )
    )
    share = usual_share_after(merged(before, after))
    assert share > 0.33, share


def test_a_saved_state_does_not_change_after_the_save() -> None:
    """The worker keeps a saved state object as it is (in its in-memory table, and in the
    producer's buffer until the changelog record is serialised); a rebuild from it replays the
    mentions since the save. Anything the detector shared with it would be applied twice."""
    events = [e for e in _storm_stream() if e.brand == "acme"]
    d = BrandDetector("acme")
    saved: list[tuple[dict[str, Any], str]] = []
    watermark = T0
    for e in events:
        d.observe(e)
        if e.event_ms - MINUTE <= watermark:
            continue
        watermark = e.event_ms - MINUTE
        d.advance(watermark)
        if d.episodes:
            state = d.to_state()
            saved.append((state, json.dumps(state, sort_keys=True)))
            if len(saved) == 5:  # go on from a restored detector, which must not share either
                d = BrandDetector.from_state(state, DetectorConfig())
    assert len(saved) > 20
    assert any(s["episodes"]["storm"]["escalations"] for s, _ in saved[:-5]), "no escalation"
    changed = [
        n for n, (state, text) in enumerate(saved) if json.dumps(state, sort_keys=True) != text
    ]
    assert not changed, f"{len(changed)} of {len(saved)} saved states changed after the save"


def test_a_neutral_news_wave_with_six_times_the_complaints_is_a_storm_not_buzz() -> None:
    """A breach story shared neutrally by thousands: 40 mentions a minute for four hours, 12 %
    of them complaints (six times the usual negatives per minute). The negative share drops,
    and that drop vetoed the complaints as storm evidence whatever the extra posts were: the
    wave was buzz (up to critical) and dragged the usual share down (0.247 to 0.203), so that
    ordinary traffic opened a storm 52 minutes after the wave had ended. Only a
    rise of the positives (negatives against positives, neutrals left out) vetoes now, and no
    bucket of an episode teaches the usual share less than chance would."""
    history = list(stream("acme", T0, 4 * 1440, lambda t: daily_rate(hour_of_day(t), 3.0)))
    wave_at = T0 + 3 * DAY + 12 * HOUR
    wave = stream(
        "acme",
        wave_at,
        240,
        lambda t: 40.0,
        negative_share=0.12,
        positive_share=0.0,
        seed=11,
        texts=["read the story about the acme data breach"],
    )
    events = merged(history, wave)
    detector = BrandDetector("acme")
    out: list[Output] = []
    for event in events:
        detector.observe(event)
        out += detector.advance(event.event_ms - MINUTE)
    out += detector.advance(events[-1].event_ms + 2 * MINUTE)
    found = episodes(out)
    storms = [e.episode for e in found if e.episode["kind"] == "storm"]
    assert storms, [(e.type, e.episode["kind"], e.episode["severity"]) for e in found]
    assert {e["start_ms"] for e in storms} == {storms[0]["start_ms"]}  # one storm, no reopening
    assert wave_at <= storms[0]["start_ms"] < wave_at + 90 * MINUTE
    assert not [e for e in found if e.episode["kind"] == "buzz"]
    # The usual share was 0.247 before the wave; the wave left it at 0.203, now at 0.242.
    assert detector.negative_share() > 0.235, detector.negative_share()


def test_a_state_saved_before_the_polar_share_still_loads() -> None:
    d = BrandDetector("acme")
    for e in normal_week(days=2):
        d.observe(e)
    d.advance(T0 + 2 * DAY)
    state = json.loads(json.dumps(d.to_state()))
    del state["polar"], state["share_positives"]
    restored = BrandDetector.from_state(state, DetectorConfig())
    assert restored.polar_share() == 0.5
    assert len(restored.share_positives) == len(restored.share_negatives)


def burst(
    brand: str, at_ms: int, count: int, tag: str, sentiment: str = "negative"
) -> list[MentionEvent]:
    """``count`` mentions spread over the minute from ``at_ms`` (one bucket)."""
    return [
        MentionEvent(
            brand,
            at_ms + i * MINUTE // (count + 1),
            sentiment,  # type: ignore[arg-type]
            text="refund missing again",
            mention_id=f"{tag}{i}",
            author=f"{tag}-author{i}",
        )
        for i in range(count)
    ]


def storm_events(outputs: Iterable[Output]) -> list[EpisodeEvent]:
    return [e for e in episodes(outputs) if e.episode["kind"] == "storm"]


def test_a_storms_peak_is_the_bucket_of_its_highest_score() -> None:
    """An episode's peak time is the start of its strongest bucket, not of the bucket that
    opened it: a storm that builds for 20 minutes and then takes 300 complaints in one minute
    (the next minute drowns them in neutral posts) peaks in that minute."""
    surge_at = T0 + 7 * DAY + 14 * HOUR
    surge = stream("acme", surge_at, 20, lambda t: 12.0, negative_share=0.85, seed=7)
    peak_at = surge_at + 20 * MINUTE
    spike = burst("acme", peak_at, 300, "spike") + burst(
        "acme", peak_at + MINUTE, 600, "calm", "neutral"
    )
    outputs = list(replay(merged(normal_week(days=9), surge, spike)))
    storms = storm_events(outputs)
    opened = storms[0].episode
    resolved = next(e for e in storms if e.type == "resolved").episode
    assert resolved["episode_id"] == opened["episode_id"]
    assert opened["start_ms"] < peak_at
    assert resolved["peak_ms"] == peak_at
    assert resolved["peak_score"] >= max(
        e.episode["peak_score"] for e in storms if e.episode["episode_id"] == opened["episode_id"]
    )
    during = [
        o
        for o in outputs
        if isinstance(o, BucketSummary) and opened["start_ms"] <= o.start_ms < resolved["end_ms"]
    ]
    assert resolved["peak_score"] >= max(o.negative_score for o in during)
    assert resolved["peak_score"] > opened["peak_score"]


def test_a_storm_right_after_one_resolved_starts_its_own_run() -> None:
    """A storm that opens in the bucket after the previous one resolved is abnormal from its
    own start: its first abnormal time is not carried over from the resolved storm."""
    surge_at = T0 + 7 * DAY + 14 * HOUR
    normal = normal_week(days=9)
    events = merged(normal, stream("acme", surge_at, 60, lambda t: 12.0, 0.85, seed=7))
    first = storm_events(replay(events))
    ended = next(e for e in first if e.type == "resolved").episode
    end = ended["end_ms"]
    # The same stream up to the resolution, then 300 complaints in the next minute.
    again = merged(
        [e for e in events if e.event_ms < end],
        burst("acme", end, 300, "again"),
        [e for e in normal if end <= e.event_ms < end + 3 * HOUR],
    )
    second = [e for e in storm_events(replay(again)) if e.episode["start_ms"] >= end]
    assert second and second[0].type == "opened"
    assert second[0].episode["start_ms"] == end
    assert second[0].episode["first_abnormal_ms"] >= end


def test_a_brand_hours_old_raises_nothing_before_its_warm_up_ends() -> None:
    """Until a brand has ``baseline.warmup_hours`` of history its state machines may not rise:
    a 12x surge of 85 % complaints when the brand is 8 hours old opens no episode of any
    severity before the warm-up is over."""
    warmup_ms = int(DetectorConfig().baseline.warmup_hours * HOUR)
    start = T0 + 8 * HOUR
    normal = stream("fresh", start, 30 * 60, lambda t: daily_rate(hour_of_day(t), 1.0))
    surge = stream("fresh", start + 8 * HOUR, 180, lambda t: 12.0, negative_share=0.85, seed=5)
    out = episodes(replay(merged(normal, surge)))
    assert [e for e in out if e.at_ms < start + warmup_ms] == []


def test_a_young_brands_evidence_is_damped_by_the_cold_start_confidence() -> None:
    """Evidence is multiplied by ``1 / (1 + cold_start_factor * (1 - w))``, ``w`` the share of
    the hour's expectation resting on data seen at that hour: for a brand a day and a half old
    the same surge scores lower than with the factor off (0), never higher."""
    start = T0 + 8 * HOUR
    normal = stream("young", start, 40 * 60, lambda t: daily_rate(hour_of_day(t), 1.0))
    surge_at = start + 34 * HOUR
    surge = stream("young", surge_at, 30, lambda t: 20.0, negative_share=0.25, seed=5)
    events = merged(normal, surge)

    def surge_scores(cold_start_factor: float) -> list[float]:
        spikes = dataclasses.replace(DetectorConfig().spikes, cold_start_factor=cold_start_factor)
        config = DetectorConfig().replace(spikes=spikes)
        return [
            o.volume_score
            for o in replay(events, config)
            if isinstance(o, BucketSummary) and surge_at <= o.start_ms < surge_at + 30 * MINUTE
        ]

    damped, undamped = surge_scores(1.0), surge_scores(0.0)
    assert max(undamped) > 1.0  # the surge is evidence at all
    assert all(d <= u for d, u in zip(damped, undamped, strict=True))
    assert max(damped) < 0.9 * max(undamped)


def test_a_normal_monday_after_quiet_weekends_is_expected_at_its_weekday_level() -> None:
    """After five weeks whose weekends run at 0.3x the weekdays, the detector expects a
    Monday at about its weekday volume (the hour-of-week slots), not at the weekday-weekend
    mix of the daily profile, and a normal Monday raises nothing; the Saturday before is
    expected at well under half of it."""

    def rate(t: int) -> float:
        weekend = datetime.fromtimestamp(t / 1000, UTC).weekday() >= 5
        return daily_rate(hour_of_day(t), 2.0) * (0.3 if weekend else 1.0)

    monday = T0 + 5 * 7 * DAY
    outputs = list(replay(stream("acme", T0, 5 * 7 * 1440 + 1440, rate, seed=21)))
    assert [e for e in episodes(outputs) if e.at_ms > monday] == []

    def totals(start: int) -> tuple[int, float]:
        day = [
            o for o in outputs if isinstance(o, BucketSummary) and start <= o.start_ms < start + DAY
        ]
        assert len(day) == 1440
        return sum(o.volume for o in day), sum(o.expected_volume for o in day)

    observed, expected = totals(monday)
    assert expected > 0.85 * observed
    _, saturday_expected = totals(monday - 2 * DAY)
    assert saturday_expected < 0.6 * expected
