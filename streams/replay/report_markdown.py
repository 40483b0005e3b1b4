"""The report's Markdown summary: the HTML page's story without charts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from streams.replay.charts import fmt
from streams.replay.escape import md
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
from streams.replay.times import show_duration


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table of already-escaped cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(ctx: ReportContext, csv_paths: list[Path], alert_paths: list[Path]) -> str:
    r = ctx.result
    lines = [
        "# Post-mortem replay",
        "",
        f"{md(ctx.zone_time(r.start_ms))} to {md(ctx.zone_time(r.end_ms))} (event times, "
        f"{md(r.timezone)}). Charts: [report.html](report.html).",
        "",
    ]
    lines += _md_table(["setting", "value"], [(md(k), md(v)) for k, v in setup_rows(ctx)])
    for text in [*coverage_warnings(r), *layout_warnings(r)]:
        lines += [f"**{md(text)}**", ""]
    lines += ["## Summary", ""]
    lines += _md_table([md(c) for c in summary_header(ctx)], summary_rows(ctx, md))
    if len(r.runs) > 1:
        lines += ["## Live configuration and candidate", "", md(comparison_sentence(ctx)), ""]
        rows = [
            (
                md(r.brand_name(p.brand)),
                md(p.kind),
                md(ctx.zone_time(p.live.first_alert_ms)) if p.live else "—",
                md(ctx.zone_time(p.candidate.first_alert_ms)) if p.candidate else "—",
                md(verdict_text(p)),
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
    lines += _md_table(["", "records"], [(md(k), md(v)) for k, v in counts_rows(r)])
    files = ", ".join(f"[{md(p.name)}]({p.name})" for p in [*csv_paths, *alert_paths])
    lines += [f"Numbers behind the charts and tables: {files}.", ""]
    return "\n".join(lines)


def _episode_md(ctx: ReportContext, e: EpisodeTimeline) -> list[str]:
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
    lines += _md_table(["when", "what"], [(md(w) or " ", md(t)) for w, t in timeline_items(ctx, e)])
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
