"""The alert state machine: normal, watch, warning, critical, with hysteresis.

A level is entered when the score has been at or above its enter threshold in as many buckets
in a row as cover ``min_duration_minutes`` (``ceil(min_duration_minutes / bucket_minutes)``, at
least one: 0 enters on the first bucket), escalating straight to the highest level earned. A
level is left only after the score has stayed below its (lower) exit threshold for
``cool_down_minutes``; the machine then steps down to the highest level the score still holds,
or resolves. The gap between enter and exit thresholds and the cool-down keep one wave of posts
one episode, instead of a flurry of alerts that open and close with every bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from detectors.config import StateConfig

LEVELS = ("normal", "watch", "warning", "critical")
NORMAL, WATCH, WARNING, CRITICAL = range(4)


@dataclass(frozen=True)
class Transition:
    """A change of level at a bucket's end time."""

    at_ms: int
    previous: int
    level: int


class LevelMachine:
    """Hysteresis over a stream of scores, one per closed bucket."""

    def __init__(self, config: StateConfig, bucket_minutes: float) -> None:
        self.config = config
        self.level = NORMAL
        bucket = max(bucket_minutes, 1e-9)
        #: Buckets in a row at or above an enter threshold before entering: as many as cover
        #: the minimum duration (at least one). It was one more until 2026-12.
        self.confirm_buckets = max(1, math.ceil(config.min_duration_minutes / bucket - 1e-9))
        self.cool_buckets = max(1, round(config.cool_down_minutes / bucket))
        #: Consecutive buckets at or above each level's enter threshold (index 1..3).
        self.above = [0, 0, 0, 0]
        #: Consecutive buckets below the current level's exit threshold.
        self.below = 0

    def step(self, at_ms: int, score: float, armed: bool = True) -> Transition | None:
        """Feed one bucket's score; return the transition it caused, if any.

        When ``armed`` is False (a brand still warming up) the machine may calm down but not rise.
        """
        cfg = self.config
        enter = (0.0, cfg.watch_enter, cfg.warning_enter, cfg.critical_enter)
        exit_ = (0.0, cfg.watch_exit, cfg.warning_exit, cfg.critical_exit)
        for lvl in (WATCH, WARNING, CRITICAL):
            self.above[lvl] = self.above[lvl] + 1 if score >= enter[lvl] else 0
        earned = NORMAL
        if armed:
            for lvl in (WATCH, WARNING, CRITICAL):
                if self.above[lvl] >= self.confirm_buckets:
                    earned = lvl
        previous = self.level
        if earned > self.level:
            self.level = earned
            self.below = 0
            return Transition(at_ms, previous, earned)
        if self.level == NORMAL:
            return None
        if score < exit_[self.level]:
            self.below += 1
        else:
            self.below = 0
        if self.below >= self.cool_buckets:
            held = NORMAL
            for lvl in (WATCH, WARNING):
                if lvl < self.level and score >= exit_[lvl]:
                    held = lvl
            self.level = held
            self.below = 0
            return Transition(at_ms, previous, held)
        return None

    def to_state(self) -> dict[str, Any]:
        return {"level": self.level, "above": list(self.above), "below": self.below}

    def load_state(self, state: dict[str, Any]) -> None:
        self.level = int(state["level"])
        self.above = [int(v) for v in state["above"]]
        self.below = int(state["below"])
