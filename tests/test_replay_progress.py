"""Progress of a replay whose output is no terminal: a log line every so often (no Kafka)."""

from __future__ import annotations

from structlog.testing import capture_logs

from streams.replay.command import LogProgress


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_long_replay_off_the_terminal_logs_its_progress() -> None:
    clock = Clock()
    progress = LogProgress(every_s=30, clock=clock)
    with capture_logs() as logs:
        progress.status("loading the sentiment model")
        progress.start(10_000)
        for read in range(100, 2_001, 100):
            clock.now += 1  # 100 records a second: 20 s, no line yet
            progress.advance(read)
        lines = [e for e in logs if e["event"] == "replay.progress"]
        assert lines == []
        for read in range(2_100, 4_001, 100):
            clock.now += 1  # 40 s now
            progress.advance(read)
        progress.grow(12_000)  # a partition out of time order: read to its end
        for read in range(4_100, 8_001, 100):
            clock.now += 1
            progress.advance(read)
    lines = [e for e in logs if e["event"] == "replay.progress"]
    assert [e["read"] for e in lines] == [3_000, 6_000]
    first, second = lines
    assert first["total"] == 10_000 and first["percent"] == 30.0
    assert first["per_s"] == 100 and first["elapsed_s"] == 30 and first["remaining_s"] == 70
    assert second["total"] == 12_000 and second["percent"] == 50.0
    assert second["remaining_s"] == 60
    assert any(e["event"] == "replay.status" for e in logs)
