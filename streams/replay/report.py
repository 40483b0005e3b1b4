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

Everything that came from mentions is escaped (:mod:`streams.replay.escape`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectors.episodes import canonical_json
from streams.replay import charts
from streams.replay.charts import Bins, Chart, fmt
from streams.replay.compare import Pair, pair_episodes, summarise
from streams.replay.escape import h, md
from streams.replay.result import ReplayResult
from streams.replay.timeline import EpisodeTimeline, episodes
from streams.replay.times import MINUTE_MS, iso_utc, parse_zone, show_duration, show_time

TOP_TERMS = 10
TOP_HASHTAGS = 5
TOP_POSTS = 5
POST_CHARS = 280


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


@dataclass
class _Context:
    result: ReplayResult
    bins: Bins
    brands: list[str]
    charts: dict[str, list[Chart]]
    timelines: list[list[EpisodeTimeline]]  # per run
    pairs: list[Pair]

    def zone_time(self, ms: int | None) -> str:
        if ms is None:
            return "—"
        return show_time(ms, parse_zone(self.result.timezone))

    def episodes_of(self, run: int, brand: str) -> list[EpisodeTimeline]:
        return [e for e in self.timelines[run] if e.brand == brand]

    @property
    def only_candidate(self) -> set[str]:
        """Alert ids of the candidate's episodes the live configuration did not have."""
        return {p.candidate.alert_id for p in self.pairs if p.live is None and p.candidate}

    @property
    def open_until_ms(self) -> int:
        return self.bins.start_ms + self.bins.count * self.bins.bin_ms


def build_context(result: ReplayResult) -> _Context:
    bins = charts.bins_for(result)
    brands = sorted(result.brands(), key=lambda b: (result.brand_name(b).lower(), b))
    timelines = [episodes(run.alerts) for run in result.runs]
    open_until = bins.start_ms + bins.count * bins.bin_ms
    pairs = pair_episodes(timelines[0], timelines[1], open_until) if len(result.runs) > 1 else []
    return _Context(
        result=result,
        bins=bins,
        brands=brands,
        charts={b: charts.brand_charts(result, b, bins) for b in brands},
        timelines=timelines,
        pairs=pairs,
    )


def write_report(result: ReplayResult, out_dir: Path) -> ReportPaths:
    """Write the report of ``result`` into ``out_dir`` (created if needed); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(result)
    csv_paths = _write_chart_csvs(ctx, out_dir)
    csv_paths.append(_write_timeline_csv(ctx, out_dir / "timeline.csv"))
    if len(result.runs) > 1:
        csv_paths.append(_write_comparison_csv(ctx, out_dir / "comparison.csv"))
    if len(result.runs) == 1:  # an earlier report with --config in the same directory
        for stale in ("comparison.csv", "candidate-alerts.jsonl"):
            (out_dir / stale).unlink(missing_ok=True)
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


# --- CSV ---------------------------------------------------------------------------------------


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_chart_csvs(ctx: _Context, out_dir: Path) -> list[Path]:
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
            for i, start in enumerate(chart.starts):
                row = [chart.brand, iso_utc(start), iso_utc(start + chart.bin_ms)]
                row += [fmt(values[k][i]) if k in values else "" for k in keys]
                rows.append(row)
        paths.append(_write_csv(out_dir / name, ["brand", "bin_start", "bin_end", *keys], rows))
    return paths


def _minutes(ms: int | None) -> str:
    return "" if ms is None else fmt(round(ms / MINUTE_MS, 2))


def _iso(ms: int | None) -> str:
    return "" if ms is None else iso_utc(ms)


def _write_timeline_csv(ctx: _Context, path: Path) -> Path:
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


def _write_comparison_csv(ctx: _Context, path: Path) -> Path:
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


# --- shared wording ----------------------------------------------------------------------------


def _change_text(change: str, severity: str) -> str:
    return {
        "opened": f"alert opened ({severity})",
        "escalated": f"escalated to {severity}",
        "de-escalated": f"de-escalated to {severity}",
        "resolved": "resolved",
        "abandoned": "no longer followed (detector reset)",
    }.get(change, f"{change} ({severity})")


def _verdict_text(p: Pair) -> str:
    delta = p.first_alert_delta_ms
    if p.verdict == "only candidate":
        return (
            "only the candidate alerts: an extra alert (a storm the live configuration missed, "
            "or a false alarm)"
        )
    if p.verdict == "only live":
        return "only the live configuration alerts: the candidate would have missed it"
    if p.verdict == "both before the range":
        return "both alert (both began before the range: no time to compare)"
    if delta is None:
        first = "live configuration" if p.verdict == "later" else "candidate"
        return (
            f"candidate alerts {p.verdict}: the {first}'s episode began before the range, the "
            "other's inside it"
        )
    if delta == 0:
        return "both alert at the same time"
    return f"candidate alerts {show_duration(abs(delta))} {'earlier' if delta < 0 else 'later'}"


def comparison_sentence(ctx: _Context) -> str:
    """One paragraph answering "would the candidate have paged us earlier, or falsely?"."""
    v = summarise(ctx.pairs, "storm")
    candidate = ctx.result.runs[1].label
    parts = [
        f"Storms both configurations alerted: {v.both} "
        f"({v.earlier} earlier, {v.later} later, {v.same} at the same time with the {candidate}"
        + (
            f", {v.before_range} already alerted by both when the range began"
            if v.before_range
            else ""
        )
        + ")"
    ]
    if v.median_delta_ms is not None:
        direction = "earlier" if v.median_delta_ms < 0 else "later"
        parts.append(
            f"median {show_duration(abs(round(v.median_delta_ms)))} {direction}"
            if v.median_delta_ms
            else "median difference 0 min"
        )
    parts.append(f"storms only the {candidate} alerts (extra, possibly false): {v.only_candidate}")
    parts.append(f"storms the {candidate} would have missed: {v.only_live}")
    return "; ".join(parts) + "."


#: Above this share of detected mentions in no bucket, the report warns.
UNCOUNTED_WARN_SHARE = 0.01


def uncounted_warnings(result: ReplayResult) -> list[str]:
    """A sentence for each run with a sizeable share of the range's mentions in no reported
    bucket: the charts and episodes then understate the range."""
    detected = result.counts.detected_in_range
    out = []
    for run in result.runs:
        missing = run.unreported
        if not detected or missing / detected < UNCOUNTED_WARN_SHARE:
            continue
        which = f"{run.label}: " if len(result.runs) > 1 else ""
        reasons = []
        if run.late:
            reasons.append(
                f"{run.late:,} arrived after their bucket had closed (the input was out of "
                "time order by more than the allowed lateness, "
                f"{show_duration(result.lateness_ms)})"
            )
        if run.unclosed:
            reasons.append(
                f"{run.unclosed:,} are in the last buckets, which no later record closed "
                "(replay with a later --to to see them)"
            )
        if run.cut:
            reasons.append(
                f"{run.cut:,} are in the bucket that --from cuts, which began before the range "
                "(start on a bucket boundary to see them)"
            )
        out.append(
            f"Warning: {which}{missing:,} of the {detected:,} mentions of the range detected "
            f"({missing / detected:.1%}) are in no bucket, so the charts and episodes "
            f"understate the range: {'; '.join(reasons)}."
        )
    return out


def _counts_rows(result: ReplayResult) -> list[tuple[str, str]]:
    c = result.counts
    rows = [
        ("records read", f"{c.read:,}"),
        ("in the range", f"{c.in_range:,}"),
        ("read for warm-up only (before the range)", f"{c.warmup:,}"),
        ("just after the range (closing its last buckets only)", f"{c.after:,}"),
        ("outside the range (skipped)", f"{c.outside:,}"),
    ]
    if result.stage == "mentions":
        rows += [
            ("passed validation (per brand)", f"{c.passed:,}"),
            ("duplicates dropped", f"{c.duplicates:,}"),
            ("naming no configured brand", f"{c.unmatched:,}"),
        ]
    for reason, n in sorted(c.dead_letters.items()):
        rows.append((f"dead-lettered: {reason}", f"{n:,}"))
    if result.stage != "scored":
        rows.append(("scored", f"{c.scored:,}"))
    if c.other_brands:
        rows.append(("other brands (watermark only, not scored)", f"{c.other_brands:,}"))
    if c.unreadable:
        rows.append(("scored records the detectors could not read", f"{c.unreadable:,}"))
    if c.copies:
        rows.append(("copies of mentions already counted (dropped)", f"{c.copies:,}"))
    rows.append(("mentions detected", f"{c.detected:,}"))
    if c.detected_warmup:
        rows.append(
            ("of them dated in the warm-up (teaching the detectors only)", f"{c.detected_warmup:,}")
        )
    if c.detected_after:
        rows.append(("of them dated after the range (not reported)", f"{c.detected_after:,}"))
    rows.append(("of them dated in the range", f"{c.detected_in_range:,}"))
    # What the charts show plus these rows is the range's mentions: nothing in between.
    for run in result.runs:
        which = f" ({run.label})" if len(result.runs) > 1 else ""
        charted = sum(p.volume for points in run.buckets.values() for p in points)
        rows.append((f"of the range's, in the charts' buckets{which}", f"{charted:,}"))
        for what, count in (
            ("counted late (their bucket had closed), in no bucket", run.late),
            ("in buckets still open at the end, in no bucket", run.unclosed),
            ("in the bucket --from cuts (not reported)", run.cut),
        ):
            if count:
                rows.append((f"of the range's, {what}{which}", f"{count:,}"))
    if c.reordered:
        rows.append(
            (
                "partitions out of time order (read to their end)",
                ", ".join(str(p) for p in sorted(c.reordered)),
            )
        )
    return rows


def _setup_rows(ctx: _Context) -> list[tuple[str, str]]:
    r = ctx.result
    stage = {
        "mentions": "validation, scoring and detection re-run",
        "valid": "scoring and detection re-run",
        "scored": "detection re-run on the live scores",
    }[r.stage]
    rows = [
        ("topic", r.topic),
        ("replayed", stage),
        ("range", f"{ctx.zone_time(r.start_ms)} to {ctx.zone_time(r.end_ms)} (end excluded)"),
        (
            "warm-up",
            "none"
            if r.warmup_start_ms >= r.start_ms
            else f"from {ctx.zone_time(r.warmup_start_ms)} (teaches the detectors, not reported)",
        ),
        ("brands", ", ".join(r.brand_name(b) for b in r.selected_brands) or "all"),
        ("detector groups", f"{r.partitions} (partitions of mentions.scored, as live)"),
        ("allowed lateness", show_duration(r.lateness_ms)),
        ("chart bins", show_duration(ctx.bins.bin_ms)),
    ]
    if r.scorer:
        rows.append(("sentiment model", r.scorer))
    for run in r.runs:
        rows.append((f"configuration: {run.label}", run.source))
    return rows


# --- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
color:#1d2733;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #d5dbe3;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-bottom:.3rem}table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d5dbe3;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f5f8}.meta td:first-child{color:#5a6878}
svg.chart{width:100%;height:auto;background:#fbfcfd;border:1px solid #e3e8ee}
svg .axis{stroke:#5a6878;stroke-width:1}svg .grid{stroke:#e3e8ee;stroke-width:1}
svg .tick{font-size:10px;fill:#5a6878}svg polyline{fill:none;stroke-width:1.6}
svg .s0 polyline{stroke:#c2410c}svg .s1 polyline{stroke:#2563eb;stroke-dasharray:5 3}
svg .s2 polyline{stroke:#16a34a;stroke-dasharray:2 2}
svg .s3 polyline{stroke:#7c3aed;stroke-dasharray:6 2}
svg .marker{stroke-width:1;stroke-dasharray:1 3}svg .marker.s0{stroke:#c2410c}
svg .marker.s3{stroke:#7c3aed}.legend{font-size:.8rem;color:#5a6878;margin:.2rem 0 1rem}
.legend .key{margin-right:1rem}.legend i{display:inline-block;width:1.4rem;height:0;
border-top:2px solid;vertical-align:middle;margin-right:.3rem}.legend .s0 i{border-color:#c2410c}
.legend .s1 i{border-color:#2563eb;border-top-style:dashed}.legend .s2 i{border-color:#16a34a;
border-top-style:dotted}.legend .s3 i{border-color:#7c3aed;border-top-style:dashed}
.statement{border-left:3px solid #2563eb;background:#f5f8fc;padding:.4rem .7rem;margin:.4rem 0}
.statement .label{font-size:.8rem;color:#5a6878}.post{font-size:.9rem}.note{color:#5a6878}
.warning{color:#8a3b00;font-weight:600}
.answer{background:#fff8e6;border:1px solid #f0d48a;padding:.6rem .8rem}
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{c}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _anchor(brand: str) -> str:
    return "brand-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in brand)


def render_html(ctx: _Context, csv_paths: list[Path], alert_paths: list[Path]) -> str:
    r = ctx.result
    zone = parse_zone(r.timezone)
    title = "Post-mortem replay: " + (
        ", ".join(r.brand_name(b) for b in ctx.brands) if len(ctx.brands) <= 4 else "all brands"
    )
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{h(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{h(title)}</h1>",
        f'<p class="note">{h(ctx.zone_time(r.start_ms))} to {h(ctx.zone_time(r.end_ms))}. '
        "Times are event times (when the posts were written), in "
        f"{h(r.timezone)}.</p>",
        _table(["", ""], [(h(k), h(v)) for k, v in _setup_rows(ctx)], "meta"),
        '<h2 id="summary">Summary</h2>',
        _summary_html(ctx),
    ]
    if len(r.runs) > 1:
        out.append(_comparison_html(ctx))
    for brand in ctx.brands:
        out.append(_brand_html(ctx, brand, zone))
    out.append('<h2 id="records">Where the records went</h2>')
    out += [f'<p class="warning">{h(text)}</p>' for text in uncounted_warnings(r)]
    out.append(_table(["", "records"], [(h(k), h(v)) for k, v in _counts_rows(r)]))
    files = [*csv_paths, *alert_paths]
    links = ", ".join(f'<a href="{h(p.name)}">{h(p.name)}</a>' for p in files)
    out.append(f'<p class="note">The numbers behind every chart and table: {links}.</p>')
    out.append("</body></html>\n")
    return "\n".join(out)


def _summary_rows(ctx: _Context, escape: Any) -> list[list[str]]:
    rows = []
    for brand in ctx.brands:
        row = [escape(ctx.result.brand_name(brand))]
        points = ctx.result.runs[0].buckets.get(brand, [])
        row.append(f"{sum(p.volume for p in points):,}")
        for i in range(len(ctx.result.runs)):
            storms = [e for e in ctx.episodes_of(i, brand) if e.kind == "storm"]
            firsts = [e.first_alert_ms for e in storms if e.first_alert_ms is not None]
            peak = max(
                (e.peak_severity for e in storms),
                key=lambda s: {"watch": 1, "warning": 2, "critical": 3}.get(s, 0),
                default="—",
            )
            row += [
                str(len(storms)),
                escape(ctx.zone_time(min(firsts))) if firsts else "—",
                escape(peak),
            ]
        rows.append(row)
    return rows


def _summary_header(ctx: _Context) -> list[str]:
    header = ["brand", "mentions"]
    for run in ctx.result.runs:
        header += [f"storms ({run.label})", "first alert", "peak"]
    return header


def _summary_html(ctx: _Context) -> str:
    header = [h(c) for c in _summary_header(ctx)]
    rows = _summary_rows(ctx, h)
    for row, brand in zip(rows, ctx.brands, strict=True):
        row[0] = f'<a href="#{h(_anchor(brand))}">{row[0]}</a>'
    return _table(header, rows)


def _comparison_html(ctx: _Context) -> str:
    r = ctx.result
    out = [
        '<h2 id="comparison">Live configuration and candidate, side by side</h2>',
        f'<p class="answer">{h(comparison_sentence(ctx))}</p>',
        f'<p class="note">Candidate: {h(r.runs[1].source)}. An episode of one configuration is '
        "the same incident as one of the other when they overlap in time (same brand and kind)."
        "</p>",
    ]
    rows = []
    for p in ctx.pairs:
        rows.append(
            [
                h(r.brand_name(p.brand)),
                h(p.kind),
                h(ctx.zone_time(p.live.first_alert_ms)) if p.live else "—",
                h(p.live.peak_severity) if p.live else "—",
                h(ctx.zone_time(p.candidate.first_alert_ms)) if p.candidate else "—",
                h(p.candidate.peak_severity) if p.candidate else "—",
                h(_verdict_text(p)),
            ]
        )
    header = [
        "brand",
        "kind",
        "live: first alert",
        "live: peak",
        "candidate: first alert",
        "candidate: peak",
        "verdict",
    ]
    out.append(_table([h(c) for c in header], rows) if rows else "<p>No episodes in either.</p>")
    return "\n".join(out)


def _brand_html(ctx: _Context, brand: str, zone: Any) -> str:
    r = ctx.result
    out = [f'<h2 id="{h(_anchor(brand))}">{h(r.brand_name(brand))}</h2>']
    for chart in ctx.charts[brand]:
        out.append(f"<h3>{h(chart.title)}</h3>")
        out.append(charts.render_svg(chart, zone))
        out.append(charts.legend_html(chart))
    for i, run in enumerate(r.runs):
        found = ctx.episodes_of(i, brand)
        label = f" ({run.label})" if len(r.runs) > 1 else ""
        out.append(f"<h3>Timeline{h(label)}</h3>")
        if not found:
            out.append("<p>No storm or buzz episode in the range.</p>")
            continue
        for episode in found:
            # The candidate's own episodes get their drivers too: real storm or false alarm?
            details = i == 0 or episode.alert_id in ctx.only_candidate
            out.append(_episode_html(ctx, episode, with_details=details))
    return "\n".join(out)


def _timeline_items(ctx: _Context, e: EpisodeTimeline) -> list[tuple[str, str]]:
    """(when, what) lines of an episode's timeline, in time order (plain text)."""
    items: list[tuple[float, str, str]] = [
        (e.first_abnormal_ms, ctx.zone_time(e.first_abnormal_ms), "first abnormal bucket")
    ]
    if e.began_before_range:
        items.append((e.first_abnormal_ms, "", "alerted before the range began"))
    for change in e.changes:
        what = _change_text(change.change, change.severity)
        if change.change == "opened":
            after = show_duration(change.at_ms - e.first_abnormal_ms)
            what += f", {after} after the first abnormal bucket"
        items.append((change.at_ms, ctx.zone_time(change.at_ms), what))
    if e.peak_ms is not None:
        items.append((e.peak_ms, ctx.zone_time(e.peak_ms), f"peak ({e.peak_severity})"))
    if e.end_ms is None:
        items.append((math.inf, "", "still open at the end of the replayed data"))
    items.sort(key=lambda item: item[0])  # stable: equal times keep the order above
    return [(when, what) for _, when, what in items]


def _episode_html(ctx: _Context, e: EpisodeTimeline, *, with_details: bool) -> str:
    kind = "Storm" if e.kind == "storm" else "Buzz (a positive or neutral burst; never paged)"
    time_to_alert = (
        f"; first alert {show_duration(e.time_to_alert_ms)} after the first abnormal bucket"
        if e.time_to_alert_ms is not None
        else ""
    )
    out = [
        f"<h4>{h(kind)}: {h(ctx.zone_time(e.first_abnormal_ms))}, peak {h(e.peak_severity)}"
        f"{h(time_to_alert)}</h4>",
        _table(["when", "what"], [(h(w), h(t)) for w, t in _timeline_items(ctx, e)]),
    ]
    if not with_details:
        return "\n".join(out)
    out.append(_drivers_html(e.drivers))
    if e.statements:
        out.append("<p><strong>Holding statements suggested</strong></p>")
        for s in e.statements:
            out.append(
                '<div class="statement">'
                f'<div class="label">{h(s.lang)}, {h(s.severity)}, first suggested '
                f"{h(ctx.zone_time(s.at_ms))}. {h(s.label)}</div>{h(s.text)}</div>"
            )
    return "\n".join(out)


def _drivers_html(drivers: dict[str, Any]) -> str:
    terms = [t for t in drivers.get("terms") or []][:TOP_TERMS]
    tags = [t for t in drivers.get("hashtags") or []][:TOP_HASHTAGS]
    posts = [p for p in drivers.get("top_posts") or []][:TOP_POSTS]
    out = ["<p><strong>Drivers</strong></p>"]
    if terms:
        out.append(
            "<p>Terms: "
            + ", ".join(f"{h(t.get('term'))} ({h(fmt(t.get('count')))})" for t in terms)
            + "</p>"
        )
    if tags:
        out.append("<p>Hashtags: " + ", ".join(h(t.get("term")) for t in tags) + "</p>")
    mix = drivers.get("languages") or {}
    if mix:
        out.append(
            "<p>Languages: "
            + ", ".join(f"{h(k)} {round(float(v) * 100)}%" for k, v in mix.items())
            + "</p>"
        )
    if posts:
        rows = [
            (
                h(p.get("platform")),
                h(fmt(p.get("reach"))),
                h(p.get("sentiment")),
                f'<span class="post">{h(p.get("text"), POST_CHARS)}</span>'
                + (f'<br><span class="note">{h(p.get("url"))}</span>' if p.get("url") else ""),
            )
            for p in posts
        ]
        out.append(_table(["platform", "reach", "sentiment", "top post"], rows))
    if len(out) == 1:
        out.append("<p>None recorded.</p>")
    return "\n".join(out)


# --- Markdown ----------------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table of already-escaped cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(ctx: _Context, csv_paths: list[Path], alert_paths: list[Path]) -> str:
    r = ctx.result
    lines = [
        "# Post-mortem replay",
        "",
        f"{md(ctx.zone_time(r.start_ms))} to {md(ctx.zone_time(r.end_ms))} (event times, "
        f"{md(r.timezone)}). Charts: [report.html](report.html).",
        "",
    ]
    lines += _md_table(["setting", "value"], [(md(k), md(v)) for k, v in _setup_rows(ctx)])
    lines += ["## Summary", ""]
    lines += _md_table([md(c) for c in _summary_header(ctx)], _summary_rows(ctx, md))
    if len(r.runs) > 1:
        lines += ["## Live configuration and candidate", "", md(comparison_sentence(ctx)), ""]
        rows = [
            (
                md(r.brand_name(p.brand)),
                md(p.kind),
                md(ctx.zone_time(p.live.first_alert_ms)) if p.live else "—",
                md(ctx.zone_time(p.candidate.first_alert_ms)) if p.candidate else "—",
                md(_verdict_text(p)),
            )
            for p in ctx.pairs
        ]
        lines += _md_table(
            ["brand", "kind", "live: first alert", "candidate: first alert", "verdict"], rows
        )
    for brand in ctx.brands:
        lines += [f"## {md(r.brand_name(brand))}", ""]
        found = ctx.episodes_of(0, brand)
        if not found:
            lines += ["No storm or buzz episode in the range.", ""]
        for e in found:
            lines += _episode_md(ctx, e)
    lines += ["## Where the records went", ""]
    for text in uncounted_warnings(r):
        lines += [f"**{md(text)}**", ""]
    lines += _md_table(["", "records"], [(md(k), md(v)) for k, v in _counts_rows(r)])
    files = ", ".join(f"[{md(p.name)}]({p.name})" for p in [*csv_paths, *alert_paths])
    lines += [f"Numbers behind the charts and tables: {files}.", ""]
    return "\n".join(lines)


def _episode_md(ctx: _Context, e: EpisodeTimeline) -> list[str]:
    kind = "Storm" if e.kind == "storm" else "Buzz (never paged)"
    lines = [
        f"### {kind}: {md(ctx.zone_time(e.first_abnormal_ms))}, peak {md(e.peak_severity)}",
        "",
    ]
    if e.time_to_alert_ms is not None:
        lines += [
            f"Time from the first abnormal bucket to the first alert: "
            f"**{md(show_duration(e.time_to_alert_ms))}**.",
            "",
        ]
    lines += _md_table(
        ["when", "what"], [(md(w) or " ", md(t)) for w, t in _timeline_items(ctx, e)]
    )
    terms = [t for t in e.drivers.get("terms") or []][:TOP_TERMS]
    if terms:
        lines += [
            "Drivers: "
            + ", ".join(f"{md(t.get('term'))} ({md(fmt(t.get('count')))})" for t in terms),
            "",
        ]
    tags = [t for t in e.drivers.get("hashtags") or []][:TOP_HASHTAGS]
    if tags:
        lines += ["Hashtags: " + ", ".join(md(t.get("term")) for t in tags), ""]
    posts = [p for p in e.drivers.get("top_posts") or []][:TOP_POSTS]
    if posts:
        lines += ["Top posts:", ""]
        lines += [
            f"- {md(p.get('platform'))}, reach {md(fmt(p.get('reach')))}: "
            f"{md(p.get('text'), POST_CHARS)}"
            for p in posts
        ]
        lines.append("")
    if e.statements:
        lines += ["Holding statements suggested:", ""]
        for s in e.statements:
            lines += [f"> **{md(s.lang)}, {md(s.severity)}** ({md(s.label)}): {md(s.text)}", ""]
    return lines
