"""The alert state machine's timing: a minimum duration counts the buckets that cover it."""

from __future__ import annotations

import pytest

from detectors.config import StateConfig
from detectors.states import NORMAL, WATCH, LevelMachine


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
