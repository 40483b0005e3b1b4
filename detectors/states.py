"""The alert state machine: normal, watch, warning, critical, with hysteresis.

A level is entered when the score has been at or above its enter threshold in as many buckets
in a row as cover ``min_duration_minutes`` (``ceil(min_duration_minutes / bucket_minutes)``, at
least one: 0 enters on the first bucket), escalating straight to the highest level earned. A
level is left only after the score has stayed below its (lower) exit threshold for
``cool_down_minutes``; the machine then steps down to the highest lower level the score earned
during the cool-down (reached its enter threshold for as many buckets in a row as entering
takes) or still holds in its last bucket (is at the level's exit threshold), or resolves. That
level goes on counting its own cool-down from the last bucket that reached its exit. (Until
2026-12 only the last bucket of the cool-down counted, so one dip in it resolved a storm whose
score had sat at watch level all along, and it reopened as a new episode a minute later.)
The gap between enter and exit thresholds and the cool-down keep one wave of posts one
episode, instead of a flurry of alerts that open and close with every bucket.
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
        #: Buckets of the cool-down: as many as cover it, like the minimum duration (it was
        #: rounded to the nearest until 2026-12: a 150-minute cool-down held 120 with 60-minute
        #: buckets).
        self.cool_buckets = max(1, math.ceil(config.cool_down_minutes / bucket - 1e-9))
        #: Consecutive buckets at or above each level's enter threshold (index 1..3).
        self.above = [0, 0, 0, 0]
        #: Consecutive buckets below each level's exit threshold (index 1..3).
        self.below = [0, 0, 0, 0]
        #: Buckets since each level was last earned (its enter threshold reached for
        #: ``confirm_buckets`` in a row), index 1..3; a level earned in the latest
        #: ``cool_buckets`` is held when the machine steps down.
        self.unearned = [0, 0, 0, 0]

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
        below = self.below
        unearned = self.unearned
        confirm = self.confirm_buckets
        for lvl in (WATCH, WARNING, CRITICAL):
            below[lvl] = below[lvl] + 1 if score < exit_[lvl] else 0
            unearned[lvl] = 0 if self.above[lvl] >= confirm else unearned[lvl] + 1
        previous = self.level
        if earned > previous:
            self.level = earned
            return Transition(at_ms, previous, earned)
        if previous == NORMAL or below[previous] < self.cool_buckets:
            return None
        # The level's cool-down is over: step down to the highest lower level the score earned
        # during it (it would be re-entered at once: resolving would only reopen the storm as a
        # new episode) or still holds now (at its exit threshold, the rule before 2026-12), or
        # resolve. The level goes on counting its own cool-down.
        held = previous - 1
        while held > NORMAL and unearned[held] >= self.cool_buckets and score < exit_[held]:
            held -= 1
        self.level = held
        return Transition(at_ms, previous, held)

    def to_state(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "above": list(self.above),
            "below": self.below[self.level] if self.level > NORMAL else 0,
            "below_levels": self.below[1:],
            "unearned": self.unearned[1:],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.level = int(state["level"])
        if not NORMAL <= self.level <= CRITICAL:
            raise ValueError(f"level {self.level} out of range")
        above = [int(v) for v in state.get("above", (0, 0, 0, 0))]
        if len(above) != 4:
            raise ValueError("above: expected four counts")
        self.above = above
        below = int(state.get("below", 0))
        # States saved before 2026-12 hold one count, for the current level: the other levels
        # start as the old code judged them, as if the score had been below them (and had
        # earned none) for as long; what the machine sees after the restore counts as usual.
        self.below = [0, *(int(v) for v in state.get("below_levels", (below,) * 3))]
        self.unearned = [0, *(int(v) for v in state.get("unearned", (below,) * 3))]
