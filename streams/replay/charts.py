"""The report's charts: binned series (the same numbers go to the CSV files) and inline SVG.

A chart is data first (:class:`Chart`): bin start times and named series of numbers, rounded
once. The SVG is drawn from those numbers and carries them in ``data-values``; the CSV files are
written from the very same objects, so a chart and its CSV cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from detectors.states import LEVELS
from streams.replay.escape import h
from streams.replay.result import BucketPoint, ReplayResult, RunResult
from streams.replay.times import DAY_MS, HOUR_MS, MINUTE_MS

#: Most bins a chart shows; longer ranges use coarser bins.
MAX_BINS = 480
_BIN_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
DIGITS = 4

WIDTH, HEIGHT = 760, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


def choose_bin_ms(span_ms: int, unit_ms: int) -> int:
    """The finest bin, a whole number of ``unit_ms``, that covers ``span_ms`` in MAX_BINS bins.

    ``unit_ms`` is a common multiple of the runs' bucket sizes, so that bins on the epoch grid
    hold whole buckets. A round bin (1, 2, 5 … minutes) is preferred; a bucket size no round
    bin is a multiple of (7 minutes) gets multiples of itself.
    """
    unit_ms = max(1, unit_ms)
    fallback = unit_ms * max(1, math.ceil(span_ms / MAX_BINS / unit_ms))
    for minutes in _BIN_MINUTES:
        bin_ms = minutes * MINUTE_MS
        if bin_ms % unit_ms == 0 and math.ceil(span_ms / bin_ms) <= MAX_BINS:
            return bin_ms if bin_ms <= 2 * fallback else fallback
    return fallback


def merge_cell_ms(min_span_ms: int, max_span_ms: int, unit_ms: int) -> int:
    """The coarsest cell (on the epoch grid) that every bin :func:`choose_bin_ms` can choose
    for a span in ``[min_span_ms, max_span_ms]`` is a whole number of: their greatest common
    divisor. Buckets merged into such cells chart exactly as the buckets themselves.

    The bin is a step function of the span: it changes only just past ``MAX_BINS`` times a
    round bin, or times a multiple of ``unit_ms`` (the fallback), so those points and the
    bounds are all the spans to try. As the replay goes on the smallest possible span grows,
    the possible bins are fewer and the cell is a multiple of the one before it.
    """
    unit_ms = max(1, unit_ms)
    low, high = max(1, min_span_ms), max(1, min_span_ms, max_span_ms)
    spans = {low, high}
    steps = [minutes * MINUTE_MS * MAX_BINS for minutes in _BIN_MINUTES]
    step = unit_ms * MAX_BINS
    steps.extend(k * step for k in range(max(1, low // step), high // step + 1))
    spans.update(edge + 1 for edge in steps if low <= edge < high)
    return math.gcd(*(choose_bin_ms(span, unit_ms) for span in spans))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


@dataclass(frozen=True)
class Series:
    key: str  # CSV column and data-series name, e.g. "volume", "expected_volume"
    label: str  # legend text
    values: list[float | None]
    css: str  # "s0" .. "s3": colour and dash


@dataclass(frozen=True)
class Chart:
    id: str  # unique in the page: "<brand>-<kind>"
    kind: str  # "volume", "negative_share" or "storm_level"
    brand: str
    title: str
    csv: str  # the CSV file holding these numbers
    starts: list[int]  # bin start times (epoch ms); the first may be cut short (see Bins)
    ends: list[int]  # bin end times (epoch ms)
    bin_ms: int
    series: list[Series]
    y_max: float
    step: bool = False  # draw as steps (levels) rather than lines
    markers: tuple[tuple[int, str, str], ...] = ()  # (time, css, label): alerts


@dataclass(frozen=True)
class Bins:
    """Chart bins on the epoch grid of ``bin_ms`` (as buckets are on that of their size): a
    bucket lies wholly in one bin. The first bin begins at the range start, cut short when that
    is not on the grid, so a bin's start and end always cover the buckets it shows."""

    start_ms: int  # the range start: where the first bin begins
    bin_ms: int
    count: int

    @property
    def grid_ms(self) -> int:
        """The grid line at or before the range start: where the first bin would begin."""
        return self.start_ms - self.start_ms % self.bin_ms

    @property
    def end_ms(self) -> int:
        return self.grid_ms + self.count * self.bin_ms

    def index(self, at_ms: int) -> int | None:
        if at_ms < self.start_ms:
            return None
        i = (at_ms - self.grid_ms) // self.bin_ms
        return i if i < self.count else None

    @property
    def starts(self) -> list[int]:
        return [self.start_ms] + [self.grid_ms + i * self.bin_ms for i in range(1, self.count)]

    @property
    def ends(self) -> list[int]:
        return [self.grid_ms + (i + 1) * self.bin_ms for i in range(self.count)]


def bins_for(result: ReplayResult) -> Bins:
    """One bin grid for every chart of the report: from the range start to the last bucket."""
    ends = [p.end_ms for run in result.runs for pts in run.buckets.values() for p in pts]
    stop = max(ends) if ends else result.end_ms
    span = max(1, stop - result.start_ms)
    unit = math.lcm(*(max(1, run.bucket_ms) for run in result.runs)) if result.runs else 1
    bin_ms = choose_bin_ms(span, unit)
    grid = result.start_ms - result.start_ms % bin_ms
    return Bins(result.start_ms, bin_ms, max(1, math.ceil((stop - grid) / bin_ms)))


def _group(points: Sequence[BucketPoint], bins: Bins) -> list[list[BucketPoint]]:
    grouped: list[list[BucketPoint]] = [[] for _ in range(bins.count)]
    for point in points:
        i = bins.index(point.start_ms)
        if i is not None:
            grouped[i].append(point)
    return grouped


def volume_values(points: Sequence[BucketPoint], bins: Bins) -> tuple[list, list]:
    """Per bin: mentions, and the expected (baseline) mentions; None where no bucket closed."""
    volume: list[float | None] = []
    expected: list[float | None] = []
    for group in _group(points, bins):
        volume.append(float(sum(p.volume for p in group)) if group else None)
        expected.append(_round(sum(p.expected_volume for p in group)) if group else None)
    return volume, expected


def share_values(points: Sequence[BucketPoint], bins: Bins) -> tuple[list, list, list, list]:
    """Per bin: negatives, mentions, negative share (None without mentions), usual share."""
    negative: list[float | None] = []
    volume: list[float | None] = []
    share: list[float | None] = []
    baseline: list[float | None] = []
    for group in _group(points, bins):
        if not group:
            negative.append(None)
            volume.append(None)
            share.append(None)
            baseline.append(None)
            continue
        neg = sum(p.negative for p in group)
        vol = sum(p.volume for p in group)
        negative.append(float(neg))
        volume.append(float(vol))
        share.append(_round(neg / vol) if vol else None)
        usual = sum(p.negative_share_baseline * p.buckets for p in group)
        baseline.append(_round(usual / sum(p.buckets for p in group)))
    return negative, volume, share, baseline


def level_values(points: Sequence[BucketPoint], bins: Bins) -> list[float | None]:
    """Per bin: the highest storm level (0 normal .. 3 critical) of its buckets."""
    return [
        float(max(p.storm_level for p in group)) if group else None
        for group in _group(points, bins)
    ]


def _run_suffix(index: int) -> str:
    return "" if index == 0 else "_candidate"


def brand_charts(result: ReplayResult, brand: str, bins: Bins) -> list[Chart]:
    """Volume against baseline, negative share against baseline, storm level: one brand."""
    name = result.brand_name(brand)
    runs = result.runs
    base = runs[0].buckets.get(brand, [])
    volume, expected = volume_values(base, bins)
    series = [
        Series("volume", "mentions", volume, "s0"),
        Series("expected_volume", f"expected ({runs[0].label})", expected, "s1"),
    ]
    for i, run in enumerate(runs[1:], start=1):
        _, other = volume_values(run.buckets.get(brand, []), bins)
        series.append(
            Series(f"expected_volume{_run_suffix(i)}", f"expected ({run.label})", other, "s2")
        )
    charts = [
        Chart(
            id=f"{brand}-volume",
            kind="volume",
            brand=brand,
            title=f"{name}: mentions against the baseline",
            csv="volume.csv",
            starts=bins.starts,
            ends=bins.ends,
            bin_ms=bins.bin_ms,
            series=series,
            y_max=_nice_max(series),
        )
    ]
    _negative, _vol, share, baseline = share_values(base, bins)
    share_series = [
        Series("negative_share", "negative share", share, "s0"),
        Series("baseline_share", f"usual share ({runs[0].label})", baseline, "s1"),
    ]
    for i, run in enumerate(runs[1:], start=1):
        other = share_values(run.buckets.get(brand, []), bins)[3]
        share_series.append(
            Series(f"baseline_share{_run_suffix(i)}", f"usual share ({run.label})", other, "s2")
        )
    charts.append(
        Chart(
            id=f"{brand}-negative_share",
            kind="negative_share",
            brand=brand,
            title=f"{name}: negative share against the usual share",
            csv="negative_share.csv",
            starts=bins.starts,
            ends=bins.ends,
            bin_ms=bins.bin_ms,
            series=share_series,
            y_max=1.0,
        )
    )
    level_series = []
    markers: list[tuple[int, str, str]] = []
    for i, run in enumerate(runs):
        css = "s0" if i == 0 else "s3"
        level_series.append(
            Series(
                f"storm_level{_run_suffix(i)}",
                f"storm level ({run.label})",
                level_values(run.buckets.get(brand, []), bins),
                css,
            )
        )
        markers.extend(_alert_markers(run, brand, css))
    charts.append(
        Chart(
            id=f"{brand}-storm_level",
            kind="storm_level",
            brand=brand,
            title=f"{name}: storm level",
            csv="storm_level.csv",
            starts=bins.starts,
            ends=bins.ends,
            bin_ms=bins.bin_ms,
            series=level_series,
            y_max=float(len(LEVELS) - 1),
            step=True,
            markers=tuple(markers),
        )
    )
    return charts


def _alert_markers(run: RunResult, brand: str, css: str) -> list[tuple[int, str, str]]:
    return [
        (int(a["changed_at_ms"]), css, f"{a['change']} {a['severity']} ({run.label})")
        for a in run.alerts
        if a.get("brand") == brand and a.get("kind") == "storm"
    ]


def _nice_max(series: Sequence[Series]) -> float:
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    if top <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if top <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


# --- SVG ---------------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    """A number as the CSV files and ``data-values`` write it ("" for none)."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{DIGITS}f}".rstrip("0").rstrip(".")


def y_of(value: float, y_max: float) -> float:
    plot = HEIGHT - TOP - BOTTOM
    return round(TOP + plot - min(value, y_max) / y_max * plot, 2)


def x_of(at_ms: float, chart: Chart) -> float:
    """Where a time falls on the chart's axis (the first bin's start to the last bin's end)."""
    first = chart.starts[0] if chart.starts else 0
    last = chart.ends[-1] if chart.ends else first + chart.bin_ms
    plot = WIDTH - LEFT - RIGHT
    return round(LEFT + (at_ms - first) / max(1, last - first) * plot, 2)


Segment = list[tuple[float, float]]


def _segments(chart: Chart, values: list[float | None]) -> list[tuple[Segment, bool]]:
    """The polylines of a series, each with whether it is a lone value (no value in the bins
    beside it): a line chart draws it across its bin, as a step chart does, since a polyline
    of one point has no length and is not drawn (a quiet brand's negative share, with empty
    bins between its posts, looked empty)."""
    segments: list[tuple[Segment, bool]] = []
    current: Segment = []
    span: tuple[float, float] = (0.0, 0.0)

    def close() -> None:
        if len(current) == 1 and not chart.step:
            y = current[0][1]
            segments.append(([(span[0], y), (span[1], y)], True))
        elif current:
            segments.append((current, False))

    for value, start, end in zip(values, chart.starts, chart.ends, strict=True):
        if value is None:
            close()
            current = []
            continue
        y = y_of(value, chart.y_max)
        span = (x_of(start, chart), x_of(end, chart))
        if chart.step:
            current += [(span[0], y), (span[1], y)]
        else:
            current.append((x_of((start + end) / 2, chart), y))
    close()
    return segments


#: At most this many time axis labels (more would overlap on the chart's width).
MAX_TICKS = 8
_HOUR_STEPS = (1, 2, 3, 6, 12)
_DAY_STEPS = (1, 2, 7)  # 7: Mondays
_MONTH_STEPS = (1, 3, 6, 12)  # 3: quarters, 12: New Year
_MONTH_MS = 30.44 * DAY_MS


def _local(ms: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, zone)


def _at(moment: datetime, zone: tzinfo, hour: int = 0) -> int | None:
    """``moment`` as epoch ms; None when a clock change skipped it (02:00 in spring in Europe:
    that moment is another hour, which its label would misname)."""
    at_ms = int(moment.timestamp() * 1000)
    return at_ms if _local(at_ms, zone).hour == hour else None


def _hour_ticks(start_ms: int, end_ms: int, zone: tzinfo, hours: int, day_format: str) -> list:
    ticks: list[tuple[int, str]] = []
    day = _local(start_ms, zone).date()
    last = _local(end_ms - 1, zone).date()
    while day <= last:
        for hour in range(0, 24, hours):
            moment = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
            at_ms = _at(moment, zone, hour)
            if at_ms is not None and start_ms <= at_ms < end_ms:
                ticks.append((at_ms, moment.strftime(day_format if hour == 0 else "%H:%M")))
        day += timedelta(days=1)
    return ticks


def _day_ticks(start_ms: int, end_ms: int, zone: tzinfo, days: int, day_format: str) -> list:
    ticks: list[tuple[int, str]] = []
    day = _local(start_ms, zone).date()
    last = _local(end_ms - 1, zone).date()
    while day <= last:
        wanted = day.weekday() == 0 if days == 7 else day.toordinal() % days == 0
        if wanted:
            moment = datetime(day.year, day.month, day.day, tzinfo=zone)
            at_ms = _at(moment, zone)
            if at_ms is not None and start_ms <= at_ms < end_ms:
                ticks.append((at_ms, moment.strftime(day_format)))
        day += timedelta(days=1)
    return ticks


def _month_ticks(start_ms: int, end_ms: int, zone: tzinfo, months: int) -> list:
    """The first of every ``months``-th month (quarters start in January, April, July and
    October); from a year on, New Year of every ``months // 12``-th year."""
    first, last = _local(start_ms, zone), _local(end_ms - 1, zone)
    if months < 12:
        wanted = [
            (year, month)
            for year in range(first.year, last.year + 1)
            for month in range(1, 13, months)
        ]
    else:
        every = months // 12
        wanted = [(year, 1) for year in range(first.year, last.year + 1) if year % every == 0]
    ticks: list[tuple[int, str]] = []
    for year, month in wanted:
        moment = datetime(year, month, 1, tzinfo=zone)
        at_ms = _at(moment, zone)
        if at_ms is not None and start_ms <= at_ms < end_ms:
            ticks.append((at_ms, moment.strftime("%Y" if months >= 12 else "%Y-%m")))
    return ticks


def time_ticks(start_ms: int, end_ms: int, zone: tzinfo) -> list[tuple[int, str]]:
    """At most MAX_TICKS time axis labels on round local times: hours, midnights, Mondays, the
    first of a month, quarter or year, the step chosen from the span. Dates carry the year when
    the range crosses one."""
    span = max(1, end_ms - start_ms)
    crosses_year = _local(start_ms, zone).year != _local(max(start_ms, end_ms - 1), zone).year
    day_format = "%Y-%m-%d" if crosses_year else "%m-%d"
    ticks: list[tuple[int, str]] = []
    for hours in _HOUR_STEPS:
        if span / (hours * HOUR_MS) <= MAX_TICKS + 1:
            ticks = _hour_ticks(start_ms, end_ms, zone, hours, day_format)
            if len(ticks) <= MAX_TICKS:
                return ticks
    for days in _DAY_STEPS:
        if span / (days * DAY_MS) <= MAX_TICKS + 1:
            ticks = _day_ticks(start_ms, end_ms, zone, days, day_format)
            if len(ticks) <= MAX_TICKS:
                return ticks
    years = max(1, math.ceil(span / (MAX_TICKS * 12 * _MONTH_MS)))
    nice_years = next((n for n in (1, 2, 5, 10, 20, 50, 100) if n >= years), years)
    for months in (*_MONTH_STEPS[:-1], 12 * nice_years):
        if span / (months * _MONTH_MS) <= MAX_TICKS + 1:
            ticks = _month_ticks(start_ms, end_ms, zone, months)
            if len(ticks) <= MAX_TICKS:
                return ticks
    return ticks


def render_svg(chart: Chart, zone: tzinfo) -> str:
    """The chart as inline SVG (no scripts, no external references)."""
    parts = [
        f'<svg class="chart" id="chart-{h(chart.id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{h(chart.title)}" data-csv="{h(chart.csv)}" '
        f'data-brand="{h(chart.brand)}" data-kind="{h(chart.kind)}" '
        f'data-y-max="{fmt(chart.y_max)}" data-bin-minutes="{chart.bin_ms // MINUTE_MS}">'
    ]
    bottom = HEIGHT - BOTTOM
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>'
    )
    if chart.kind == "storm_level":
        ticks = [(float(i), LEVELS[i]) for i in range(len(LEVELS))]
    elif chart.kind == "negative_share":
        ticks = [(0.0, "0%"), (0.5, "50%"), (1.0, "100%")]
    else:
        ticks = [
            (0.0, "0"),
            (chart.y_max / 2, fmt(chart.y_max / 2)),
            (chart.y_max, fmt(chart.y_max)),
        ]
    for value, label in ticks:
        y = y_of(value, chart.y_max)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>'
            f'<text class="tick" x="{LEFT - 4}" y="{y + 3}" text-anchor="end">{h(label)}</text>'
        )
    first = chart.starts[0] if chart.starts else 0
    last = chart.ends[-1] if chart.ends else first + chart.bin_ms
    for at_ms, label in time_ticks(first, last, zone):
        x = x_of(at_ms, chart)
        parts.append(
            f'<line class="grid" x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}"/>'
            f'<text class="tick" x="{x}" y="{bottom + 16}" text-anchor="middle">{h(label)}</text>'
        )
    for at_ms, css, label in chart.markers:
        x = x_of(at_ms, chart)
        if LEFT <= x <= WIDTH - RIGHT:
            parts.append(
                f'<line class="marker {css}" x1="{x}" y1="{TOP}" x2="{x}" y2="{bottom}">'
                f"<title>{h(label)}</title></line>"
            )
    for series in chart.series:
        values = ",".join(fmt(v) for v in series.values)
        parts.append(
            f'<g class="series {series.css}" data-series="{h(series.key)}" '
            f'data-values="{values}"><title>{h(series.label)}</title>'
        )
        for segment, lone in _segments(chart, series.values):
            points = " ".join(f"{x},{y}" for x, y in segment)
            css = ' class="lone"' if lone else ""
            parts.append(f'<polyline{css} points="{points}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def legend_html(chart: Chart) -> str:
    items = "".join(f'<span class="key {s.css}"><i></i>{h(s.label)}</span>' for s in chart.series)
    return f'<div class="legend">{items}</div>'
