"""A storm of several hours ends within hours of its end, and the next day's storm is a storm of
its own (detectors/spikes.py, ``cusum_drain_minutes``).

The 60-minute window's build-up (CUSUM) fell only by its tail units, about 0.2 an hour once the
complaints were back to normal: after an 8-hour storm the episode stayed open at watch for
about 19 hours, and an unrelated storm 14 hours later came as an escalation of it, paged under
yesterday's id with yesterday's drivers ("answers, customer, never, phone")."""

from __future__ import annotations

from detectors.episodes import EpisodeEvent
from detectors.replay import Replayer
from detectors.timeslots import hour_of_day
from tests.detector_support import DAY, HOUR, MINUTE, T0, daily_rate, stream

BASE = 2.0  # mentions a minute at the day's average


def complaints(start_ms: int, hours: float, seed: int, texts: list[str] | None = None) -> list:
    """Ten times the usual negatives (most of the posts angry) for ``hours``."""
    return list(
        stream(
            "acme",
            start_ms,
            int(hours * 60),
            lambda t: 10 * daily_rate(hour_of_day(t), BASE) * 0.3,
            0.9,
            0.02,
            seed=seed,
            texts=texts,
        )
    )


def test_a_long_storm_resolves_within_hours_and_the_next_days_storm_is_its_own() -> None:
    normal = list(stream("acme", T0, 12 * 1440, lambda t: daily_rate(hour_of_day(t), BASE), seed=2))
    first_at = T0 + 7 * DAY + 10 * HOUR
    first_end = first_at + 8 * HOUR
    second_at = first_end + 14 * HOUR
    second = complaints(
        second_at,
        2,
        19,
        ["the new app update deleted my account", "app update deleted everything"],
    )
    events = sorted(
        normal + complaints(first_at, 8, 9) + second, key=lambda e: (e.event_ms, e.mention_id)
    )
    replayer = Replayer()
    changes = [
        o
        for e in events
        for o in replayer.feed(e)
        if isinstance(o, EpisodeEvent) and o.episode["kind"] == "storm"
    ]
    storms = {}
    for change in changes:
        storms.setdefault(change.episode["episode_id"], []).append(change)
    assert len(storms) == 2, [(c.type, c.episode["episode_id"]) for c in changes]
    first, later = storms.values()
    assert first[0].type == "opened" and first[-1].type == "resolved"
    assert first[-1].at_ms - first_end < 6 * HOUR, (first[-1].at_ms - first_end) / HOUR
    assert later[0].type == "opened" and second_at <= later[0].at_ms < second_at + 30 * MINUTE
    words = [w["term"] for w in later[-1].episode["drivers"]["words"][:4]]
    assert {"deleted", "update"} <= set(words), words
