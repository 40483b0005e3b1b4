"""What the demo writes to its mentions topic must be in time order: the report's replay merges
the topic's partitions by record time, so one record dated later than the rest of its partition
held the whole partition back, and the report counted a quarter of the story late (in no
bucket, with a warning about out-of-order input). Kafka, the worker and the report are faked
here; only the order and the record times of what the demo sends are checked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from streams import demo
from streams.demo import DemoOptions, Send, Stack
from streams.settings import Settings


@pytest.mark.parametrize("paged", [True, False])
def test_every_record_the_demo_sends_is_dated_and_in_time_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, paged: bool
) -> None:
    """And the demo's exit code says whether its storm was paged (it was 0 without a page)."""
    sent: list[tuple[bytes | None, bytes, int | None]] = []

    @contextmanager
    def producer(_settings: Settings) -> Iterator[Send]:
        yield lambda key, value, timestamp_ms: sent.append((key, value, timestamp_ms))

    def start(*_args: Any) -> tuple[Settings, str]:
        return Settings(), "http://127.0.0.1:9"

    def backfill(_console: Any, send: Send, calm: list[dict[str, Any]], *_args: Any) -> None:
        demo._send_mentions(send, calm)

    def play(_console: Any, send: Send, scenario: demo.Scenario, *_args: Any) -> None:
        for phase in ("storm", "recovery"):
            for group in scenario.minutes(phase):
                demo._send_mentions(send, group)

    monkeypatch.setattr(demo, "_start", start)
    monkeypatch.setattr(demo, "_producer", producer)
    monkeypatch.setattr(demo, "_backfill", backfill)
    monkeypatch.setattr(demo, "_play", play)
    for name in ("_show_dead_letters", "_write_report", "_where"):
        monkeypatch.setattr(demo, name, lambda *_a, **_k: None)
    monkeypatch.setattr(demo, "_show_page", lambda *_a, **_k: paged)
    monkeypatch.setattr(Stack, "stop", lambda self, console: None)

    code = demo.run_demo(Settings(), options=DemoOptions(report_dir=tmp_path / "report"))

    assert code == (0 if paged else 1)
    assert len(sent) > len(demo.BROKEN)
    assert {value for _key, value, _ms in sent} >= set(demo.BROKEN)
    undated = [value[:40] for _key, value, ms in sent if ms is None]
    assert not undated, f"without a time, a record gets the broker's clock (now): {undated}"
    times = [ms for _key, _value, ms in sent if ms is not None]
    back = [i for i in range(1, len(times)) if times[i] < times[i - 1]]
    assert not back, f"records sent after newer ones, at positions {back[:5]}"
