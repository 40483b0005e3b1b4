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


def minutes_to_resolve(bucket_minutes: float, cool_down_minutes: float) -> float:
    """Minutes from the last bucket at watch level to the watch storm's resolution."""
    config = StateConfig(cool_down_minutes=cool_down_minutes)
    machine = LevelMachine(config, bucket_minutes)
    assert machine.step(0, 1.2) is not None  # entered at once (no minimum duration)
    for n in range(1, 1000):
        transition = machine.step(n, 0.0)
        if transition is not None:
            assert transition.level == NORMAL
            return n * bucket_minutes
    raise AssertionError("never resolved")


@pytest.mark.parametrize(
    ("bucket", "cool_down"),
    [(1, 120), (5, 120), (60, 150), (5, 12.5), (2, 5), (7, 120)],
)
def test_a_cool_down_holds_at_least_the_minutes_configured(bucket: float, cool_down: float) -> None:
    """As many buckets as cover it, like the minimum duration: rounded to the nearest, a
    150-minute cool-down held 120 minutes with 60-minute buckets, 12.5 held 10 with 5."""
    held = minutes_to_resolve(bucket, cool_down)
    assert cool_down <= held < cool_down + bucket


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
    """Critical, then two hours at 1.2 (watch level) whose last bucket dips to 0.4: the score
    earned watch all along, so the storm steps down to watch. It once resolved on the dip and
    reopened as a new episode (a new id, a new page) a minute later."""
    dip = _transitions([3.5] + [1.2] * 119 + [0.4] + [1.2] * 5)
    assert dip == [(0, NORMAL, CRITICAL), (120, CRITICAL, WATCH)]
    # A last bucket still at warning's exit holds warning, as before.
    steady = _transitions([3.5] + [1.2] * 120 + [1.2] * 5)
    assert steady == [(0, NORMAL, CRITICAL), (120, CRITICAL, WARNING)]
    # One bucket at warning level anywhere in the cool-down holds warning.
    early = _transitions([3.5] + [1.6] + [0.3] * 118 + [0.3] * 5)
    assert early[:2] == [(0, NORMAL, CRITICAL), (120, CRITICAL, WARNING)]


def test_a_score_that_earned_nothing_in_the_cool_down_resolves() -> None:
    """Lingering between watch's exit and enter thresholds earns nothing: it resolves unless
    the last bucket still holds watch (the rule before 2026-12, kept as a floor)."""
    assert _transitions([1.6] + [0.9] * 119 + [0.3] + [0.3] * 5) == [
        (0, NORMAL, WARNING),
        (120, WARNING, NORMAL),
    ]
    assert _transitions([1.6] + [0.3] * 119 + [0.9] + [0.3] * 200) == [
        (0, NORMAL, WARNING),
        (120, WARNING, WATCH),
        (240, WATCH, NORMAL),
    ]


def test_a_lower_level_keeps_counting_its_own_cool_down() -> None:
    """Warning earned early in critical's cool-down: warning holds only until its own cool-down
    (below its exit, from that bucket) is over; a cool-down that earns nothing resolves."""
    blip = [3.5] + [0.3] * 10 + [1.7] + [0.3] * 200
    assert _transitions(blip) == [
        (0, NORMAL, CRITICAL),
        (120, CRITICAL, WARNING),
        (131, WARNING, NORMAL),
    ]
    assert _transitions([3.5] + [0.3] * 130) == [(0, NORMAL, CRITICAL), (120, CRITICAL, NORMAL)]


def test_a_machine_restored_mid_cool_down_continues_exactly() -> None:
    scores = [3.5] + [1.6] * 30 + [1.2] * 30 + [0.7] * 70 + [0.2] * 200 + [1.2] * 5
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
        (180, WARNING, NORMAL),
        (331, NORMAL, WATCH),
    ]


def test_a_state_saved_before_per_level_cool_downs_restores() -> None:
    """States saved before 2026-12 hold one count, for the current level; what the machine
    sees after the restore counts as usual."""
    machine = LevelMachine(StateConfig(), 1.0)
    machine.load_state({"level": CRITICAL, "above": [0, 0, 0, 0], "below": 119})
    transition = machine.step(0, 1.2)
    assert transition is not None and (transition.previous, transition.level) == (CRITICAL, WARNING)
    machine = LevelMachine(StateConfig(), 1.0)
    machine.load_state({"level": CRITICAL, "above": [0, 0, 0, 0], "below": 119})
    transition = machine.step(0, 0.3)
    assert transition is not None and (transition.previous, transition.level) == (CRITICAL, NORMAL)


def test_an_unarmed_machine_never_rises_but_rises_at_once_when_armed() -> None:
    """While a brand warms up (``armed`` False) no score, however high, raises the level; the
    run of high scores still counts, so the first armed bucket enters the level it earned."""
    machine = LevelMachine(StateConfig(min_duration_minutes=3), 1)
    for n in range(10):
        assert machine.step(n, 10.0, armed=False) is None
        assert machine.level == NORMAL
    transition = machine.step(10, 10.0, armed=True)
    assert transition is not None and (transition.previous, transition.level) == (NORMAL, CRITICAL)


def test_an_unarmed_machine_may_still_calm_down() -> None:
    """Unarmed, a machine above normal does not escalate, but steps down after its cool-down."""
    machine = LevelMachine(StateConfig(cool_down_minutes=2), 1)
    assert machine.step(0, 1.2) is not None and machine.level == WATCH
    assert machine.step(1, 10.0, armed=False) is None  # no escalation to critical
    assert machine.level == WATCH
    assert machine.step(2, 0.0, armed=False) is None
    transition = machine.step(3, 0.0, armed=False)
    assert transition is not None and (transition.previous, transition.level) == (WATCH, NORMAL)


@pytest.mark.parametrize(("level", "enter"), [(WATCH, 1.0), (WARNING, 1.5), (CRITICAL, 3.0)])
def test_a_score_exactly_at_an_enter_threshold_enters_the_level(level: int, enter: float) -> None:
    """A level is entered when the score is *at* or above its enter threshold."""
    machine = LevelMachine(StateConfig(), 1)
    transition = machine.step(0, enter)
    assert transition is not None and transition.level == level
    below = LevelMachine(StateConfig(), 1)
    transition = below.step(0, enter - 1e-9)
    assert transition is None or transition.level == level - 1


@pytest.mark.parametrize(("level", "exit_"), [(WATCH, 0.5), (WARNING, 1.0), (CRITICAL, 2.0)])
def test_a_score_exactly_at_an_exit_threshold_holds_the_level(level: int, exit_: float) -> None:
    """A level is left only after the score stayed *below* its exit threshold for the
    cool-down: a score exactly at the exit threshold holds it for good."""
    config = StateConfig(cool_down_minutes=3)
    enter = (0.0, config.watch_enter, config.warning_enter, config.critical_enter)[level]
    machine = LevelMachine(config, 1)
    assert machine.step(0, enter) is not None and machine.level == level
    for n in range(1, 20):
        assert machine.step(n, exit_) is None
    assert machine.level == level
    transitions = [machine.step(n, exit_ - 1e-9) for n in range(20, 23)]
    assert transitions[:2] == [None, None]
    assert transitions[2] is not None and transitions[2].level < level
