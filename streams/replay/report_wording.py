"""Sentences and table rows that the HTML page and the Markdown summary share."""

from __future__ import annotations

import math
from typing import Any

from streams.replay.compare import Pair, summarise
from streams.replay.report_context import ReportContext
from streams.replay.result import ReplayResult
from streams.replay.timeline import EpisodeTimeline
from streams.replay.times import HOUR_MS, parse_zone, show_duration, show_time


def change_text(change: str, severity: str) -> str:
    return {
        "opened": f"alert opened ({severity})",
        "escalated": f"escalated to {severity}",
        "de-escalated": f"de-escalated to {severity}",
        "resolved": "resolved",
        "abandoned": "no longer followed (detector reset)",
    }.get(change, f"{change} ({severity})")


def verdict_text(p: Pair) -> str:
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


def comparison_sentence(ctx: ReportContext) -> str:
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


def counts_rows(result: ReplayResult) -> list[tuple[str, str]]:
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


def detector_groups(result: ReplayResult) -> str:
    """How many detector groups (shared watermarks) the replay kept, and whence that number."""
    if result.partitions_fallback:
        return (
            f"{result.partitions} (STORMVARSEL_TOPIC_PARTITIONS; "
            f"{result.partitions_topic} not found)"
        )
    return f"{result.partitions} (partitions of {result.partitions_topic}, as live)"


def layout_warnings(result: ReplayResult) -> list[str]:
    """A sentence when the live partition layout could not be read (the replay guessed it)."""
    if not result.partitions_fallback:
        return []
    return [
        f"Note: {result.partitions_topic} was not found, so the replay kept "
        f"{result.partitions} detector group(s) as STORMVARSEL_TOPIC_PARTITIONS says; if the "
        "live worker's mentions.scored had another partition count, brands shared other "
        "watermarks live, and late counts, buckets and alerts can differ from live."
    ]


#: A stretch this long without any record at the start of the warm-up or the range, or at the
#: end of the range, is taken for history the topic does not hold, and the report says so.
COVERAGE_GAP_MS = HOUR_MS


def coverage_warnings(result: ReplayResult) -> list[str]:
    """Sentences for a range (or warm-up) that reaches past the topic's history: the charts
    then begin or end where the records do, and an empty stretch looks like a quiet brand, or a
    short warm-up like a full one. Only what the records read prove: the start when the topic
    holds nothing older than them, the end when nothing read is dated later."""
    c = result.counts
    if c.first_ms is None or c.last_ms is None:
        return []
    zone = parse_zone(result.timezone)
    out = []
    asked = min(result.warmup_start_ms, result.start_ms)
    if result.from_first_record and c.first_ms - asked >= COVERAGE_GAP_MS:
        if c.first_ms < result.start_ms:
            out.append(
                f"Note: the topic's oldest record is dated {show_time(c.first_ms, zone)}, "
                f"{show_duration(c.first_ms - asked)} after the warm-up was to begin "
                f"({show_time(asked, zone)}): the detectors learnt from "
                f"{show_duration(result.start_ms - c.first_ms)} of history, not "
                f"{show_duration(result.start_ms - asked)}; as live if they started with the "
                "topic, else (older history deleted) they may alert less than live did."
            )
        else:
            cold = (
                "; the warm-up held no record, so the detectors began cold"
                if asked < result.start_ms
                else ""
            )
            out.append(
                f"Note: the topic's oldest record is dated {show_time(c.first_ms, zone)}, "
                f"{show_duration(c.first_ms - result.start_ms)} after --from: the charts' "
                f"zeros before it are history the topic does not hold, not a quiet time{cold}."
            )
    if result.end_ms - c.last_ms >= COVERAGE_GAP_MS:
        out.append(
            f"Note: the topic's newest record is dated {show_time(c.last_ms, zone)}, "
            f"{show_duration(result.end_ms - c.last_ms)} before --to "
            f"({show_time(result.end_ms, zone)}): the charts end there; the rest of the range "
            "is history the topic does not hold (yet), not a quiet time."
        )
    return out


def setup_rows(ctx: ReportContext) -> list[tuple[str, str]]:
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
        ("detector groups", detector_groups(r)),
        ("allowed lateness", show_duration(r.lateness_ms)),
        ("chart bins", show_duration(ctx.bins.bin_ms)),
    ]
    if r.scorer:
        rows.append(("sentiment model", r.scorer))
    for run in r.runs:
        rows.append((f"configuration: {run.label}", run.source))
    return rows


def summary_rows(ctx: ReportContext, escape: Any) -> list[list[str]]:
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


def summary_header(ctx: ReportContext) -> list[str]:
    header = ["brand", "mentions"]
    for run in ctx.result.runs:
        header += [f"storms ({run.label})", "first alert", "peak"]
    return header


def timeline_items(ctx: ReportContext, e: EpisodeTimeline) -> list[tuple[str, str]]:
    """(when, what) lines of an episode's timeline, in time order (plain text)."""
    items: list[tuple[float, str, str]] = [
        (e.first_abnormal_ms, ctx.zone_time(e.first_abnormal_ms), "first abnormal bucket")
    ]
    if e.began_before_range:
        items.append((e.first_abnormal_ms, "", "alerted before the range began"))
    for change in e.changes:
        what = change_text(change.change, change.severity)
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
