"""The end-of-run summary the CLI prints."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from streams.ingest.report import IngestReport, ReasonGroup
from streams.settings import ENV_PREFIX
from streams.topic_limit import RECORD_BATCH_OVERHEAD, TOO_LARGE_FOR_TOPIC


def _groups(groups: Mapping[str, ReasonGroup]) -> list[str]:
    width = max((len(reason) for reason in groups), default=0)
    ordered = sorted(groups.items(), key=lambda item: (-item[1].count, item[0]))
    return [
        f"  {reason:<{width}} {group.count:>6,}  {group.describe()}" for reason, group in ordered
    ]


def _days(ms: int) -> str:
    return f"{timedelta(milliseconds=ms).total_seconds() / 86400:.1f} d"


def summary_lines(report: IngestReport, *, allow_rejects: bool = False) -> list[str]:
    """The end-of-run summary, one string per line."""
    lines: list[str] = []
    if report.interrupted:
        lines.append("interrupted (Ctrl-C): stopped reading; the records sent so far were flushed")
    lines.append(f"read     {report.read:>8,} {plural(report.read)} from {report.source}")
    lines.append(f"sent     {report.sent:>8,} to topic {report.topic} (acknowledged, acks=all)")
    lines.append(f"rejected {report.rejected_count:>8,} locally (not sent)")
    lines.extend(_groups(report.rejected))
    if TOO_LARGE_FOR_TOPIC in report.rejected and report.record_limit is not None:
        limit = report.record_limit
        lines.append(
            f"  ({TOO_LARGE_FOR_TOPIC}: over the {limit.max_bytes:,}-byte limit, "
            f"{limit.setting}, with {RECORD_BATCH_OVERHEAD} bytes for the record batch; "
            "Kafka would refuse them)"
        )
    if report.failed:
        lines.append(f"failed   {report.failed_count:>8,} sends (Kafka did not acknowledge them)")
        lines.extend(_groups(report.failed))
    lines.append(f"took     {report.duration_s:>8.2f} s, {report.rate:,.0f} records/s sent")
    if report.rejects_write_error is not None:
        lost = report.rejects_not_kept
        lines.append(
            f"error: --rejects {report.rejects_file}: cannot write ({report.rejects_write_error}); "
            f"{lost:,} refused {plural(lost)} not kept there (see the line numbers above)"
        )
    elif report.rejects_file is not None and (report.rejected or report.failed):
        lines.append(f"rejects  written to {report.rejects_file}")
    if report.older_than_retention and report.retention_ms is not None:
        count = report.older_than_retention
        lines.append(
            f"warning: the event times of {count:,} {plural(count)} are older than the topic's "
            f"retention.ms ({_days(report.retention_ms)}); Kafka may delete them at its next "
            "retention check"
        )
    lines.extend(_time_order_lines(report))
    if report.failed:
        # The code the process exits with (130 after Ctrl-C, which wins over failed sends).
        code = report.exit_code(allow_rejects=allow_rejects)
        count = report.failed_count
        said = f"{count:,} {plural(count)} not acknowledged by Kafka (see above)"
        lines.append(f"exit {code}: {said}")
    elif report.rejects_write_error is not None and not report.interrupted:
        lines.append("exit 1: the rejects file is incomplete")
    elif report.rejected and not allow_rejects and not report.interrupted:
        count = report.rejected_count
        hint = "" if report.rejects_file else "--rejects FILE keeps them, "
        lines.append(
            f"exit 1: {count:,} {plural(count)} rejected locally and not sent "
            f"({hint}--allow-rejects exits 0)"
        )
    return lines


def _duration(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _time_order_lines(report: IngestReport) -> list[str]:
    if not report.went_back or report.lateness_ms is None:
        return []
    count = report.went_back
    return [
        f"warning: the input goes back in time: {count:,} {plural(count)} (the first on line "
        f"{report.went_back_first_line}) are more than {_duration(report.lateness_ms)} "
        f"({ENV_PREFIX}DETECT_LATENESS_S) older than a record sent before them, up to "
        f"{_duration(report.went_back_max_ms)}; the detect stage counts such mentions late and "
        "raises no alert from them: send the input with --sort"
    ]


def plural(count: int) -> str:
    return "record" if count == 1 else "records"
