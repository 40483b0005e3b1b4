"""The progress bar on stderr."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from streams.ingest.report import IngestReport


class ProgressView(Protocol):
    def update(self, report: IngestReport) -> None: ...

    def reading(self, count: int) -> None:
        """``--sort``: ``count`` records read and checked so far, before anything is sent."""

    def close(self) -> None: ...


class _CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"/{int(task.total):,}" if task.total is not None else " records"
        return Text(f"{int(task.completed):,}{total}", no_wrap=True)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rec/s" if speed else "- rec/s", no_wrap=True)


class _EtaColumn(ProgressColumn):
    """Time left, only when the total is known (a file, not stdin)."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        left = task.time_remaining
        shown = "-:--" if left is None else f"{int(left) // 60}:{int(left) % 60:02d}"
        return Text(f"eta {shown}", style="progress.remaining", no_wrap=True)


class RichProgress:
    """A progress bar on stderr: count, records/s, elapsed and (total known) ETA.

    With ``sorting``, a first bar counts the records read into memory (``--sort`` sends nothing
    before it has read the whole input, and the one bar stood at 0 all that time).
    """

    def __init__(self, total: int | None, console: Console, *, sorting: bool = False) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<6}"),
            BarColumn(bar_width=20),
            _CountColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            _EtaColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
            speed_estimate_period=5.0,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._sort_task = (
            self._progress.add_task("sort", total=total, note="reading into memory")
            if sorting
            else None
        )
        self._task = self._progress.add_task("ingest", total=total, note="0 rejected")
        self._progress.start()

    def reading(self, count: int) -> None:
        if self._sort_task is not None:
            self._progress.update(self._sort_task, completed=count)

    def update(self, report: IngestReport) -> None:
        if self._sort_task is not None and report.read == 1:
            self._progress.update(self._sort_task, note="read")
            self._progress.stop_task(self._sort_task)
        note = f"{report.rejected_count:,} rejected"
        self._progress.update(self._task, completed=report.read, note=note)

    def close(self) -> None:
        self._progress.stop()
