"""A seasonal, outlier-resistant baseline of a brand's mention rate.

The expected rate for a time is a blend of three decayed means, each shrunk towards the next
coarser one by how much data it has seen (empirical-Bayes style): the hour-of-week mean (knows
weekday/weekend rhythm), the hour-of-day mean (knows the daily rhythm) and the overall level.
A brand with a few days of history leans on its daily profile, a brand with a few hours on its
overall level, and a weekly slot takes over as its weeks accumulate.

Updates are winsorised at a multiple of what was expected, so a storm moves the baseline no more
than a busy-but-normal hour would: a past storm does not poison next week's expectations, while a
lasting change of level still comes through within a few half-lives.

State is fixed-size: 168 + 24 + 1 (mean, weight) pairs per baseline, whatever the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.config import BaselineConfig
from detectors.timeslots import (
    HOURS_PER_WEEK,
    LocalClock,
    TimeZoneError,
    hour_of_day,
    hour_of_week,
)


@dataclass
class DecayedMean:
    """An exponentially decayed mean whose weight is measured in minutes of data observed."""

    mean: float = 0.0
    weight: float = 0.0

    def add(self, value: float, minutes: float, half_life_minutes: float) -> None:
        decay = 0.5 ** (minutes / half_life_minutes)
        self.weight = self.weight * decay + minutes
        self.mean += (minutes / self.weight) * (value - self.mean)


class SeasonalBaseline:
    """Expected mentions per minute for any time, learnt from the rates of closed buckets."""

    def __init__(self, config: BaselineConfig) -> None:
        self.config = config
        self.level = DecayedMean()
        self.day = [DecayedMean() for _ in range(24)]
        self.week = [DecayedMean() for _ in range(HOURS_PER_WEEK)]
        self.history_minutes = 0.0
        self.clock = LocalClock(config.timezone, config.utc_offset_minutes)

    def expected_rate(self, event_ms: int) -> float:
        """Mentions per minute expected in the hour holding ``event_ms``."""
        cfg = self.config
        overall = self.level.mean
        offset = self.clock.offset_minutes(event_ms)
        day = self.day[hour_of_day(event_ms, offset)]
        day_prior = cfg.day_prior_days * 60.0
        daily = (day.weight * day.mean + day_prior * overall) / (day.weight + day_prior)
        week = self.week[hour_of_week(event_ms, offset)]
        week_prior = cfg.week_prior_weeks * 60.0
        return (week.weight * week.mean + week_prior * daily) / (week.weight + week_prior)

    def seasonal_weight(self, event_ms: int) -> float:
        """0..1: how much of this hour's expectation rests on data seen at this hour of day."""
        day = self.day[hour_of_day(event_ms, self.clock.offset_minutes(event_ms))]
        return day.weight / (day.weight + self.config.day_prior_days * 60.0)

    def update(self, event_ms: int, rate: float, minutes: float, expected_rate: float) -> None:
        """Learn from a closed bucket of ``minutes`` length that saw ``rate`` mentions per minute.

        The rate is winsorised at ``clip_ratio * expected + clip_floor_per_hour / 60`` once the
        baseline is warm, so outliers pull it up no more than a busy normal hour would.
        """
        cfg = self.config
        if self.history_minutes >= cfg.warmup_hours * 60.0:
            cap = cfg.clip_ratio * expected_rate + cfg.clip_floor_per_hour / 60.0
            rate = min(rate, cap)
        self.level.add(rate, minutes, cfg.level_half_life_hours * 60.0)
        offset = self.clock.offset_minutes(event_ms)
        self.day[hour_of_day(event_ms, offset)].add(rate, minutes, cfg.day_half_life_days * 60.0)
        self.week[hour_of_week(event_ms, offset)].add(
            rate, minutes, cfg.week_half_life_weeks * 60.0
        )
        self.history_minutes += minutes

    @property
    def warm(self) -> bool:
        return self.history_minutes >= self.config.warmup_hours * 60.0

    def to_state(self) -> dict[str, Any]:
        return {
            "level": [self.level.mean, self.level.weight],
            "day": [[m.mean, m.weight] for m in self.day],
            "week": [[m.mean, m.weight] for m in self.week],
            "history_minutes": self.history_minutes,
            # The clock its slots were learnt on: a state restored on another clock turns them.
            "clock": [self.config.timezone, self.config.utc_offset_minutes],
        }

    @classmethod
    def from_state(
        cls, config: BaselineConfig, state: dict[str, Any], at_ms: int | None = None
    ) -> SeasonalBaseline:
        """The saved baseline, its hour slots turned to ``config``'s clock when the state was
        learnt on another (a brand given a time zone, or another one), as it is at ``at_ms``."""
        baseline = cls(config)
        baseline.level = DecayedMean(*state["level"])
        baseline.day = [DecayedMean(*pair) for pair in state["day"]]
        baseline.week = [DecayedMean(*pair) for pair in state["week"]]
        baseline.history_minutes = float(state["history_minutes"])
        hours = _clock_shift_hours(state.get("clock"), baseline.clock, at_ms)
        if hours:
            baseline.day = _turned(baseline.day, hours)
            baseline.week = _turned(baseline.week, hours)
        return baseline


def _clock_shift_hours(saved: Any, clock: LocalClock, at_ms: int | None) -> int:
    """By how many hours the local hour of an instant moved from the ``saved`` clock
    (``[timezone, fixed offset]``; absent in states saved before it was kept: taken as
    unchanged) to ``clock``, at ``at_ms``; to the nearest hour, as the slots are hours."""
    if at_ms is None or not isinstance(saved, list) or len(saved) != 2:
        return 0
    zone, fixed = saved
    if not isinstance(zone, str) or isinstance(fixed, bool) or not isinstance(fixed, int):
        return 0
    try:
        before = LocalClock(zone, fixed).offset_minutes(at_ms)
    except TimeZoneError:
        return 0  # a zone this machine's database no longer knows: as it is
    shift = clock.offset_minutes(at_ms) - before
    return (shift + 30) // 60


def _turned(slots: list[DecayedMean], hours: int) -> list[DecayedMean]:
    """The slots of local hours, each moved ``hours`` on: what local hour h learnt on the old
    clock happened at local hour h + ``hours`` on the new one."""
    n = len(slots)
    turned = list(slots)
    for h, slot in enumerate(slots):
        turned[(h + hours) % n] = slot
    return turned
