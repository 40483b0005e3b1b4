"""The post-mortem report of a replay: an HTML page, a Markdown summary and CSV files (pure).

``write_report(result, out_dir)`` writes, into ``out_dir``:

- ``report.html``: one self-contained page (inline CSS and SVG charts; no scripts, no external
  references) with, per brand, mentions and negative share against their baselines and the storm
  level over time, the timeline of every episode, its drivers and the suggested holding
  statements, and (with a second configuration) the side-by-side comparison;
- ``summary.md``: the same story without charts;
- ``volume.csv``, ``negative_share.csv``, ``storm_level.csv``: the numbers behind every chart
  (one row per brand and bin); ``timeline.csv`` (one row per episode and configuration);
  ``comparison.csv`` with a second configuration;
- ``alerts.jsonl`` (and ``candidate-alerts.jsonl``): the replayed alert records, one canonical
  JSON object a line, exactly as the live worker publishes them on ``alerts``.

Everything that came from mentions is escaped (:mod:`streams.replay.escape`). The parts:
:mod:`.report_context` (what they all read), :mod:`.report_csv`, :mod:`.report_html`,
:mod:`.report_markdown`, and :mod:`.report_wording` (what the page and the summary share).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from detectors.episodes import canonical_json
from streams.replay.report_context import build_context
from streams.replay.report_csv import write_chart_csvs, write_comparison_csv, write_timeline_csv
from streams.replay.report_html import render_html
from streams.replay.report_markdown import render_markdown
from streams.replay.result import ReplayResult


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`write_report` put each file."""

    directory: Path
    html: Path
    markdown: Path
    csv: list[Path]
    alerts: list[Path]

    def all(self) -> list[Path]:
        return [self.html, self.markdown, *self.csv, *self.alerts]


def write_report(result: ReplayResult, out_dir: Path) -> ReportPaths:
    """Write the report of ``result`` into ``out_dir`` (created if needed); return the paths.

    The files are written into a hidden directory inside ``out_dir`` first and moved into place
    only once every one is complete: a full disk or a Ctrl-C while writing left a report of
    this replay's CSV files beside an earlier replay's page, or truncated files, in a directory
    that held a complete report before."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".stormvarsel-replay-"))
    try:
        staged = _write_files(result, staging)
        for path in staged.all():  # renames within one directory: no copying, no partial file
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if len(result.runs) == 1:  # an earlier report with --config in the same directory
        for stale in ("comparison.csv", "candidate-alerts.jsonl"):
            (out_dir / stale).unlink(missing_ok=True)
    return ReportPaths(
        out_dir,
        out_dir / staged.html.name,
        out_dir / staged.markdown.name,
        [out_dir / p.name for p in staged.csv],
        [out_dir / p.name for p in staged.alerts],
    )


def _write_files(result: ReplayResult, out_dir: Path) -> ReportPaths:
    ctx = build_context(result)
    csv_paths = write_chart_csvs(ctx, out_dir)
    csv_paths.append(write_timeline_csv(ctx, out_dir / "timeline.csv"))
    if len(result.runs) > 1:
        csv_paths.append(write_comparison_csv(ctx, out_dir / "comparison.csv"))
    alert_paths = []
    for i, run in enumerate(result.runs):
        path = out_dir / ("alerts.jsonl" if i == 0 else "candidate-alerts.jsonl")
        path.write_text("".join(canonical_json(a) + "\n" for a in run.alerts), encoding="utf-8")
        alert_paths.append(path)
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(ctx, csv_paths, alert_paths), encoding="utf-8")
    md_path = out_dir / "summary.md"
    md_path.write_text(render_markdown(ctx, csv_paths, alert_paths), encoding="utf-8")
    return ReportPaths(out_dir, html_path, md_path, csv_paths, alert_paths)
