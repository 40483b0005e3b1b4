"""What a run did: counts by reason, the rejects file, and records that go back in time."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from streams.ingest.errors import IngestError
from streams.ingest.mapping import Ready, Refused
from streams.log_setup import get_logger
from streams.topic_limit import RecordLimit

log = get_logger(__name__)

_EXAMPLE_LINES = 5  # line numbers shown per reason in the summary


@dataclass
class ReasonGroup:
    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.lines) < _EXAMPLE_LINES:
            self.lines.append(line)

    def describe(self) -> str:
        shown = ", ".join(str(line) for line in self.lines)
        more = self.count - len(self.lines)
        word = "line" if self.count == 1 else "lines"
        return f"{word} {shown}" + (f" and {more:,} more" if more else "")


class TimeOrder:
    """Watches the event times in the order records are sent, as the detect stage will see them.

    The detect stage counts a mention late when its time is more than the allowed lateness
    (``STORMVARSEL_DETECT_LATENESS_S``) behind the newest mention it has seen, and late mentions
    raise nothing. An input that goes back in time by more than that (a newest-first export) is
    counted, and the first such record is logged at once: the run may be long.
    """

    def __init__(self, report: IngestReport) -> None:
        self._report = report
        self._newest_ms: int | None = None

    def see(self, record: Ready) -> None:
        lateness_ms = self._report.lateness_ms
        if lateness_ms is None:
            return
        if self._newest_ms is None or record.timestamp_ms > self._newest_ms:
            self._newest_ms = record.timestamp_ms
            return
        behind_ms = self._newest_ms - record.timestamp_ms
        if behind_ms <= lateness_ms:
            return
        report = self._report
        report.went_back += 1
        report.went_back_max_ms = max(report.went_back_max_ms, behind_ms)
        if report.went_back_first_line is None:
            report.went_back_first_line = record.line
            log.warning(
                "ingest.out_of_order",
                line=record.line,
                behind_s=round(behind_ms / 1000, 3),
                detect_lateness_s=lateness_ms / 1000,
                hint="the input goes back in time: the detect stage will count such mentions "
                "late and raise no alert from them; send it with --sort",
            )


@dataclass
class IngestReport:
    source: str
    topic: str
    read: int = 0
    sent: int = 0  # acknowledged by Kafka
    rejected: dict[str, ReasonGroup] = field(default_factory=dict)
    failed: dict[str, ReasonGroup] = field(default_factory=dict)
    duration_s: float = 0.0
    interrupted: bool = False
    rejects_file: Path | None = None
    retention_ms: int | None = None
    record_limit: RecordLimit | None = None  # the largest record batch the topic takes
    older_than_retention: int = 0
    lateness_ms: int | None = None  # the detect stage's allowed lateness (None: not checked)
    rejects_write_error: str | None = None  # why the rejects file could not be written in full
    rejects_not_kept: int = 0  # records missing from the rejects file after that error
    went_back: int = 0  # records sent more than lateness_ms before the newest sent ahead of them
    went_back_first_line: int | None = None
    went_back_max_ms: int = 0  # the furthest such a record was behind

    @property
    def rejected_count(self) -> int:
        return sum(group.count for group in self.rejected.values())

    @property
    def failed_count(self) -> int:
        return sum(group.count for group in self.failed.values())

    @property
    def rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    def exit_code(self, *, allow_rejects: bool = False) -> int:
        if self.interrupted:
            return 130
        if self.rejects_write_error is not None:
            return 1  # records asked to be kept were lost, whatever --allow-rejects says
        if self.failed_count or (self.rejected_count and not allow_rejects):
            return 1
        return 0


class RejectLog:
    """Counts refused records by reason and writes each to the rejects file (thread-safe).

    Kafka's acknowledgements arrive on the producer's thread, hence the lock.
    """

    def __init__(self, report: IngestReport, path: Path | None) -> None:
        self._report = report
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            try:
                self._file = path.open("w", encoding="utf-8")
            except OSError as exc:
                raise IngestError(f"--rejects {path}: cannot write ({exc.strerror})") from None
            report.rejects_file = path

    def add(self, refused: Refused, *, failed: bool = False) -> None:
        groups = self._report.failed if failed else self._report.rejected
        with self._lock:
            groups.setdefault(refused.rejection.reason, ReasonGroup()).add(refused.line)
            if self._report.rejects_write_error is not None:
                self._report.rejects_not_kept += 1
                return
            if self._file is None:
                return
            entry: dict[str, Any] = {
                "line": refused.line,
                "reason": refused.rejection.reason,
                "message": refused.rejection.message,
                "raw": refused.raw,
            }
            if refused.raw_bytes is not None:
                entry["raw_b64"] = base64.b64encode(refused.raw_bytes).decode("ascii")
            try:
                # Flushed per record, so a full disk is noticed at the record it loses.
                self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._file.flush()
            except OSError as exc:
                self._write_failed(exc)
                self._report.rejects_not_kept += 1

    def _write_failed(self, exc: OSError) -> None:
        self._report.rejects_write_error = exc.strerror or str(exc)
        log.error(
            "ingest.rejects_write_failed", file=str(self._report.rejects_file), error=repr(exc)
        )
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # the same failure, already recorded
                file.close()

    def close(self) -> None:
        with self._lock:
            file, self._file = self._file, None
            if file is None:
                return
            try:
                file.close()
            except OSError as exc:
                if self._report.rejects_write_error is None:
                    self._report.rejects_write_error = exc.strerror or str(exc)

    def __enter__(self) -> RejectLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
