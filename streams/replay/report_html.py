"""The report's self-contained HTML page (inline CSS and SVG charts, no scripts)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from streams.replay import charts
from streams.replay.charts import fmt
from streams.replay.escape import h
from streams.replay.report_context import (
    POST_CHARS,
    TOP_HASHTAGS,
    TOP_POSTS,
    TOP_TERMS,
    ReportContext,
)
from streams.replay.report_wording import (
    comparison_sentence,
    counts_rows,
    coverage_warnings,
    layout_warnings,
    setup_rows,
    summary_header,
    summary_rows,
    timeline_items,
    uncounted_warnings,
    verdict_text,
)
from streams.replay.timeline import EpisodeTimeline
from streams.replay.times import parse_zone, show_duration

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


def render_html(ctx: ReportContext, csv_paths: list[Path], alert_paths: list[Path]) -> str:
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
        _table(["", ""], [(h(k), h(v)) for k, v in setup_rows(ctx)], "meta"),
        *(f'<p class="warning">{h(text)}</p>' for text in coverage_warnings(r)),
        *(f'<p class="warning">{h(text)}</p>' for text in layout_warnings(r)),
        '<h2 id="summary">Summary</h2>',
        _summary_html(ctx),
    ]
    if len(r.runs) > 1:
        out.append(_comparison_html(ctx))
    for brand in ctx.brands:
        out.append(_brand_html(ctx, brand, zone))
    out.append('<h2 id="records">Where the records went</h2>')
    out += [f'<p class="warning">{h(text)}</p>' for text in uncounted_warnings(r)]
    out.append(_table(["", "records"], [(h(k), h(v)) for k, v in counts_rows(r)]))
    files = [*csv_paths, *alert_paths]
    links = ", ".join(f'<a href="{h(p.name)}">{h(p.name)}</a>' for p in files)
    out.append(f'<p class="note">The numbers behind every chart and table: {links}.</p>')
    out.append("</body></html>\n")
    return "\n".join(out)


def _summary_html(ctx: ReportContext) -> str:
    header = [h(c) for c in summary_header(ctx)]
    rows = summary_rows(ctx, h)
    for row, brand in zip(rows, ctx.brands, strict=True):
        row[0] = f'<a href="#{h(_anchor(brand))}">{row[0]}</a>'
    return _table(header, rows)


def _comparison_html(ctx: ReportContext) -> str:
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
                h(verdict_text(p)),
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


def _brand_html(ctx: ReportContext, brand: str, zone: Any) -> str:
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


def _episode_html(ctx: ReportContext, e: EpisodeTimeline, *, with_details: bool) -> str:
    kind = "Storm" if e.kind == "storm" else "Buzz (a positive or neutral burst; never paged)"
    time_to_alert = (
        f"; first alert {show_duration(e.time_to_alert_ms)} after the first abnormal bucket"
        if e.time_to_alert_ms is not None
        else ""
    )
    out = [
        f"<h4>{h(kind)}: {h(ctx.zone_time(e.first_abnormal_ms))}, peak {h(e.peak_severity)}"
        f"{h(time_to_alert)}</h4>",
        _table(["when", "what"], [(h(w), h(t)) for w, t in timeline_items(ctx, e)]),
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
