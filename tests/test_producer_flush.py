"""Faust's producer buffer flush waits for every queued message (``streams/kafka_fixes.py``).

Faust flushes the buffer before committing offsets; its own flush gave up after 0.1 s without a
message leaving, so a slow send let a commit overtake table writes still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from streams import kafka_fixes


class SlowChannel:
    """Stands for a topic whose sends take longer than Faust's 0.1 s flush patience."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.sent: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(self.delay_s)
        self.sent.append(fut.number)


def message(channel: SlowChannel, number: int) -> Any:
    return SimpleNamespace(number=number, message=SimpleNamespace(channel=channel))


async def queue_and_flush(count: int, delay_s: float) -> tuple[SlowChannel, int]:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    channel = SlowChannel(delay_s)
    await buffer.start()
    try:
        for number in range(count):
            buffer.put(message(channel, number))
        await buffer.flush()
        return channel, buffer.size
    finally:
        with contextlib.suppress(RuntimeError):  # stopping flushes too; a stalled one refuses
            await buffer.stop()


def test_flush_returns_only_when_every_message_went_out() -> None:
    kafka_fixes.install()
    channel, left = asyncio.run(queue_and_flush(count=6, delay_s=0.15))
    assert left == 0
    assert channel.sent == list(range(6)), "flush returned with messages still queued"


def test_a_stalled_buffer_fails_the_flush_instead_of_letting_a_commit_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka_fixes.install()
    monkeypatch.setattr(kafka_fixes, "FLUSH_STALL_S", 0.3)
    with pytest.raises(kafka_fixes.FlushStalled):
        asyncio.run(queue_and_flush(count=2, delay_s=5.0))
