"""Futures held until Kafka has answered them (``streams/held_futures.py``): what the forwarders'
and the table writes' flushes wait for before an offset commit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.held_futures import HeldFutures, answer_error


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def _ticks(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _holding(count: int, timeout_s: float = 30) -> tuple[HeldFutures, list[asyncio.Future[Any]]]:
    held = HeldFutures(timeout_s)
    futures = [_future() for _ in range(count)]
    for future in futures:
        held.hold(future)
    return held, futures


def test_every_future_is_held_until_answered_and_each_answer_read_once() -> None:
    async def run() -> None:
        held = HeldFutures(timeout_s=5)
        answers: list[tuple[asyncio.Future[Any], int]] = []
        futures = [_future() for _ in range(4)]
        for future in futures:
            held.hold(future, lambda done: answers.append((done, len(held))))
        assert len(held) == 4 and held.mark() == set(futures)

        futures[0].set_result(None)
        futures[1].set_exception(TimeoutError("no answer"))
        futures[2].cancel()
        await _ticks()
        # Each read while still held (what it starts is held before it goes), then let go.
        assert answers == [(futures[0], 4), (futures[1], 3), (futures[2], 2)]
        assert len(held) == 1 and held.mark() == {futures[3]}

        futures[3].set_result(None)
        await _ticks()
        assert [future for future, _ in answers] == futures and len(held) == 0

    asyncio.run(run())


def test_a_failing_reader_does_not_keep_the_future_held() -> None:
    async def run() -> None:
        held = HeldFutures(timeout_s=5)
        future = _future()

        def broken(_: asyncio.Future[Any]) -> None:
            raise RuntimeError("a bug in the reader")

        asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
        held.hold(future, broken)
        future.set_result(None)
        await _ticks()
        assert len(held) == 0

    asyncio.run(run())


@pytest.mark.parametrize("marked", [True, False], ids=["a-mark", "all-held-now"])
def test_wait_returns_only_once_every_future_is_answered(marked: bool) -> None:
    async def run() -> None:
        held, futures = _holding(3)
        waiting = asyncio.ensure_future(held.wait(held.mark() if marked else None))
        for future in futures[:2]:
            future.set_result(None)
            await _ticks()
            assert not waiting.done()
        futures[2].set_exception(RuntimeError("refused"))  # a refusal is an answer too
        assert await asyncio.wait_for(waiting, timeout=5) == set()

    asyncio.run(run())


def test_wait_leaves_futures_held_after_the_mark_to_the_next_wait() -> None:
    async def run() -> None:
        held, [before] = _holding(1)
        marked = held.mark()
        after = _future()
        held.hold(after)
        waiting = asyncio.ensure_future(held.wait(marked))
        before.set_result(None)
        assert await asyncio.wait_for(waiting, timeout=5) == set()
        assert held.mark() == {after}

    asyncio.run(run())


def test_futures_not_answered_in_time_are_returned_still_held_and_not_cancelled() -> None:
    async def run() -> None:
        held, [answered, silent] = _holding(2, timeout_s=0.05)
        answered.set_result(None)
        late = await asyncio.wait_for(held.wait(held.mark()), timeout=5)
        assert late == {silent}
        assert not silent.done() and held.mark() == {silent}
        assert held.timeout_s == pytest.approx(0.05)

    asyncio.run(run())


def test_nothing_to_wait_for_returns_nothing_late() -> None:
    async def run() -> None:
        held = HeldFutures(timeout_s=0.05)
        assert await held.wait() == set()
        assert await held.wait(set()) == set()

    asyncio.run(run())


def test_answer_error_reads_refusals_cancellations_and_deliveries() -> None:
    async def answers() -> list[BaseException | None]:
        refused, cancelled, taken = _future(), _future(), _future()
        refused.set_exception(ValueError("too large"))
        cancelled.cancel()
        taken.set_result("metadata")
        return [answer_error(f) for f in (refused, cancelled, taken)]

    refused, cancelled, taken = asyncio.run(answers())
    assert isinstance(refused, ValueError) and str(refused) == "too large"
    assert isinstance(cancelled, asyncio.CancelledError)
    assert taken is None
