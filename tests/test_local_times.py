"""Naive local times around the changes of offset, and leap seconds: ``stormvarsel ingest
--timezone``/``--time-format``, the airline loader, and ISO 8601 times with second 60.

Europe/Oslo: on 2026-03-29 the clocks skip from 02:00 to 03:00 (01:00Z); on 2026-10-25 they go
back from 03:00 to 02:00 (01:00Z), so 02:00-02:59 is shown twice, first at +02:00 (00:xxZ),
then at +01:00 (01:xxZ)."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from detectors.datasets import airline_complaints, airline_tweets, parse_airline_time
from detectors.local_time import LocalClock, SkippedLocalTime, occurrences
from streams.eval_cli import eval_group
from streams.ingest import (
    Connection,
    IngestOptions,
    IngestReport,
    Ready,
    build_object,
    build_transform,
    run_ingest,
)
from streams.iso_time import parse_iso, strptime
from streams.mention import Rejection, parse_event_time, validate_object
from streams.settings import Settings

OSLO = ZoneInfo("Europe/Oslo")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
FORMAT = "%Y-%m-%d %H:%M"


class Sink:
    def __init__(self) -> None:
        self.sent: list[Ready] = []

    def send(self, record: Ready, on_done: object) -> None:
        self.sent.append(record)
        on_done(None)  # type: ignore[operator]

    def flush(self, timeout_s: float) -> None:
        pass

    def close(self) -> None:
        pass


def ingest_csv(
    times: list[str],
    *,
    time_format: str | None = FORMAT,
    zone: str = "Europe/Oslo",
    settings: Settings | None = None,
    **options: object,
) -> tuple[IngestReport, list[Ready]]:
    """``stormvarsel ingest`` of a CSV of these ``created_at`` values (ids 1, 2, ...), through the
    whole run (reader, mapping, checks, order), with a fake Kafka."""
    rows = "".join(f"{i},post {i},{t}\n" for i, t in enumerate(times, start=1))
    sink = Sink()
    report = run_ingest(
        settings or Settings(),
        IngestOptions(
            source=None,
            format="csv",
            transform=build_transform(time_format=time_format, timezone=zone),
            **options,  # type: ignore[arg-type]
        ),
        stdin=io.BytesIO(f"id,text,created_at\n{rows}".encode()),
        connect=lambda _settings, _topic, _wait: Connection(sink, None),  # type: ignore[arg-type]
    )
    return report, sink.sent


def utc(record: Ready) -> str:
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).strftime("%H:%M:%S")


def by_id(sent: list[Ready]) -> list[str]:
    return [utc(r) for r in sorted(sent, key=lambda r: int(r.key))]


def minutes(start: datetime, count: int) -> list[str]:
    """``count`` local clock minutes from ``start``, as an export writes them."""
    return [(start + timedelta(minutes=i)).strftime(FORMAT) for i in range(count)]


# --- the night the clocks go back ---
def test_an_export_in_order_through_the_repeated_hour_keeps_its_hours_apart() -> None:
    """One mention a minute from 01:30 summer time to 03:29 winter time: 01:30-02:59 +02:00,
    02:00-02:59 +01:00, 03:00-03:29. Both 02:xx were read as summer time (00:xxZ): 120 in the
    hour 00:00Z and none in 01:00Z, and 60 records an hour behind the one before them."""
    times = (
        minutes(datetime(2026, 10, 25, 1, 30), 90)  # 01:30 .. 02:59, the first time
        + minutes(datetime(2026, 10, 25, 2, 0), 60)  # 02:00 .. 02:59, the second time
        + minutes(datetime(2026, 10, 25, 3, 0), 30)
    )
    report, sent = ingest_csv(times, settings=Settings(detect_lateness_s=60))
    assert report.rejected == {} and len(sent) == 180
    stamps = [r.timestamp_ms for r in sent]
    assert stamps == sorted(stamps) and len(set(stamps)) == 180  # UTC order, none twice
    assert stamps[-1] - stamps[0] == 179 * 60_000
    hours = Counter(datetime.fromtimestamp(ms / 1000, UTC).hour for ms in stamps)
    assert hours == {23: 30, 0: 60, 1: 60, 2: 30}
    assert report.went_back == 0


def test_both_occurrences_land_an_hour_apart_in_utc_order() -> None:
    times = ["2026-10-25 02:30", "2026-10-25 02:59", "2026-10-25 02:00", "2026-10-25 02:30"]
    _, sent = ingest_csv([*times, "2026-10-25 03:00"])
    assert by_id(sent) == ["00:30:00", "00:59:00", "01:00:00", "01:30:00", "02:00:00"]
    # The same with naive ISO times and --timezone (no --time-format).
    iso = [t.replace(" ", "T") for t in times]
    _, sent = ingest_csv(iso, time_format=None)
    assert by_id(sent) == ["00:30:00", "00:59:00", "01:00:00", "01:30:00"]
    assert json.loads(sent[2].value)["created_at"] == "2026-10-25T01:00:00Z"


def test_many_rows_in_one_minute_stay_in_their_occurrence() -> None:
    """A minute's rows repeat the same time: not a step back, so the first pass stays first."""
    times = ["2026-10-25 02:30"] * 3 + ["2026-10-25 02:10"] * 3
    _, sent = ingest_csv(times)
    assert by_id(sent) == ["00:30:00"] * 3 + ["01:10:00"] * 3


def test_a_repeated_time_first_in_the_file_is_the_first_occurrence() -> None:
    _, sent = ingest_csv(["2026-10-25 02:30", "2026-10-25 02:45", "2026-10-25 02:10"])
    assert by_id(sent) == ["00:30:00", "00:45:00", "01:10:00"]
    # Alone too, and in the mapping layer without a run.
    converted = build_object(
        {"created_at": "2026-10-25 02:30"},
        build_transform(time_format=FORMAT, timezone="Europe/Oslo"),
    )
    assert converted == {"created_at": "2026-10-25T00:30:00Z"}


def test_an_export_out_of_order_is_read_in_file_order_also_with_sort() -> None:
    """The rule reads the file's order, whatever is sent first: --sort orders the converted
    records, so it places them the same. A record out of order in the repeated hour (02:40 after
    02:50 summer time) cannot be told from one after the clocks went back: the second."""
    times = ["2026-10-25 02:50", "2026-10-25 02:40", "2026-10-25 02:20", "2026-10-25 03:10"]
    expected = ["00:50:00", "01:40:00", "01:20:00", "02:10:00"]
    for sort in (False, True):
        _, sent = ingest_csv(times, sort=sort)
        assert by_id(sent) == expected
    assert [int(r.key) for r in sent] == [1, 3, 2, 4]  # --sort: sent in UTC order
    # Newest first through the hour: after 03:10 (02:10Z) every 02:xx is the second occurrence.
    _, sent = ingest_csv(["2026-10-25 03:10", "2026-10-25 02:50", "2026-10-25 02:10"])
    assert by_id(sent) == ["02:10:00", "01:50:00", "01:10:00"]


def test_a_time_with_its_offset_is_kept_and_does_not_move_the_clock() -> None:
    times = [
        "2026-10-25T02:50+02:00",
        "2026-10-25T02:10+01:00",
        "2026-10-25T02:20",
        "2026-10-25T02:05",
    ]
    _, sent = ingest_csv(times, time_format=None)
    assert by_id(sent) == ["00:50:00", "01:10:00", "00:20:00", "01:05:00"]


# --- the night the clocks go forward ---
def test_a_time_the_clocks_skip_is_refused_with_the_gap_and_the_fix(tmp_path: Path) -> None:
    """02:30 on the night the clocks skip 02:00-03:00 was sent as 01:30Z (03:30 summer time)."""
    times = ["2026-03-29 01:59", "2026-03-29 02:30", "2026-03-29 03:00"]
    rejects = tmp_path / "rejects.jsonl"
    report, sent = ingest_csv(times, rejects=rejects)
    assert by_id(sent) == ["00:59:00", "01:00:00"]
    assert report.rejected["bad_value:created_at"].lines == [3]
    [entry] = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert entry["line"] == 3 and entry["reason"] == "bad_value:created_at"
    message = entry["message"]
    assert "'2026-03-29 02:30' does not exist in Europe/Oslo" in message
    assert "the clocks skip from 02:00 to 03:00 on 2026-03-29" in message
    assert "UTC offset and %z in --time-format (e.g. 2026-03-29T02:30:00+01:00)" in message

    iso = build_object(
        {"created_at": "2026-03-29T02:00:00"}, build_transform(timezone="Europe/Oslo")
    )
    assert isinstance(iso, Rejection) and iso.reason == "bad_value:created_at"
    assert "does not exist in Europe/Oslo: the clocks skip from 02:00 to 03:00" in iso.message
    assert "export the times with their UTC offset (e.g. 2026-03-29T02:00:00+01:00)" in iso.message


def test_the_gap_is_named_as_the_zone_has_it() -> None:
    with pytest.raises(SkippedLocalTime) as caught:
        occurrences(datetime(2026, 10, 4, 2, 15), ZoneInfo("Australia/Lord_Howe"))
    assert (caught.value.gap_start.time(), caught.value.gap_end.time()) == (
        datetime(1, 1, 1, 2, 0).time(),
        datetime(1, 1, 1, 2, 30).time(),
    )


def test_the_clock_mirrors_its_rule_for_an_input_newest_first() -> None:
    clock = LocalClock(OSLO, newest_first=True)
    read = [
        clock.read(datetime(2026, 10, 25, h, m)).astimezone(UTC).strftime("%H:%M")
        for h, m in [(2, 30), (2, 30), (2, 0), (2, 59), (2, 10), (1, 50)]
    ]
    assert read == ["01:30", "01:30", "01:00", "00:59", "00:10", "23:50"]


# --- the airline loader (stormvarsel eval airline) ---
def test_parse_airline_time_reads_a_repeated_time_on_its_clock_and_refuses_a_skipped_one() -> None:
    clock = LocalClock(LOS_ANGELES)
    texts = ["11/1/2015 01:30", "11/1/2015 01:59", "11/1/2015 01:10", "11/1/2015 02:00"]
    read = [parse_airline_time(t, LOS_ANGELES, clock).astimezone(UTC) for t in texts]
    assert [m.strftime("%H:%M") for m in read] == ["08:30", "08:59", "09:10", "10:00"]
    # Without a clock: the first occurrence (compared in UTC: Python never finds a time in a
    # repeated hour equal to one in another zone).
    alone = parse_airline_time("11/1/2015 01:10").astimezone(UTC)
    assert alone == datetime(2015, 11, 1, 8, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="does not exist in America/Los_Angeles: the clocks skip"):
        parse_airline_time("3/8/2015 02:30")


AIRLINE_HEADER = "tweet_id,airline_sentiment,negativereason,airline,text,tweet_created\n"


def airline_file(tmp_path: Path, times: list[str]) -> Path:
    path = tmp_path / "airline.csv"
    rows = "".join(
        f"{i},negative,Late Flight,Delta,@Delta late {i},{t}\n" for i, t in enumerate(times, 1)
    )
    path.write_text(AIRLINE_HEADER + rows, encoding="utf-8")
    return path


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_airline_file_is_read_in_its_own_direction(tmp_path: Path, newest_first: bool) -> None:
    """The shared copy runs newest first within each airline: read as if oldest first, the whole
    repeated hour would be its second occurrence."""
    times = ["11/1/2015 01:30", "11/1/2015 01:50", "11/1/2015 01:10", "11/1/2015 01:40"]
    expected = {"1": "08:30", "2": "08:50", "3": "09:10", "4": "09:40"}
    if newest_first:
        times.reverse()
        expected = {str(5 - int(k)): v for k, v in expected.items()}
    path = airline_file(tmp_path, times)
    events = airline_tweets(path, LOS_ANGELES)
    read = {e.mention_id: datetime.fromtimestamp(e.event_ms / 1000, UTC) for e in events}
    assert {k: v.strftime("%H:%M") for k, v in read.items()} == expected
    complaints = airline_complaints(path, LOS_ANGELES)
    assert sorted(c.event_ms for c in complaints) == sorted(e.event_ms for e in events)


def test_eval_airline_refuses_a_skipped_time_naming_the_line(tmp_path: Path) -> None:
    path = airline_file(tmp_path, ["3/8/2015 01:59", "3/8/2015 02:30"])
    result = CliRunner().invoke(eval_group, ["airline", "--data", str(path)])
    assert result.exit_code != 0
    assert "line 3: tweet_created: '3/8/2015 02:30' does not exist in America/Los_Angeles" in (
        " ".join(result.output.split())
    )


# --- leap seconds ---
LEAP_MS = int(datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 1000 + 999


@pytest.mark.parametrize(
    "text",
    [
        "2016-12-31T23:59:60Z",
        "2016-12-31T23:59:60.5Z",
        "2016-12-31 23:59:60+00:00",
        "2017-01-01T00:59:60+01:00",
        "20161231T235960Z",
    ],
)
def test_a_leap_second_is_the_last_instant_of_its_minute(text: str) -> None:
    moment = parse_iso(text)
    assert moment == datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert parse_event_time(text) == moment
    checked = validate_object({"id": "1", "text": "hei", "created_at": text})
    assert not isinstance(checked, Rejection), checked
    assert checked.event_ms == LEAP_MS


@pytest.mark.parametrize("text", ["2016-12-31T23:59:61Z", "2016-12-31T23:60:00Z"])
def test_second_61_is_still_refused(text: str) -> None:
    checked = validate_object({"id": "1", "text": "hei", "created_at": text})
    assert isinstance(checked, Rejection) and checked.reason == "bad_value:created_at"


def test_a_leap_second_in_time_format_and_in_a_naive_iso_time() -> None:
    report, sent = ingest_csv(
        ["2016-12-31 23:59:59", "2016-12-31 23:59:60", "2016-12-31 23:59:61"],
        time_format="%Y-%m-%d %H:%M:%S",
        zone="UTC",
    )
    assert [r.timestamp_ms for r in sent] == [LEAP_MS - 999, LEAP_MS]
    assert json.loads(sent[1].value)["created_at"] == "2016-12-31T23:59:59.999999Z"
    assert report.rejected["bad_value:created_at"].lines == [4]
    # Local, with --timezone: 00:59:60 in Oslo is the same leap second.
    _, sent = ingest_csv(["2017-01-01T00:59:60"], time_format=None)
    assert [r.timestamp_ms for r in sent] == [LEAP_MS]
    # With a fraction and an offset in the format.
    assert strptime("2016-12-31 23:59:60.250 +0000", "%Y-%m-%d %H:%M:%S.%f %z") == datetime(
        2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC
    )
