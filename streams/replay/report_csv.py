"""The report's CSV files: the numbers behind every chart, the timeline and the comparison."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from streams.replay.charts import Chart, fmt
from streams.replay.report_context import ReportContext
from streams.replay.times import MINUTE_MS, iso_utc


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_chart_csvs(ctx: ReportContext, out_dir: Path) -> list[Path]:
    """One CSV per chart kind; its rows for a brand are that brand's chart, value for value."""
    by_file: dict[str, list[Chart]] = {}
    for brand in ctx.brands:
        for chart in ctx.charts[brand]:
            by_file.setdefault(chart.csv, []).append(chart)
    paths = []
    for name, group in by_file.items():
        keys: list[str] = []
        for chart in group:
            keys.extend(s.key for s in chart.series if s.key not in keys)
        rows = []
        for chart in group:
            values = {s.key: s.values for s in chart.series}
            for i, (start, end) in enumerate(zip(chart.starts, chart.ends, strict=True)):
                row = [chart.brand, iso_utc(start), iso_utc(end)]
                row += [fmt(values[k][i]) if k in values else "" for k in keys]
                rows.append(row)
        paths.append(_write_csv(out_dir / name, ["brand", "bin_start", "bin_end", *keys], rows))
    return paths


def _minutes(ms: int | None) -> str:
    return "" if ms is None else fmt(round(ms / MINUTE_MS, 2))


def _iso(ms: int | None) -> str:
    return "" if ms is None else iso_utc(ms)


def write_timeline_csv(ctx: ReportContext, path: Path) -> Path:
    header = [
        "configuration",
        "brand",
        "kind",
        "alert_id",
        "first_abnormal",
        "first_alert",
        "minutes_to_first_alert",
        "first_critical",
        "peak",
        "peak_severity",
        "resolved",
        "alerts",
        "began_before_range",
    ]
    rows = []
    for run, timeline in zip(ctx.result.runs, ctx.timelines, strict=True):
        for e in timeline:
            rows.append(
                [
                    run.label,
                    e.brand,
                    e.kind,
                    e.alert_id,
                    _iso(e.first_abnormal_ms),
                    _iso(e.first_alert_ms),
                    _minutes(e.time_to_alert_ms),
                    _iso(e.first_at("critical")),
                    _iso(e.peak_ms),
                    e.peak_severity,
                    _iso(e.end_ms),
                    len(e.changes),
                    "yes" if e.began_before_range else "no",
                ]
            )
    return _write_csv(path, header, rows)


def write_comparison_csv(ctx: ReportContext, path: Path) -> Path:
    header = [
        "brand",
        "kind",
        "verdict",
        "minutes_candidate_minus_live",
        "live_alert_id",
        "live_first_alert",
        "live_peak_severity",
        "candidate_alert_id",
        "candidate_first_alert",
        "candidate_peak_severity",
    ]
    rows = []
    for p in ctx.pairs:
        rows.append(
            [
                p.brand,
                p.kind,
                p.verdict,
                _minutes(p.first_alert_delta_ms),
                p.live.alert_id if p.live else "",
                _iso(p.live.first_alert_ms) if p.live else "",
                p.live.peak_severity if p.live else "",
                p.candidate.alert_id if p.candidate else "",
                _iso(p.candidate.first_alert_ms) if p.candidate else "",
                p.candidate.peak_severity if p.candidate else "",
            ]
        )
    return _write_csv(path, header, rows)
