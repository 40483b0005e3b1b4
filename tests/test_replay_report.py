"""The post-mortem report, pure: escaping, chart numbers against the CSV files, timelines and
the side-by-side comparison (no Kafka)."""

from __future__ import annotations

import csv
import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from detectors.config import DetectorConfig
from streams.replay.charts import HEIGHT, choose_bin_ms, time_ticks, y_of
from streams.replay.compare import pair_episodes, summarise
from streams.replay.escape import md
from streams.replay.report import write_report
from streams.replay.result import BucketPoint, ReplayResult, RunResult
from streams.replay.timeline import episodes
from streams.replay.times import (
    HOUR_MS,
    TimeFormatError,
    parse_duration,
    parse_time,
    parse_zone,
    show_duration,
)

T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000

HOSTILE = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "[click me](javascript:alert(1))",
    "![pixel](https://tracker.example/p.gif)",
    "line one\n# Owned heading\n| fake | table |",
    "`code` *bold* _it_ ~~gone~~ \u202eevil",
    "<a href=https://phish.example>win</a>",
]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def alert(
    change: str,
    at: int,
    severity: str,
    *,
    brand: str = "acme",
    kind: str = "storm",
    first_abnormal: int = 0,
    start: int = 5,
    peak: int | None = None,
    peak_severity: str | None = None,
    end: int | None = None,
    hostile: bool = False,
    alert_id: str | None = None,
) -> dict[str, Any]:
    """An alert record (the fields the report reads); times in minutes after T0."""
    text = " ".join(HOSTILE) if hostile else "delayed refund again"
    return {
        "schema": "stormvarsel.alert/1",
        "alert_id": alert_id or f"{brand}-{kind}-{start}",
        "brand": brand,
        "brand_name": HOSTILE[0] if hostile else brand.title(),
        "kind": kind,
        "change": change,
        "status": "resolved" if change == "resolved" else "firing",
        "severity": severity,
        "peak_severity": peak_severity or severity,
        "changed_at": iso(T0 + at * MIN),
        "changed_at_ms": T0 + at * MIN,
        "start": iso(T0 + start * MIN),
        "start_ms": T0 + start * MIN,
        "first_abnormal": iso(T0 + first_abnormal * MIN),
        "peak": iso(T0 + (peak if peak is not None else at) * MIN),
        "peak_ms": T0 + (peak if peak is not None else at) * MIN,
        "end": iso(T0 + end * MIN) if end is not None else None,
        "end_ms": T0 + end * MIN if end is not None else None,
        "figures": {},
        "peak_figures": {},
        "escalations": [],
        "drivers": {
            "terms": [{"term": t, "lang": "en", "score": 4.0, "count": 12.0} for t in HOSTILE]
            if hostile
            else [{"term": "delayed refund", "lang": "en", "score": 4.0, "count": 12.0}],
            "hashtags": [{"term": "#" + HOSTILE[1], "lang": "en", "score": 2.0, "count": 3.0}]
            if hostile
            else [],
            "top_posts": [
                {
                    "id": "1",
                    "url": 'https://x.example/1" onmouseover="alert(1)',
                    "platform": "x",
                    "lang": "en",
                    "reach": 5000,
                    "engagement": 3,
                    "sentiment": "negative",
                    "text": text,
                }
            ],
            "languages": {"en": 1.0},
            "platforms": {"x": 1.0},
        },
        "actions": ["Acknowledge publicly"],
        "statements": []
        if change == "resolved" or kind != "storm"
        else [
            {
                "lang": "en",
                "tone": "neutral",
                "severity": severity,
                "text": (HOSTILE[2] + " " + HOSTILE[0]) if hostile else f"We know ({severity}).",
                "issue": "x",
                "issue_named": True,
                "next_update": "within an hour",
                "contact": "a direct message",
                "source": "built-in",
                "label": "DRAFT: a person must approve this before it is posted",
                "draft": True,
            }
        ],
        "oncall": {"team": "comms", "escalation": None},
    }


def points(brand: str, minutes: int, storm_at: int | None = None) -> list[BucketPoint]:
    out = []
    for m in range(minutes):
        stormy = storm_at is not None and storm_at <= m < storm_at + 30
        out.append(
            BucketPoint(
                start_ms=T0 + m * MIN,
                end_ms=T0 + (m + 1) * MIN,
                volume=40 if stormy else 3 + m % 4,
                negative=30 if stormy else m % 2,
                expected_volume=4.0 + (m % 7) / 10,
                negative_share_baseline=0.2 + (m % 5) / 100,
                storm_level=3 if stormy else 0,
                buzz_level=0,
            )
        )
    return out


def result_with(
    alerts: list[dict[str, Any]],
    candidate: list[dict[str, Any]] | None = None,
    brands: tuple[str, ...] = ("acme",),
    minutes: int = 180,
) -> ReplayResult:
    runs = [
        RunResult(
            "live configuration",
            DetectorConfig(),
            "defaults",
            alerts,
            {b: points(b, minutes, storm_at=5) for b in brands},
        )
    ]
    if candidate is not None:
        runs.append(
            RunResult(
                "candidate",
                DetectorConfig(),
                "candidate.yaml",
                candidate,
                {b: points(b, minutes, storm_at=2) for b in brands},
            )
        )
    return ReplayResult(
        topic="mentions",
        stage="mentions",
        start_ms=T0,
        end_ms=T0 + minutes * MIN,
        warmup_start_ms=T0,
        runs=runs,
        brand_names={b: b.title() for b in brands},
    )


# --- escaping ----------------------------------------------------------------------------------

REPORT_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "p", "table",
    "thead", "tbody", "tr", "th", "td", "a", "div", "span", "i", "br", "strong", "svg", "line",
    "text", "g", "polyline",
}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def test_hostile_text_never_reaches_the_html_or_markdown_unescaped(tmp_path: Path) -> None:
    alerts = [
        alert("opened", 10, "warning", hostile=True),
        alert("escalated", 20, "critical", hostile=True),
        alert("resolved", 170, "critical", end=170, hostile=True),
    ]
    result = result_with(alerts)
    result.brand_names["acme"] = HOSTILE[1]
    result.topic = HOSTILE[0]
    paths = write_report(result, tmp_path)
    page = paths.html.read_text(encoding="utf-8")
    # Nothing active: parsed as a browser would, the page holds only the elements and
    # attributes the report writes, none of those the payloads tried to create.
    tags = _tags(page)
    names = {tag for tag, _ in tags}
    assert names <= REPORT_TAGS, names - REPORT_TAGS
    attributes = {name for _, attrs in tags for name, _ in attrs}
    assert not {a for a in attributes if a.startswith("on")}, attributes
    assert "\u202e" not in page
    # Escaped, but there: the post-mortem still shows what people wrote.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "[click me](javascript:alert(1))" in page  # inert text in HTML
    # Self-contained: no external resource of any kind, links only to the report's own files.
    links = [v or "" for _, attrs in tags for name, v in attrs if name in ("href", "src")]
    assert links and all(v.startswith("#") or re.fullmatch(r"[\w.-]+", v) for v in links), links
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "@import" not in style and "url(" not in style

    summary = paths.markdown.read_text(encoding="utf-8")
    assert "<script" not in summary.lower() and "<img" not in summary.lower()
    # No link or image of a mention's making: every "](" and "![" is backslash-escaped, and
    # the only links are the report's own files.
    targets = re.findall(r"(?<!\\)\]\(([^)]*)\)", summary)
    assert targets and all(re.fullmatch(r"[\w.-]+", t) for t in targets), targets
    assert not re.search(r"(?<!\\)!\[", summary)
    assert "http://" not in summary and "https://" not in summary  # no bare autolinks either
    lines = summary.splitlines()
    assert not any(line.startswith("# Owned") for line in lines)
    assert not any(line.startswith("| fake") for line in lines)
    # Every table row keeps its column count: no "|" from a mention split a cell.
    for block in re.findall(r"((?:^\|.*\|$\n?)+)", summary, re.M):
        rows = [r for r in block.splitlines() if r]
        widths = {len(re.findall(r"(?<!\\)\|", r)) for r in rows}
        assert len(widths) == 1, rows


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_escape_leaves_no_markup(text: str) -> None:
    out = md(text)
    assert "\n" not in out and "<" not in out and ">" not in out
    assert not re.search(r"(?<!\\)[\[\]`*_|!~]", out)
    assert "\u202e" not in out


# --- charts and CSV ----------------------------------------------------------------------------


def _charts(page: str) -> list[dict[str, Any]]:
    found = []
    for svg in re.findall(r'<svg class="chart".*?</svg>', page, re.S):
        attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', svg.split(">", 1)[0]))
        series = {}
        for key, values, body in re.findall(
            r'<g class="series [^"]*" data-series="([^"]*)" data-values="([^"]*)">(.*?)</g>',
            svg,
            re.S,
        ):
            ys = []
            for lone, drawn in re.findall(r'<polyline( class="lone")? points="([^"]*)"/>', body):
                line = [float(p.split(",")[1]) for p in drawn.split()]
                ys += line[:1] if lone else line  # a lone value is drawn across its bin
            series[key] = (values.split(","), ys)
        found.append({**attrs, "series": series})
    return found


def test_every_chart_number_is_in_its_csv(tmp_path: Path) -> None:
    result = result_with(
        [alert("opened", 10, "critical"), alert("resolved", 150, "critical", end=150)],
        candidate=[alert("opened", 6, "warning", start=3)],
        brands=("acme", "bolt"),
    )
    paths = write_report(result, tmp_path)
    charts = _charts(paths.html.read_text(encoding="utf-8"))
    assert {(c["brand"], c["kind"]) for c in charts} == {
        (b, k) for b in ("acme", "bolt") for k in ("volume", "negative_share", "storm_level")
    }
    for chart in charts:
        with (tmp_path / chart["csv"]).open(encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if r["brand"] == chart["brand"]]
        assert rows and len(chart["series"]) >= 2
        for key, (values, ys) in chart["series"].items():
            assert [r[key] for r in rows] == values, (chart["kind"], key)
            # The drawn points sit where the numbers say (the step chart draws two per bin).
            numbers = [float(v) for v in values if v != ""]
            drawn = ys[::2] if chart["kind"] == "storm_level" else ys
            assert drawn == [y_of(v, float(chart["y-max"])) for v in numbers]
            assert all(0 <= y <= HEIGHT for y in ys)


@pytest.mark.parametrize("minutes", [180, 1])
def test_a_value_without_neighbours_is_drawn_across_its_bin(tmp_path: Path, minutes: int) -> None:
    """A polyline of one point has no length, and browsers draw nothing: a quiet brand's
    negative share (no share in a bin without mentions) and a range of one bucket looked
    empty."""
    sparse = [
        BucketPoint(
            T0 + m * MIN, T0 + (m + 1) * MIN, int(m % 3 == 0), int(m % 3 == 0), 0.3, 0.2, 0, 0
        )
        for m in range(minutes)
    ]
    result = ReplayResult(
        topic="m",
        stage="scored",
        start_ms=T0,
        end_ms=T0 + minutes * MIN,
        warmup_start_ms=T0,
        runs=[RunResult("live configuration", DetectorConfig(), "d", [], {"acme": sparse})],
    )
    page = write_report(result, tmp_path).html.read_text(encoding="utf-8")
    charts = {c["kind"]: c for c in _charts(page)}
    share = charts["negative_share"]["series"]["negative_share"][0]
    assert share == ["1", "", ""] * (minutes // 3) or (minutes == 1 and share == ["1"])
    for svg in re.findall(r'<svg class="chart".*?</svg>', page, re.S):
        lines = re.findall(r'<polyline(?: class="lone")? points="([^"]*)"/>', svg)
        assert lines
        for drawn in lines:
            xs = [float(p.split(",")[0]) for p in drawn.split()]
            assert max(xs) - min(xs) > 1, drawn  # a mark a reader can see


def test_chart_numbers_add_up_from_the_buckets(tmp_path: Path) -> None:
    result = result_with([], minutes=180)
    paths = write_report(result, tmp_path)
    with (tmp_path / "volume.csv").open(encoding="utf-8") as handle:
        volume = list(csv.DictReader(handle))
    with (tmp_path / "negative_share.csv").open(encoding="utf-8") as handle:
        share = list(csv.DictReader(handle))
    bucket_points = result.runs[0].buckets["acme"]
    assert sum(int(r["volume"]) for r in volume) == sum(p.volume for p in bucket_points)
    assert sum(float(r["expected_volume"]) for r in volume) == pytest.approx(
        sum(p.expected_volume for p in bucket_points), abs=0.01
    )
    bin_ms = choose_bin_ms(180 * MIN, MIN)
    first = [p for p in bucket_points if p.start_ms < T0 + bin_ms]
    assert float(share[0]["negative_share"]) == pytest.approx(
        sum(p.negative for p in first) / sum(p.volume for p in first), abs=1e-4
    )
    assert paths.csv[0].name == "volume.csv"


def test_bins_stay_few_and_no_finer_than_a_bucket() -> None:
    assert choose_bin_ms(180 * MIN, MIN) == MIN
    assert choose_bin_ms(9 * 24 * 60 * MIN, MIN) == 30 * MIN
    assert choose_bin_ms(60 * MIN, 5 * MIN) == 5 * MIN
    assert choose_bin_ms(400 * 24 * 60 * MIN, MIN) >= 400 * 24 * 60 * MIN // 480


# --- timelines and comparison ------------------------------------------------------------------


def test_timeline_of_an_episode() -> None:
    alerts = [
        alert("opened", 12, "watch", first_abnormal=4, start=11),
        alert("escalated", 20, "warning", first_abnormal=4, start=11),
        alert("escalated", 31, "critical", first_abnormal=4, start=11, peak=40),
        alert(
            "de-escalated",
            160,
            "warning",
            first_abnormal=4,
            start=11,
            peak=40,
            peak_severity="critical",
        ),
        alert(
            "resolved",
            290,
            "critical",
            first_abnormal=4,
            start=11,
            peak=40,
            peak_severity="critical",
            end=290,
        ),
        alert("opened", 300, "watch", brand="bolt", kind="buzz", first_abnormal=298, start=299),
    ]
    storm, buzz = episodes(alerts)
    assert (storm.brand, storm.kind, buzz.kind) == ("acme", "storm", "buzz")
    assert storm.first_abnormal_ms == T0 + 4 * MIN
    assert storm.first_alert_ms == T0 + 12 * MIN
    assert storm.time_to_alert_ms == 8 * MIN
    assert storm.first_at("warning") == T0 + 20 * MIN
    assert storm.first_at("critical") == T0 + 31 * MIN
    assert storm.peak_ms == T0 + 40 * MIN and storm.peak_severity == "critical"
    assert storm.end_ms == T0 + 290 * MIN and storm.resolved
    assert [c.change for c in storm.changes] == [
        "opened",
        "escalated",
        "escalated",
        "de-escalated",
        "resolved",
    ]
    # One draft per distinct text, with the severity it was first suggested at.
    assert [(s.severity, s.at_ms) for s in storm.statements] == [
        ("watch", T0 + 12 * MIN),
        ("warning", T0 + 20 * MIN),
        ("critical", T0 + 31 * MIN),
    ]
    assert buzz.end_ms is None and buzz.time_to_alert_ms == 2 * MIN


def test_an_episode_alerted_before_the_range_has_no_time_to_alert() -> None:
    (episode,) = episodes([alert("escalated", 20, "critical", first_abnormal=-30, start=-25)])
    assert episode.began_before_range
    assert episode.first_alert_ms is None and episode.time_to_alert_ms is None


def test_comparison_pairs_overlapping_episodes_and_counts_extra_and_missing() -> None:
    live = episodes(
        [
            alert("opened", 30, "warning", first_abnormal=20, start=29),
            alert("resolved", 200, "warning", first_abnormal=20, start=29, end=200),
            alert("opened", 500, "watch", first_abnormal=490, start=499),
            alert("resolved", 700, "watch", first_abnormal=490, start=499, end=700),
            alert("opened", 300, "watch", brand="bolt", first_abnormal=290, start=299),
        ]
    )
    candidate = episodes(
        [
            alert("opened", 18, "watch", first_abnormal=10, start=17),  # 12 min earlier
            alert("resolved", 210, "warning", first_abnormal=10, start=17, end=210),
            alert("opened", 900, "watch", first_abnormal=890, start=899),  # extra
            alert("opened", 310, "watch", brand="bolt", first_abnormal=295, start=309),
        ]
    )
    pairs = pair_episodes(live, candidate, open_until_ms=T0 + 1000 * MIN)
    verdicts = [(p.brand, p.verdict, p.first_alert_delta_ms) for p in pairs]
    assert verdicts == [
        ("acme", "earlier", -12 * MIN),
        ("acme", "only live", None),
        ("acme", "only candidate", None),
        ("bolt", "later", 10 * MIN),
    ]
    summary = summarise(pairs)
    assert (summary.both, summary.earlier, summary.later) == (2, 1, 1)
    assert (summary.only_candidate, summary.only_live) == (1, 1)
    assert summary.median_delta_ms == -1 * MIN


def test_an_episode_already_alerted_when_the_range_began_is_not_same_time() -> None:
    """Before: an unknown first alert counted as a delta of 0, "same time"."""
    live = episodes(
        [
            alert("escalated", 20, "critical", first_abnormal=-30, start=-25),  # before
            alert("escalated", 20, "critical", brand="bolt", first_abnormal=-30, start=-25),
        ]
    )
    candidate = episodes(
        [
            alert("opened", 40, "watch", first_abnormal=30, start=39),  # inside: later
            alert("escalated", 25, "warning", brand="bolt", first_abnormal=-20, start=-15),
        ]
    )
    pairs = pair_episodes(live, candidate, open_until_ms=T0 + 1000 * MIN)
    assert [(p.brand, p.verdict) for p in pairs] == [
        ("acme", "later"),
        ("bolt", "both before the range"),
    ]
    summary = summarise(pairs)
    assert (summary.same, summary.later, summary.before_range) == (0, 1, 1)
    assert summary.median_delta_ms is None


def test_the_report_answers_earlier_or_falsely(tmp_path: Path) -> None:
    live = [alert("opened", 30, "warning", first_abnormal=20, start=29)]
    candidate = [
        alert("opened", 18, "watch", first_abnormal=10, start=17),
        alert("opened", 150, "watch", first_abnormal=140, start=149, brand="acme"),
    ]
    paths = write_report(result_with(live, candidate), tmp_path)
    page = paths.html.read_text(encoding="utf-8")
    assert "1 earlier, 0 later" in page
    assert "storms only the candidate alerts (extra, possibly false): 1" in page
    assert "candidate alerts 12 min earlier" in page
    with (tmp_path / "comparison.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["verdict"], r["minutes_candidate_minus_live"]) for r in rows] == [
        ("earlier", "-12"),
        ("only candidate", ""),
    ]
    assert (tmp_path / "candidate-alerts.jsonl").read_text().count("\n") == 2


def test_timeline_csv_and_markdown_state_the_time_to_first_alert(tmp_path: Path) -> None:
    alerts = [
        alert("opened", 12, "watch", first_abnormal=4, start=11),
        alert("escalated", 31, "critical", first_abnormal=4, start=11),
        alert("resolved", 170, "critical", first_abnormal=4, start=11, end=170),
    ]
    paths = write_report(result_with(alerts), tmp_path)
    with (tmp_path / "timeline.csv").open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["minutes_to_first_alert"] == "8"
    assert row["first_critical"] == iso(T0 + 31 * MIN)[:19] + "Z"
    assert row["resolved"] == iso(T0 + 170 * MIN)[:19] + "Z"
    summary = paths.markdown.read_text(encoding="utf-8")
    assert "first abnormal bucket to the first alert: **8 min**" in summary


# --- command-line values -----------------------------------------------------------------------


def test_times_durations_and_zones() -> None:
    pacific = parse_zone("America/Los_Angeles")
    assert parse_time("2015-02-16", pacific) == int(
        datetime(2015, 2, 16, 8, tzinfo=UTC).timestamp() * 1000
    )
    assert parse_time("2015-02-22T12:00Z") == parse_time("2015-02-22 13:00+01:00")
    assert parse_duration("7d") == 7 * 24 * 60 * MIN and parse_duration("0") == 0
    assert parse_duration("90m") == 90 * MIN and parse_duration("1.5h") == 90 * MIN
    assert parse_duration("30s") == 30_000 and parse_duration("0.0") == 0
    # A bare number meant as days was taken as seconds: a unit is required.
    with pytest.raises(TimeFormatError, match="'7' has no unit: write 7s, 7m, 7h, 7d or 7w"):
        parse_duration("7")
    assert show_duration(8 * MIN) == "8 min" and show_duration(185 * MIN) == "3 h 05 min"
    for bad in ("yesterday", "2015-13-01"):
        with pytest.raises(TimeFormatError):
            parse_time(bad)
    with pytest.raises(TimeFormatError):
        parse_duration("a week")
    with pytest.raises(TimeFormatError):
        parse_zone("Mars/Base")


#: GFM's extended e-mail autolink (also behind mailto: and xmpp:): a local part of these
#: characters right before the "@", a domain with a dot after it. cmark-gfm (GitHub, GitLab)
#: looks for it in the text once backslash escapes and entities are resolved and adjacent text
#: is merged, so "\\@" or "&#64;" do not stop it.
GFM_EMAIL = re.compile(r"[A-Za-z0-9.+_-]@[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")


def test_email_addresses_do_not_become_links_in_the_markdown() -> None:
    """Before, "@" was only backslash-escaped, and GitHub still made every address a mailto:
    link (checked with cmark-gfm)."""
    text = "write boss@brand.example, mailto:x@y.example, xmpp:z@chat.example or a.b+c@d.co."
    out = md(text)
    rendered = html.unescape(re.sub(r"\\(.)", r"\1", out))  # what a renderer makes of it
    assert not GFM_EMAIL.search(rendered), rendered
    assert rendered.replace("\u2060", "") == text  # only an invisible word joiner added


def test_no_time_label_names_an_hour_a_clock_change_skipped() -> None:
    """Oslo, 29 March 2026: 02:00 does not exist; its tick fell at 03:00 labelled "02:00"."""
    oslo = ZoneInfo("Europe/Oslo")
    start = int(datetime(2026, 3, 28, 20, tzinfo=oslo).timestamp() * 1000)
    ticks = time_ticks(start, start + 14 * HOUR_MS, oslo)
    assert len({at for at, _ in ticks}) == len(ticks)
    for at, label in ticks:
        local = datetime.fromtimestamp(at / 1000, oslo)
        assert label == local.strftime("%m-%d" if local.hour == 0 else "%H:%M")
    assert "02:00" not in [label for _, label in ticks]
