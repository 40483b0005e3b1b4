"""The seasonal baseline keeps a brand's daily rhythm on the brand's own clock."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from detectors.baseline import SeasonalBaseline
from detectors.brand import config_fingerprint
from detectors.config import BaselineConfig, DetectorConfig

OSLO = ZoneInfo("Europe/Oslo")
MINUTE_MS = 60_000


def oslo_rate(ms: int) -> float:
    """Mentions per minute of a brand on Oslo's clocks: quiet nights, a rush from 07:00."""
    hour = datetime.fromtimestamp(ms / 1000, OSLO).hour
    return 10.0 if 7 <= hour < 9 else (4.0 if 9 <= hour < 22 else 0.5)


def learn_march(config: BaselineConfig) -> SeasonalBaseline:
    """Three weeks of 5-minute buckets ending just before Europe's clocks go forward."""
    baseline = SeasonalBaseline(config)
    start = int(datetime(2026, 3, 8, tzinfo=UTC).timestamp() * 1000)
    end = int(datetime(2026, 3, 29, 0, 0, tzinfo=UTC).timestamp() * 1000)
    for ms in range(start, end, 5 * MINUTE_MS):
        baseline.update(ms, oslo_rate(ms), 5.0, baseline.expected_rate(ms))
    return baseline


def at_oslo(day: int, hour: int, minute: int) -> int:
    return int(datetime(2026, 3, day, hour, minute, tzinfo=OSLO).timestamp() * 1000)


def test_a_zone_keeps_the_morning_rush_in_its_slot_across_the_clock_change() -> None:
    # Monday 30 March 2026, the first weekday of summer time: 07:30 in Oslo is 05:30 UTC.
    rush, before_rush = at_oslo(30, 7, 30), at_oslo(30, 6, 30)
    zoned = learn_march(BaselineConfig(timezone="Europe/Oslo"))
    assert zoned.expected_rate(rush) > 8.0
    assert zoned.expected_rate(before_rush) < 1.5
    # A fixed winter offset puts 07:30 summer time into the 06:00 slot, which was night:
    # the rush would look like a spike every morning until the slots relearn.
    fixed = learn_march(BaselineConfig(utc_offset_minutes=60))
    assert fixed.expected_rate(rush) < 1.5
    assert fixed.expected_rate(at_oslo(30, 9, 30)) > 8.0
    # Before the change both clocks agree.
    assert (
        abs(zoned.expected_rate(at_oslo(27, 7, 30)) - fixed.expected_rate(at_oslo(27, 7, 30)))
        < 0.01
    )


def test_a_zone_is_part_of_the_state_fingerprint_but_its_absence_is_not() -> None:
    default = DetectorConfig()
    oslo = DetectorConfig.from_dict({"baseline": {"timezone": "Europe/Oslo"}})
    assert config_fingerprint(default) != config_fingerprint(oslo)
    # Detector states saved before the option existed carry the default's fingerprint of then;
    # they must still load. (Changing a default on purpose changes this value too.)
    assert config_fingerprint(default) == "670991636011"


def alerts_around_the_clock_change(baseline: dict[str, object]) -> list[str]:
    """Oslo-clock traffic for six weeks over the March change; the local times alerts opened."""
    from detectors.states import NORMAL
    from detectors.volume import VolumeDetector

    rng = random.Random(7)
    detector = VolumeDetector(DetectorConfig.from_dict({"bucket_minutes": 5, "baseline": baseline}))
    opened = []
    start = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
    end = int(datetime(2026, 4, 12, tzinfo=UTC).timestamp() * 1000)
    for ms in range(start, end, 5 * MINUTE_MS):
        weekend = datetime.fromtimestamp(ms / 1000, OSLO).weekday() >= 5
        mean = 5 * oslo_rate(ms) * (0.6 if weekend else 1.0)
        step = detector.step(ms, max(0, round(rng.gauss(mean, math.sqrt(mean)))))
        t = step.transition
        if t is not None and t.previous == NORMAL:
            opened.append(datetime.fromtimestamp(ms / 1000, OSLO).strftime("%m-%d %H:%M"))
    return opened


def test_summer_time_raises_no_morning_alerts_with_the_brand_zone() -> None:
    assert alerts_around_the_clock_change({"timezone": "Europe/Oslo"}) == []
    # On a fixed offset, the rush an hour "early" alerts every morning after the change.
    fixed = alerts_around_the_clock_change({"utc_offset_minutes": 60})
    assert len(fixed) >= 5
    assert all(opened >= "03-29" and opened[6:8] == "07" for opened in fixed)


def test_a_brand_zone_is_that_brands_alone() -> None:
    from detectors.brand import BrandDetector

    base = DetectorConfig.from_dict({"baseline": {"timezone": "Europe/Oslo"}})
    zoned = base.with_brand_timezones({"acme": "America/New_York"})
    acme, globex = BrandDetector("acme", zoned), BrandDetector("globex", zoned)
    assert acme.baseline.clock.zone == ZoneInfo("America/New_York")
    assert globex.baseline.clock.zone == OSLO
    # Giving one brand a zone leaves the others' saved states loadable as they were.
    assert config_fingerprint(globex.config) == config_fingerprint(base)
    state = BrandDetector("globex", base).to_state()
    assert BrandDetector.from_state(state, zoned).config == base


def test_a_brand_given_another_zone_keeps_its_rhythm_on_the_new_clock() -> None:
    """A brand whose audience is in New York, learnt for three weeks on UTC slots, then given
    ``timezone: America/New_York``. Its slots used to be kept as they were, so the hour learnt
    at 09:00 UTC was read as 09:00 in New York: every morning rush came five hours "early",
    and the restored detector opened a critical storm each morning."""
    from detectors.brand import BrandDetector
    from detectors.episodes import EpisodeEvent
    from detectors.replay import Replayer
    from tests.detector_support import DAY, HOUR, stream

    new_york = ZoneInfo("America/New_York")
    start = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)  # no summer time near

    def rate(t: int) -> float:
        hour = datetime.fromtimestamp(t / 1000, new_york).hour
        return 12.0 if 8 <= hour < 22 else 0.5

    utc = DetectorConfig()
    zoned = utc.with_brand_timezones({"acme": "America/New_York"})
    learnt = Replayer(utc, 0)
    for event in stream("acme", start, 21 * 1440, rate, negative_share=0.2, seed=3):
        learnt.feed(event)
    state = learnt.detectors["acme"].to_state()
    assert state["baseline"]["clock"] == ["", 0]
    later = start + 21 * DAY
    opened = {}
    for name, config in (("utc", utc), ("new_york", zoned)):
        replayer = Replayer(config, 0)
        replayer.detectors["acme"] = BrandDetector.from_state(state, config, retune=True)
        replayer.max_event_ms = learnt.max_event_ms
        replayer._advanced_to = learnt._advanced_to
        outputs = []
        for event in stream("acme", later, 3 * 1440, rate, negative_share=0.2, seed=4):
            outputs.extend(replayer.feed(event))
        opened[name] = [
            o.type for o in outputs if isinstance(o, EpisodeEvent) and o.episode["kind"] == "storm"
        ]
        expected = replayer.detectors["acme"].baseline.expected_rate(later + 14 * HOUR)
        assert expected > 6.0, (name, expected)  # 09:00 in New York (EST: UTC-5) is busy
    assert opened == {"utc": [], "new_york": []}
    # The slots moved by the offset at the restore: 00:00 UTC is 19:00 in New York.
    restored = BrandDetector.from_state(state, zoned, retune=True).baseline
    saved = state["baseline"]["day"]
    assert [restored.day[19].mean, restored.day[19].weight] == saved[0]


DAY_MS = 24 * 60 * MINUTE_MS
#: Monday 2 March 2026, 00:00 UTC.
MONDAY = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)


def weekly_rate(ms: int) -> float:
    """Mentions per minute: 10 on weekdays, 3 (0.3x) on Saturdays and Sundays."""
    return 3.0 if datetime.fromtimestamp(ms / 1000, UTC).weekday() >= 5 else 10.0


def test_the_hour_of_week_slots_learn_quiet_weekends() -> None:
    """The expectation of an hour blends in its hour-of-week slot: after weeks of weekends at
    0.3x the weekdays, a Saturday afternoon is expected well under half a Monday afternoon (the
    daily profile alone, which mixes the two, would expect them alike)."""
    baseline = SeasonalBaseline(BaselineConfig())
    for ms in range(MONDAY, MONDAY + 6 * 7 * DAY_MS, 5 * MINUTE_MS):
        baseline.update(ms, weekly_rate(ms), 5.0, baseline.expected_rate(ms))
    week = MONDAY + 6 * 7 * DAY_MS
    monday, saturday = week + 14 * 60 * MINUTE_MS, week + 5 * DAY_MS + 14 * 60 * MINUTE_MS
    assert baseline.expected_rate(saturday) < 0.5 * baseline.expected_rate(monday)
    assert baseline.expected_rate(monday) > 8.0
