"""One ingest run: read, check, pace and send, and wait for Kafka's acknowledgements."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from kafka.errors import KafkaError
from rich.console import Console

from streams.brand_matching import BrandMatcher
from streams.ingest.csv_input import check_csv
from streams.ingest.errors import IngestError, InputError
from streams.ingest.kafka_sink import FLUSH_TIMEOUT_S, Connection, Sink, connect_kafka
from streams.ingest.mapping import Preparer, Ready, Refused
from streams.ingest.options import IngestOptions
from streams.ingest.pacing import Pacer
from streams.ingest.progress import ProgressView, RichProgress
from streams.ingest.readers import check_json, count_records, open_input, read_rows
from streams.ingest.report import IngestReport, RejectLog, TimeOrder
from streams.ingest.rows import Row
from streams.kafka_clients import (
    kafka_logs_quiet,
)
from streams.log_setup import get_logger
from streams.mention import Limits, Rejection
from streams.settings import Settings
from streams.topics import MENTIONS

log = get_logger(__name__)


class _Delivery:
    """Tracks records handed to the sink until Kafka acknowledges (or refuses) each."""

    def __init__(self, report: IngestReport, rejects: RejectLog) -> None:
        self._report = report
        self._rejects = rejects
        self._lock = threading.Lock()
        self._pending: dict[int, Ready] = {}
        self._next = 0

    def submit(self, sink: Sink, record: Ready) -> None:
        with self._lock:
            ticket = self._next
            self._next += 1
            self._pending[ticket] = record
        try:
            sink.send(record, lambda error: self._done(ticket, error))
        except (KafkaError, OSError, ValueError, TypeError) as exc:
            self._done(ticket, exc)

    def _done(self, ticket: int, error: Exception | None) -> None:
        with self._lock:
            record = self._pending.pop(ticket, None)
            if record is None:
                return
            if error is None:
                self._report.sent += 1
                return
        log.debug("ingest.send_failed", line=record.line, error=repr(error))
        rejection = Rejection(f"send_failed:{type(error).__name__}", str(error) or repr(error))
        self._rejects.add(Refused(record.line, record.raw, rejection), failed=True)

    def give_up_on_pending(self) -> None:
        """Whatever Kafka has not answered after the flush counts as failed, with its line."""
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for record in pending:
            rejection = Rejection("send_failed:not_confirmed", "Kafka did not confirm the record")
            self._rejects.add(Refused(record.line, record.raw, rejection), failed=True)


_READ_STEP = 1000  # --sort: records read between progress updates


def _in_event_order(
    outcomes: Iterable[Ready | Refused], on_read: Callable[[int], None] | None = None
) -> Iterator[Ready | Refused]:
    """``--sort``: the whole input in memory, refusals first, then records by event time.

    ``on_read`` hears the count read so far, every ``_READ_STEP`` records and at the end.
    """
    materialised: list[Ready | Refused] = []
    for item in outcomes:
        materialised.append(item)
        if on_read is not None and len(materialised) % _READ_STEP == 0:
            on_read(len(materialised))
    if on_read is not None:
        on_read(len(materialised))
    yield from (item for item in materialised if isinstance(item, Refused))
    ready = [item for item in materialised if isinstance(item, Ready)]
    yield from sorted(ready, key=lambda item: item.timestamp_ms)


def _pump(
    outcomes: Iterable[Ready | Refused],
    connection: Connection,
    pacer: Pacer,
    report: IngestReport,
    rejects: RejectLog,
    progress: ProgressView | None,
) -> None:
    delivery = _Delivery(report, rejects)
    order = TimeOrder(report)
    cutoff_ms = (
        (time.time() * 1000 - connection.retention_ms)
        if connection.retention_ms is not None and connection.retention_ms >= 0
        else None
    )
    limit = connection.record_limit
    started = time.monotonic()
    first_send: float | None = None
    try:
        for item in outcomes:
            report.read += 1
            too_large = (
                limit.refusal(item.key, item.value)
                if limit is not None and isinstance(item, Ready)
                else None
            )
            if too_large is not None:
                # Kafka would refuse it, and kafka-python then fails the records sent after it
                # to the same partition too: never sent, kept with its reason like a bad row.
                item = Refused(item.line, item.raw, too_large)
            if isinstance(item, Refused):
                rejects.add(item)
            else:
                now = time.monotonic()
                first_send = now if first_send is None else first_send
                wait = first_send + pacer.offset(item.timestamp_ms) - now
                if wait > 0:
                    time.sleep(wait)
                if cutoff_ms is not None and item.timestamp_ms < cutoff_ms:
                    report.older_than_retention += 1
                order.see(item)
                delivery.submit(connection.sink, item)
            if progress is not None:
                progress.update(report)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        _finish(connection.sink, delivery, report)
        report.duration_s = time.monotonic() - started


def _finish(sink: Sink, delivery: _Delivery, report: IngestReport) -> None:
    """Flush, count what Kafka never answered as failed, close. A Ctrl-C here stops waiting."""
    try:
        sink.flush(FLUSH_TIMEOUT_S)
    except KafkaError as exc:
        log.warning("ingest.flush_incomplete", error=repr(exc))
    except KeyboardInterrupt:
        report.interrupted = True
    delivery.give_up_on_pending()
    sink.close()


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.mention_max_bytes, max_future_skew_s=settings.max_future_skew_s
    )


def matcher_from(settings: Settings) -> BrandMatcher | None:
    """The brand resolver when a brands file is configured; without one, brands pass through."""
    brands = settings.brands
    return BrandMatcher.from_file(brands) if brands.brands else None


def run_ingest(
    settings: Settings,
    options: IngestOptions,
    *,
    stdin: IO[bytes] | None = None,
    console: Console | None = None,
    connect: Callable[[Settings, str, float], Connection] = connect_kafka,
) -> IngestReport:
    """Read, check and send; return the report. ``console``: show a progress bar on it.

    The input is opened (and a CSV read through once, a JSON array read whole) before Kafka is
    contacted, so a wrong path or column, or a broken file, fails at once with the file's name
    and line, and nothing is sent; the rejects file is only (over)written once Kafka is
    reachable. Ctrl-C stops reading; what was sent is flushed and the report says so.
    """
    topic = options.topic or settings.topic(MENTIONS)
    report = IngestReport(source=options.source_label, topic=topic)
    report.lateness_ms = round(settings.detect_lateness_s * 1000)
    preparer = Preparer(
        options.transform, limits_from(settings), matcher_from(settings), options.key_by
    )
    stream_in = stdin if stdin is not None else _stdin()
    try:
        with open_input(options.source, stream_in) as opened:
            _ingest_from(opened, settings, options, report, preparer, console, connect)
    except InputError as exc:
        raise IngestError(f"{options.source_label}: {exc}") from None
    if report.went_back:
        log.warning(
            "ingest.out_of_order_total",
            records=report.went_back,
            first_line=report.went_back_first_line,
            max_behind_s=round(report.went_back_max_ms / 1000, 3),
            detect_lateness_s=settings.detect_lateness_s,
            hint="send the input with --sort",
        )
    log.debug(
        "ingest.done",
        read=report.read,
        sent=report.sent,
        rejected=report.rejected_count,
        failed=report.failed_count,
        duration_s=round(report.duration_s, 3),
    )
    return report


def _ingest_from(
    stream: IO[bytes],
    settings: Settings,
    options: IngestOptions,
    report: IngestReport,
    preparer: Preparer,
    console: Console | None,
    connect: Callable[[Settings, str, float], Connection],
) -> None:
    allow = options.allow_rejects
    if options.format == "csv":
        stream = check_csv(stream, options.transform, options.encoding, allow_not_utf8=allow)
    else:
        check_json(stream, options.encoding, allow_not_utf8=allow)
    rows: Iterator[Row] = read_rows(stream, options.format, options.transform, options.encoding)
    if options.limit is not None:
        rows = itertools.islice(rows, options.limit)
    outcomes: Iterable[Ready | Refused] = (preparer.prepare(row) for row in rows)
    with kafka_logs_quiet():
        connection = connect(settings, report.topic, options.wait_for_kafka_s)
        report.retention_ms = connection.retention_ms
        report.record_limit = connection.record_limit
        try:
            rejects = RejectLog(report, options.rejects)
        except IngestError:
            connection.sink.close()
            raise
        with rejects:
            _run(outcomes, connection, options, report, rejects, console)


def _run(
    outcomes: Iterable[Ready | Refused],
    connection: Connection,
    options: IngestOptions,
    report: IngestReport,
    rejects: RejectLog,
    console: Console | None,
) -> None:
    progress = _progress_for(options, console)
    if options.sort:
        outcomes = _in_event_order(outcomes, progress.reading if progress is not None else None)
    try:
        pacer = Pacer(rate=options.rate, speedup=options.speedup)
        _pump(outcomes, connection, pacer, report, rejects, progress)
    finally:
        if progress is not None:
            progress.close()


def _stdin() -> IO[bytes]:
    return sys.stdin.buffer


def _progress_for(options: IngestOptions, console: Console | None) -> ProgressView | None:
    if console is None:
        return None
    total = (
        count_records(options.source, options.format, options.transform, options.encoding)
        if options.source is not None
        else None
    )
    if total is not None and options.limit is not None:
        total = min(total, options.limit)
    return RichProgress(total, console, sorting=options.sort)
