"""A worker that dies while the story plays must end the demo at once, naming its log.

The demo used to go on waiting for the dead worker to score yesterday's posts (five minutes,
the progress bar frozen), then played the storm to no one and ended with "No storm page was
raised", never saying the worker had gone. Kafka and the worker's metrics are faked: the
metrics address answers nothing, and the worker is a process that has already exited."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from streams import demo
from streams.demo import DemoOptions, Send, Stack
from streams.errors import StormvarselError
from streams.kafka_local import free_port
from streams.settings import Settings


@pytest.mark.timeout(60)
def test_the_demo_stops_when_its_worker_exits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()

    def start(stack: Stack, *_args: Any) -> tuple[Settings, str]:
        stack.worker = dead
        stack.worker_log = log
        return Settings(), f"http://127.0.0.1:{free_port()}"  # nothing listens there

    @contextmanager
    def producer(_settings: Settings) -> Iterator[Send]:
        yield lambda _key, _value, _timestamp_ms: None

    monkeypatch.setattr(demo, "_start", start)
    monkeypatch.setattr(demo, "_producer", producer)
    started = time.monotonic()
    with pytest.raises(StormvarselError) as raised:
        demo.run_demo(Settings(), options=DemoOptions(report_dir=tmp_path / "report"))
    assert time.monotonic() - started < 30
    assert "the worker exited with code 3" in str(raised.value)
    assert str(log) in str(raised.value)
