"""Records queued for a stream survive the end of a rebalance (``streams/kafka_fixes.py``).

Runs Faust's own ``Recovery.on_recovery_completed``: it resumes the stream partitions, seeks
them to their committed offsets and resumes flow. Flow was already resumed for the table
recovery, so the records the consumer delivers during the seek are this generation's first
ones and must reach the stream. Faust's flow control empties every stream queue on *each*
resume, and a stream then went on from the next records: the ones in the queue were processed
only after a later rebalance, behind newer mentions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from streams import kafka_fixes

SOURCE = TP("app.mentions.valid", 0)
DELIVERED_DURING_SEEK = [46, 47, 48, 49]


class SeekingConsumer:
    """The consumer as recovery uses it; its seek lets the fetcher deliver a few records."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def assignment(self) -> set[TP]:
        return {SOURCE}

    def resume_partitions(self, partitions: set[TP]) -> None:
        assert partitions == {SOURCE}

    async def perform_seek(self) -> None:
        for offset in DELIVERED_DURING_SEEK:
            self.queue.put_nowait(offset)

    def resume_flow(self) -> None:
        pass


async def finish_recovery(app: faust.App, stream_queue: Any) -> list[Any]:
    app._consumer = SeekingConsumer(stream_queue)  # type: ignore[assignment]

    async def no_fetcher_start() -> None:
        return None

    app.__dict__["_fetcher"] = type("Fetcher", (), {"maybe_start": staticmethod(no_fetcher_start)})
    recovery = Recovery(app, tables=app.tables)
    app.consumer_generation_id = 3
    await recovery.on_recovery_completed(generation_id=3)
    return list(stream_queue._queue)


def new_app() -> faust.App:
    kafka_fixes.install()
    return faust.App("recovery-queues", broker="kafka://127.0.0.1:1", autodiscover=False)


def test_records_delivered_during_the_seek_reach_the_stream() -> None:
    app = new_app()
    stream_queue = app.channel().queue  # a stream's queue: emptied on resume by Faust
    app.flow_control.resume()  # the table recovery resumed flow before the seek
    assert asyncio.run(finish_recovery(app, stream_queue)) == DELIVERED_DURING_SEEK


def test_resuming_after_a_suspension_still_empties_the_queues() -> None:
    app = new_app()
    stream_queue = app.channel().queue
    app.flow_control.resume()
    stream_queue.put_nowait("fetched before the rebalance")
    app.flow_control.suspend()  # a rebalance begins: what is queued is of the old generation
    app.flow_control.resume()
    assert stream_queue.empty()


@pytest.mark.parametrize("times", [1, 3])
def test_resuming_flowing_queues_keeps_their_records(times: int) -> None:
    app = new_app()
    stream_queue = app.channel().queue
    app.flow_control.resume()
    stream_queue.put_nowait("this generation's record")
    for _ in range(times):
        app.flow_control.resume()
    assert stream_queue.get_nowait() == "this generation's record" and stream_queue.empty()
