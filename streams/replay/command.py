"""The ``stormvarsel replay`` command: options in, progress bar, report out, summary printed."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from detectors.config import DetectorConfig
from streams.errors import ConfigError
from streams.kafka_clients import kafka_logs_quiet
from streams.log_setup import get_logger
from streams.replay import run as replay_run
from streams.replay.report import ReportPaths, write_report
from streams.replay.report_context import build_context
from streams.replay.report_wording import (
    comparison_sentence,
    coverage_warnings,
    layout_warnings,
    uncounted_warnings,
)
from streams.replay.result import ReplayResult, Stage
from streams.replay.source import CONNECT_TIMEOUT_S, ReplayError
from streams.replay.timeline import episodes
from streams.replay.times import (
    TimeFormatError,
    iso_utc,
    parse_duration,
    parse_time,
    parse_zone,
    show_time,
)
from streams.settings import Settings

log = get_logger(__name__)


class OptionError(ValueError):
    """A bad command-line value; ``option`` names it for click."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.message = message


@dataclass(frozen=True)
class CommandOptions:
    start: str
    end: str
    brands: tuple[str, ...] = ()
    topic: str | None = None
    stage: str = "auto"
    config_file: Path | None = None
    publish_prefix: str | None = None
    out: Path | None = None
    warmup: str = "7d"
    timezone: str = "UTC"
    quiet: bool = False


def load_candidate(path: Path) -> DetectorConfig:
    """The ``--config`` file, refused in one line naming the file and the key."""
    try:
        return DetectorConfig.from_yaml(path)
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path} ({exc.strerror})") from None
    except (ValueError, yaml.YAMLError) as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"--config: {path}: {message}") from None


def replay_options(options: CommandOptions) -> replay_run.ReplayOptions:
    """Command-line text to typed options (OptionError names the bad option)."""
    try:
        zone = parse_zone(options.timezone)
    except TimeFormatError as exc:
        raise OptionError("--timezone", str(exc)) from None
    try:
        start_ms = parse_time(options.start, zone)
    except TimeFormatError as exc:
        raise OptionError("--from", str(exc)) from None
    try:
        end_ms = parse_time(options.end, zone)
    except TimeFormatError as exc:
        raise OptionError("--to", str(exc)) from None
    if end_ms <= start_ms:
        raise OptionError("--to", "must be later than --from")
    try:
        warmup_ms = parse_duration(options.warmup)
    except TimeFormatError as exc:
        raise OptionError("--warmup", str(exc)) from None
    stage: Stage | None = None if options.stage == "auto" else options.stage  # type: ignore[assignment]
    candidate = load_candidate(options.config_file) if options.config_file else None
    return replay_run.ReplayOptions(
        start_ms=start_ms,
        end_ms=end_ms,
        brands=options.brands,
        topic=options.topic,
        stage=stage,
        warmup_ms=warmup_ms,
        candidate=candidate,
        candidate_source=str(options.config_file) if options.config_file else "",
        publish_prefix=options.publish_prefix,
        timezone=options.timezone,
    )


def default_out(start_ms: int, end_ms: int) -> Path:
    def stamp(ms: int) -> str:
        return iso_utc(ms).replace("-", "").replace(":", "")[:-3] + "Z"

    return Path(f"replay-{stamp(start_ms)}-{stamp(end_ms)}")


class _Count(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"/{int(task.total):,}" if task.total else ""
        return Text(f"{int(task.completed):,}{total} mentions", no_wrap=True)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", no_wrap=True)


class RichProgress(replay_run.Progress):
    """Mentions read of the total, their rate, elapsed and remaining time (on stderr)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: Any = None
        self._shown = 0
        self._read = 0

    def status(self, message: str) -> None:
        self._console.print(f"[dim]{message} …[/]")

    def start(self, total: int) -> None:
        self._progress = Progress(
            TextColumn("[bold]replay"),
            BarColumn(bar_width=24),
            _Count(),
            _Rate(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self._console,
            speed_estimate_period=10.0,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("replay", total=total)
        self._progress.start()

    def advance(self, read: int) -> None:
        # Updating per record would cost more than the detectors; every 100 is smooth enough.
        self._read = read
        if self._progress is not None and (read - self._shown >= 100 or read < self._shown):
            self._progress.update(self._task, completed=read)
            self._shown = read

    def grow(self, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=total)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self._read)
            self._progress.stop()
            self._progress = None


class LogProgress(replay_run.Progress):
    """Progress as a ``replay.progress`` log line every ``every_s`` seconds, for a replay whose
    output is no terminal (a job, a pipe, ``nohup``): without it a replay of hours said nothing
    between its start and its end."""

    def __init__(self, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._started = self._last = clock()
        self._total = 0

    def status(self, message: str) -> None:
        log.info("replay.status", step=message)

    def start(self, total: int) -> None:
        self._started = self._last = self._clock()
        self._total = total

    def grow(self, total: int) -> None:
        self._total = total

    def advance(self, read: int) -> None:
        now = self._clock()
        if now - self._last < self._every_s:
            return
        self._last = now
        elapsed = now - self._started
        rate = read / elapsed if elapsed > 0 else 0.0
        log.info(
            "replay.progress",
            read=read,
            total=self._total,
            percent=round(100 * read / self._total, 1) if self._total else None,
            per_s=round(rate),
            elapsed_s=round(elapsed),
            remaining_s=round((self._total - read) / rate) if rate > 0 else None,
        )


def summary_lines(result: ReplayResult, paths: ReportPaths, seconds: float) -> list[str]:
    zone = parse_zone(result.timezone)
    c = result.counts
    rate = c.read / seconds if seconds > 0 else 0.0
    lines = [
        f"Replayed {c.read:,} records of {result.topic!r} "
        f"({show_time(result.start_ms, zone)} to {show_time(result.end_ms, zone)}; "
        f"{c.in_range:,} in the range, {c.warmup:,} warm-up) in {seconds:.1f} s "
        f"({rate:,.0f} records/s)."
    ]
    if c.reordered:
        lines.append(
            "Note: the record timestamps of partition(s) "
            f"{', '.join(str(p) for p in sorted(c.reordered))} go back in time (mentions sent "
            "out of time order), so they were read to their end to find every mention of the "
            "range."
        )
    for run in result.runs:
        storms = [e for e in episodes(run.alerts) if e.kind == "storm"]
        described = ", ".join(
            f"{result.brand_name(e.brand)} {show_time(e.first_alert_ms, zone)} "
            f"(peak {e.peak_severity})"
            for e in storms
            if e.first_alert_ms is not None
        )
        lines.append(
            f"{run.label} ({run.source}): {len(run.alerts)} alerts, {len(storms)} storms"
            + (f": {described}" if described else "")
        )
    lines += coverage_warnings(result)
    lines += layout_warnings(result)
    lines += uncounted_warnings(result)
    if len(result.runs) > 1:
        lines.append(comparison_sentence(build_context(result)))
    lines.append(f"Report: {paths.html}")
    lines.append(f"        {paths.markdown}")
    lines.append("        " + ", ".join(p.name for p in [*paths.csv, *paths.alerts]))
    return lines


@contextmanager
def report_directory(out: Path) -> Iterator[Path]:
    """``--out``, created and checked writable before any record is read (an unusable one was
    found only after the whole replay, in a traceback); removed again, when this made it and it
    is still empty, if what runs inside fails."""
    if out.exists() and not out.is_dir():
        raise OptionError("--out", f"{out} is a file, not a directory")
    missing = [d for d in (out, *out.parents) if not d.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".stormvarsel-replay-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OptionError("--out", f"cannot write the report in {out} ({reason})") from None
    try:
        yield out
    except BaseException:
        for made in missing:  # the deepest first
            try:
                made.rmdir()
            except OSError:
                break
        raise


def run_command(settings: Settings, options: CommandOptions) -> list[str]:
    """Replay, write the report, and return the summary to print."""
    parsed = replay_options(options)
    out = options.out or default_out(parsed.start_ms, parsed.end_ms)
    console = Console(stderr=True)
    progress: replay_run.Progress | None = None
    if not options.quiet:
        progress = RichProgress(console) if console.is_terminal else LogProgress()
    started = time.monotonic()
    with report_directory(out):
        with kafka_logs_quiet():
            if isinstance(progress, RichProgress):
                # Planning reads the range's offsets: seconds, or the whole timeout when Kafka
                # does not answer, which was a silent wait.
                brokers = ", ".join(settings.bootstrap_list)
                with console.status(
                    f"Planning the range on Kafka at {brokers} "
                    f"(gives up after {CONNECT_TIMEOUT_S:.0f} s without a broker)"
                ):
                    prepared = replay_run.prepare(settings, parsed)
            else:
                prepared = replay_run.prepare(settings, parsed)
            result = replay_run.run_prepared(prepared, progress=progress)
        try:
            paths = write_report(result, out)
        except OSError as exc:
            where = exc.filename or out
            reason = exc.strerror or type(exc).__name__
            raise ReplayError(
                f"the replay ran, but its report could not be written: {where}: {reason}"
            ) from None
    return summary_lines(result, paths, time.monotonic() - started)
