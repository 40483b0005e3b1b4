"""The first ask of a quiet spell: the detect timer asks the upstream probe only while a partition
is quiet, so the probe has no sample ``settle_s`` old then. It used to answer "not caught up" for
that alone, and every quiet spell counted a hold (and closed one timer interval late) with
nothing upstream at all. Without Kafka: the probe's samples are given."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import chain

from streams.settings import Settings
from streams.upstream import UpstreamProbe

TP = ("mentions", 0)
Sample = tuple[dict[tuple[str, int], int], ...]


def probe_of(
    samples: Iterator[Sample], settle_s: float = 10.0
) -> tuple[UpstreamProbe, list[float]]:
    """A probe whose samples are ``samples`` (committed, first, end offsets), one per call, and
    the monotonic times of those calls."""
    probe = UpstreamProbe(Settings(kafka_bootstrap_servers="127.0.0.1:9"), "g", ["mentions"])
    probe.settle_s = settle_s
    probe.poll_s = 0.01
    times: list[float] = []

    def sample() -> Sample:
        times.append(time.monotonic())
        return next(samples)

    probe.sample = sample  # type: ignore[method-assign]
    return probe, times


def offsets(committed: int, end: int) -> Sample:
    return {TP: committed}, {TP: 0}, {TP: end}


def forever(sample: Sample) -> Iterator[Sample]:
    while True:
        yield sample


def test_nothing_upstream_lets_the_first_ask_of_every_quiet_spell_through() -> None:
    probe, times = probe_of(forever(offsets(500, 500)))
    assert probe.caught_up(now=1000.0)  # the first ask there ever was
    assert probe.caught_up(now=1030.0)
    assert probe.caught_up(now=1700.0)  # after a busy spell: the samples are too old
    assert len(times) == 3  # one sample each, no waiting


def test_a_steady_flow_passes_the_first_ask_once_the_group_commits_what_it_saw() -> None:
    """Commits trail the end offsets by a commit interval: the first ask waits for the commit of
    what its first sample saw, however much arrived meanwhile, not for settle_s."""
    samples = iter([offsets(90, 100), offsets(95, 108), offsets(100, 115)])
    probe, times = probe_of(samples)
    started = time.monotonic()
    assert probe.caught_up(now=1000.0)
    assert len(times) == 3 and time.monotonic() - started < 5


def test_a_stall_still_holds_the_first_ask() -> None:
    """Five records nobody commits: the first ask waits settle_s for them, and says no; so does
    the next ask, now with the usual reference."""
    probe, times = probe_of(forever(offsets(95, 100)), settle_s=0.3)
    started = time.monotonic()
    assert not probe.caught_up(now=1000.0)
    assert time.monotonic() - started >= 0.3 and len(times) > 2
    assert not probe.caught_up(now=1030.0)


def test_records_arriving_during_the_first_ask_are_not_what_it_waits_for() -> None:
    """Nor is it fooled by a commit of less than its first sample saw."""
    samples = chain([offsets(0, 10), offsets(9, 20)], forever(offsets(9, 30)))
    probe, _ = probe_of(samples, settle_s=0.2)
    assert not probe.caught_up(now=1000.0)


def test_kafka_failing_during_the_first_ask_holds_the_timer() -> None:
    def samples() -> Iterator[Sample]:
        yield offsets(90, 100)
        raise ConnectionError("brokers gone")

    probe, _ = probe_of(samples())
    assert not probe.caught_up(now=1000.0)


def test_close_ends_a_first_ask_that_waits() -> None:
    """At shutdown the timer's thread does not keep the worker waiting for settle_s."""
    probe, _ = probe_of(forever(offsets(0, 5)), settle_s=60)
    answers: list[bool] = []
    asking = threading.Thread(target=lambda: answers.append(probe.caught_up()))
    asking.start()
    time.sleep(0.2)
    started = time.monotonic()
    probe.close()
    asking.join(timeout=5)
    assert answers == [False] and time.monotonic() - started < 5
    assert not probe.caught_up()
