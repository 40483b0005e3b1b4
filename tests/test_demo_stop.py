"""Ctrl-C pressed again while the demo stops must not cut the stop short.

The first Ctrl-C starts the stop; the worker takes seconds to finish, and an impatient user
presses Ctrl-C again. That second interrupt used to escape the stop after the worker, so
Prometheus, Alertmanager and the Kafka broker (which runs in a session of its own and never sees
the terminal's Ctrl-C) were left running, and the next demo silently reused that broker."""

from __future__ import annotations

import os
import signal
from typing import Any, cast

import pytest
from rich.console import Console

from streams.demo import Stack


class FakeWorker:
    """A worker that is still running; the user presses Ctrl-C while it is told to stop."""

    def __init__(self) -> None:
        self.stopped = False

    def poll(self) -> int | None:
        return 0 if self.stopped else None

    def send_signal(self, _signum: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, delivered to the demo
        self.stopped = True

    def wait(self, timeout: float | None = None) -> int:
        return 0


class FakeService:
    def __init__(self, name: str, stopped: list[str]) -> None:
        self.name = name
        self._stopped = stopped

    def stop(self, *_args: Any, **_kwargs: Any) -> bool:
        self._stopped.append(self.name)
        return True


def test_a_second_ctrl_c_while_stopping_still_stops_everything() -> None:
    stopped: list[str] = []
    stack = Stack(
        broker=cast(Any, FakeService("kafka", stopped)),
        kafka_ours=True,
        worker=cast(Any, FakeWorker()),
        alertmanager=cast(Any, FakeService("alertmanager", stopped)),
        prometheus=cast(Any, FakeService("prometheus", stopped)),
        receiver=cast(Any, FakeService("receiver", stopped)),
    )
    console = Console(record=True, width=200)
    before = signal.getsignal(signal.SIGINT)
    try:
        stack.stop(console)
    except KeyboardInterrupt:
        pytest.fail(f"the second Ctrl-C cut the stop short; stopped only {stopped}")
    assert stopped == ["prometheus", "alertmanager", "receiver", "kafka"]
    text = console.export_text()
    assert "Still stopping" in text and "Kafka stopped." in text
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works as before afterwards
