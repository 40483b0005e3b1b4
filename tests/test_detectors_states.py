"""The alert state machine's timing: a minimum duration counts the buckets that cover it."""

from __future__ import annotations

import pytest

from detectors.config import StateConfig
from detectors.states import CRITICAL, NORMAL, WARNING, WATCH, LevelMachine


def buckets_to_enter(bucket_minutes: float, min_duration_minutes: float) -> int:
    machine = LevelMachine(StateConfig(min_duration_minutes=min_duration_minutes), bucket_minutes)
    for n in range(1, 100):
        transition = machine.step(n, 1.2)
        if transition is not None:
            assert (transition.previous, transition.level) == (NORMAL, WATCH)
            return n
    raise AssertionError("never entered")


@pytest.mark.parametrize(
    ("bucket", "minimum", "buckets"),
    [
        (1, 0, 1),  # the default: at once
        (1, 5, 5),  # five minutes above: five 1-minute buckets (it took six)
        (5, 5, 1),  # one 5-minute bucket is five minutes above (it took two)
        (5, 10, 2),
        (1, 2.5, 3),  # at least the duration asked for: three buckets cover 2.5 minutes
        (1, 0.4, 1),
    ],
)
def test_a_minimum_duration_is_the_buckets_that_cover_it(
    bucket: float, minimum: float, buckets: int
) -> None:
    assert buckets_to_enter(bucket, minimum) == buckets


def test_a_dip_below_the_threshold_restarts_the_count() -> None:
    machine = LevelMachine(StateConfig(min_duration_minutes=3), 1.0)
    assert [machine.step(n, score) for n, score in enumerate([1.2, 1.2, 0.9, 1.2, 1.2])] == [
        None
    ] * 5
    transition = machine.step(5, 1.2)
    assert transition is not None and transition.level == WATCH


def _transitions(scores: list[float]) -> list[tuple[int, int, int]]:
    machine = LevelMachine(StateConfig(), 1.0)
    out = []
    for n, score in enumerate(scores):
        transition = machine.step(n, score)
        if transition is not None:
            out.append((n, transition.previous, transition.level))
    return out


def test_one_dip_at_the_end_of_the_cool_down_does_not_resolve_a_held_storm() -> None:
    """Critical, then two hours at 1.2 (above warning's exit) whose last bucket dips to 0.4: the
    storm held warning all along, so it steps down to warning. It once resolved on the dip and
    reopened as a new episode a minute later."""
    dip = _transitions([3.5] + [1.2] * 119 + [0.4] + [1.2] * 5)
    steady = _transitions([3.5] + [1.2] * 120 + [1.2] * 5)
    assert dip == steady == [(0, NORMAL, CRITICAL), (120, CRITICAL, WARNING)]
    # Just under warning's exit but above watch's: watch, not resolved.
    assert _transitions([1.6] + [0.9] * 119 + [0.3] + [0.9] * 5) == [
        (0, NORMAL, WARNING),
        (120, WARNING, WATCH),
    ]


def test_a_lower_level_keeps_counting_its_own_cool_down() -> None:
    """A blip to watch's exit early in warning's cool-down: watch holds only until its own
    cool-down (from the blip) is over; a score below every exit for the whole cool-down
    resolves."""
    blip = [1.6] + [0.3] * 10 + [0.9] + [0.3] * 200
    assert _transitions(blip) == [(0, NORMAL, WARNING), (120, WARNING, WATCH), (131, WATCH, NORMAL)]
    assert _transitions([3.5] + [0.3] * 130) == [(0, NORMAL, CRITICAL), (120, CRITICAL, NORMAL)]


def test_a_machine_restored_mid_cool_down_continues_exactly() -> None:
    scores = [3.5] + [1.2] * 60 + [0.7] * 70 + [0.2] * 200
    plain = _transitions(scores)
    machine = LevelMachine(StateConfig(), 1.0)
    out = []
    for n, score in enumerate(scores):
        if n == 90:
            state = machine.to_state()
            machine = LevelMachine(StateConfig(), 1.0)
            machine.load_state(state)
        transition = machine.step(n, score)
        if transition is not None:
            out.append((n, transition.previous, transition.level))
    assert out == plain
    assert plain == [
        (0, NORMAL, CRITICAL),
        (120, CRITICAL, WARNING),
        (180, WARNING, WATCH),
        (250, WATCH, NORMAL),
    ]


def test_a_state_saved_before_per_level_cool_downs_restores() -> None:
    """States saved before 2026-12 hold one count, for the current level."""
    machine = LevelMachine(StateConfig(), 1.0)
    machine.load_state({"level": CRITICAL, "above": [0, 0, 0, 0], "below": 119})
    transition = machine.step(0, 1.2)
    assert transition is not None and (transition.previous, transition.level) == (
        CRITICAL,
        WARNING,
    )
