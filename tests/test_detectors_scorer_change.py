"""A change of sentiment model (backend, or model version) is not a storm.

The same 600 airline tweets are 36 % negative to the ``lexicon`` backend and 64 % to ``e5``.
A detector that compared the new model's labels with the negative share the old one taught
paged every brand at once (a storm 15 minutes after the switch, a warning at 37) and went on
for the week the share takes to relearn. It follows ``sentiment.model`` now: the sentiment
baselines relearn under the new model and storms wait for their warm-up, while the volume
baseline carries on, so a volume spike is still caught at once."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterable, Iterator

import pytest

from detectors.brand import BrandDetector
from detectors.episodes import EpisodeEvent, Output
from detectors.events import MentionEvent
from detectors.replay import Replayer
from detectors.timeslots import hour_of_day
from tests.detector_support import DAY, HOUR, MINUTE, T0, daily_rate, stream

LEXICON = "lexicon-2026.10"
E5 = "e5-small+e5-tuned-2026.11-2/onnx-int8"
SWITCH = T0 + 5 * DAY


def scored(
    brand: str, start: int, minutes: int, model: str, share: float, seed: int, base: float = 2.0
) -> Iterator[MentionEvent]:
    """The brand's usual day, labelled as ``model`` labels it (``share`` negative)."""
    for e in stream(
        brand,
        start,
        minutes,
        lambda t: daily_rate(hour_of_day(t), base),
        negative_share=share,
        positive_share=(1 - share) / 3,
        seed=seed,
    ):
        yield dataclasses.replace(e, model=model)


def run(events: Iterable[MentionEvent]) -> list[Output]:
    replayer = Replayer(None, 60_000)
    out: list[Output] = []
    for e in sorted(events, key=lambda e: (e.event_ms, e.mention_id)):
        out.extend(replayer.feed(e))
    out.extend(replayer.flush())
    return out


def opened(out: list[Output], kind: str = "storm") -> list[int]:
    return [
        o.at_ms
        for o in out
        if isinstance(o, EpisodeEvent) and o.type == "opened" and o.episode["kind"] == kind
    ]


def switched(new_model: str, days_after: float = 2.0) -> list[MentionEvent]:
    """Five days labelled by the lexicon, then the same volume labelled by ``new_model``, as
    e5 labels it (64 % negative)."""
    before = scored("united", T0, 5 * 1440, LEXICON, 0.36, seed=1)
    after = scored("united", SWITCH, int(days_after * 1440), new_model, 0.64, seed=2)
    return [*before, *after]


def test_the_reviewers_switch_opens_no_storm(caplog: pytest.LogCaptureFixture) -> None:
    # The same labels under the same model name (what the detector saw before it followed the
    # model) are a storm: the scenario is one the old detector paged for.
    control = opened(run(switched(LEXICON)))
    assert control and control[0] - SWITCH < HOUR
    with caplog.at_level(logging.WARNING, logger="detectors.brand"):
        out = run(switched(E5))
    assert opened(out) == []
    changes = [r for r in caplog.records if r.getMessage() == "detect.scorer_changed"]
    assert [(r.brand, r.old, r.new) for r in changes] == [("united", LEXICON, E5)]  # type: ignore[attr-defined]


def test_a_real_storm_after_the_warm_up_is_still_caught() -> None:
    storm_at = SWITCH + 2 * DAY
    angry = [
        dataclasses.replace(e, model=E5)
        for e in stream("united", storm_at, 60, lambda t: 12.0, 0.95, seed=9)
    ]
    out = run([*switched(E5, days_after=2.5), *angry])
    storms = opened(out)
    assert storms and storm_at <= storms[0] <= storm_at + 30 * MINUTE


def test_a_volume_spike_right_after_the_switch_is_still_caught() -> None:
    spike_at = SWITCH + 30 * MINUTE
    burst = [
        dataclasses.replace(e, model=E5)
        for e in stream("united", spike_at, 40, lambda t: 25.0, 0.64, positive_share=0.12, seed=7)
    ]
    out = run([*switched(E5, days_after=0.2), *burst])
    assert opened(out) == []
    buzz = opened(out, "buzz")
    assert buzz and spike_at <= buzz[0] <= spike_at + 20 * MINUTE


def test_a_rolling_upgrade_switches_once() -> None:
    """Mixed buckets while the scorers are upgraded one by one: the share of the new model's
    labels goes up and down around a half for an hour before it is all. One change, no storm."""
    rng = random.Random(3)
    events = list(scored("united", T0, 5 * 1440, LEXICON, 0.36, seed=1))
    for e in scored("united", SWITCH, 1440, E5, 0.64, seed=2):
        minute = (e.event_ms - SWITCH) // MINUTE
        p_new = min(1.0, 0.3 + 0.4 * (minute % 7) / 6) if minute < 60 else 1.0
        if rng.random() >= p_new:  # an old scorer labelled it, as the lexicon does
            e = dataclasses.replace(
                e, model=LEXICON, sentiment="negative" if rng.random() < 0.36 else "neutral"
            )
        events.append(e)
    replayer = Replayer(None, 60_000)
    changes: list[tuple[str | None, str | None]] = []
    out: list[Output] = []
    for e in sorted(events, key=lambda e: (e.event_ms, e.mention_id)):
        detector = replayer.detectors.get("united")
        before = detector.scorer if detector is not None else None
        out.extend(replayer.feed(e))
        after = replayer.detectors["united"].scorer
        if before is not None and after != before:
            changes.append((before, after))
    assert changes == [(LEXICON, E5)]
    assert opened(out) == []


def test_the_followed_model_survives_a_save_and_old_states_adopt_the_first_seen() -> None:
    events = sorted(switched(E5, days_after=0.1), key=lambda e: (e.event_ms, e.mention_id))
    cut = next(i for i, e in enumerate(events) if e.event_ms >= SWITCH + 5 * MINUTE)
    whole, resumed = BrandDetector("united"), BrandDetector("united")
    out_whole: list[Output] = []
    out_resumed: list[Output] = []
    for i, e in enumerate(events):
        if i == cut:
            resumed = BrandDetector.from_state(resumed.to_state())
        for d, out in ((whole, out_whole), (resumed, out_resumed)):
            d.observe(e)
            out.extend(d.advance(e.event_ms - 60_000))
    assert whole.to_state() == resumed.to_state()
    assert [o for o in out_whole] == [o for o in out_resumed]
    assert whole.scorer == E5 and whole.retired == LEXICON

    # A state saved before the detector followed the model: it adopts the first model it sees,
    # as it is (no relearning).
    old = BrandDetector("united")
    for e in events[:cut]:
        old.observe(dataclasses.replace(e, model=None))
        old.advance(e.event_ms - 60_000)
    state = old.to_state()
    del state["scorer"]
    restored = BrandDetector.from_state(state)
    share = restored.negative_share()
    restored.observe(dataclasses.replace(events[cut], model=LEXICON))
    restored.advance(events[cut].event_ms + 2 * MINUTE)
    assert restored.scorer == LEXICON and restored.retired is None
    assert restored.scorer_minutes > 24 * 60
    assert abs(restored.negative_share() - share) < 0.01
