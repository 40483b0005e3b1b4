"""Loaders that turn public evaluation data into mention events (used by tests and docs)."""

from __future__ import annotations

import csv
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from detectors.events import SENTIMENTS, MentionEvent, Sentiment
from detectors.local_time import LocalClock, SkippedLocalTime, runs_newest_first
from detectors.reasons import LabelledComplaint

#: The zone of the airline data set's ``tweet_created`` times (the original export writes them
#: as ``2015-02-24 11:35:52 -0800``; the shared copy drops the offset: ``2/24/2015 11:35``).
AIRLINE_ZONE = ZoneInfo("America/Los_Angeles")
#: Formats of ``tweet_created``: with an explicit UTC offset (it wins), or local and naive.
_AIRLINE_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S")
#: The columns :func:`airline_tweets` reads (``airline_sentiment`` is optional).
AIRLINE_COLUMNS = ("tweet_id", "airline", "text", "tweet_created")
#: The annotators' reason when they could not tell one: not a reason.
NO_REASON = "Can't Tell"


def parse_airline_time(
    text: str, zone: tzinfo = AIRLINE_ZONE, clock: LocalClock | None = None
) -> datetime:
    """A ``tweet_created`` value as an aware time: an explicit offset is kept, a naive local time
    is read in ``zone`` (as ``streams.ingest`` does with ``--time-format`` and ``--timezone``).

    A local time the zone's clock skips (the night the clocks go forward) is a ValueError. One it
    shows twice (the night they go back) is read on ``clock`` (see
    :class:`detectors.local_time.LocalClock`), which places it by the time read before it; with
    no clock, it is the first occurrence."""
    naive = _airline_naive(text)
    if naive.tzinfo is not None:
        return naive
    try:
        return (clock or LocalClock(zone)).read(naive)
    except SkippedLocalTime as skipped:
        raise ValueError(
            f"tweet_created: {text.strip()!r} does not exist in {zone}: the clocks skip from "
            f"{skipped.gap_start:%H:%M} to {skipped.gap_end:%H:%M} on "
            f"{skipped.gap_start:%Y-%m-%d}; give the times with their UTC offset "
            "(2015-02-24 11:35:52 -0800)"
        ) from None


def _airline_naive(text: str) -> datetime:
    """A ``tweet_created`` value as written: aware with its offset, else naive."""
    stripped = text.strip()
    for fmt in _AIRLINE_FORMATS:
        try:
            return datetime.strptime(stripped, fmt)
        except ValueError:
            continue
    raise ValueError(f"tweet_created: {text!r} is neither m/d/Y H:M nor Y-m-d H:M:S +hhmm")


def _airline_clock(path: Path, zone: tzinfo) -> LocalClock:
    """The clock the file's naive times are read on, in file order: the rule for a time shown
    twice follows the file's direction (the shared copy is newest first within each airline).
    What cannot be read (a time, a row, a line that is not UTF-8) is left for the reader to
    refuse with its line."""
    times: list[datetime | None] = []
    with path.open(newline="", encoding="utf-8") as handle:
        try:
            for row in csv.DictReader(handle):
                times.append(_naive_or_none(row.get("tweet_created") or ""))
        except (csv.Error, UnicodeDecodeError):
            pass
    return LocalClock(zone, newest_first=runs_newest_first(times))


def _naive_or_none(text: str) -> datetime | None:
    try:
        moment = _airline_naive(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is None else None


def airline_tweets(path: Path, zone: tzinfo = AIRLINE_ZONE) -> list[MentionEvent]:
    """The "Twitter US Airline Sentiment" CSV as mentions, in time order.

    The airline is the brand and the human label the sentiment. Rows of the held-out test split
    have no label: they are kept as *neutral* mentions, because they are real volume (dropping
    them would hide a fifth of every brand's traffic) while their sentiment is unknown. Times are
    US Pacific (``America/Los_Angeles``, the data set's own zone) unless a row carries its offset;
    see :func:`parse_airline_time`; a local time shown twice (the night the clocks go back) is
    placed by the times before it in the file, read in the file's direction. Ties keep the
    tweet-id order.
    """
    events: list[MentionEvent] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            if not header:
                raise ValueError(f"{path}: the file is empty")
            missing = [name for name in AIRLINE_COLUMNS if name not in header]
            if missing:
                raise ValueError(
                    f"{path}, line 1: no column {', '.join(missing)} "
                    f"(expected {', '.join(AIRLINE_COLUMNS)}; the header has {', '.join(header)})"
                )
            clock = _airline_clock(path, zone)
            for row in reader:
                events.append(_airline_event(path, reader.line_num, row, len(header), clock))
        except csv.Error as exc:
            raise ValueError(f"{path}, line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            # Text is decoded a chunk ahead of the rows, so the reader's line says little.
            line = _first_undecodable_line(path)
            where = f"line {line}" if line is not None else f"after line {reader.line_num}"
            raise ValueError(f"{path}, {where}: not UTF-8 text ({exc.reason})") from None
    events.sort(key=lambda e: (e.event_ms, e.mention_id))
    return events


def airline_complaints(path: Path, zone: tzinfo = AIRLINE_ZONE) -> list[LabelledComplaint]:
    """The negative tweets with an annotator's reason (``negativereason``; "Can't Tell" is left
    out), in time order; none when the file has no such column. Read after
    :func:`airline_tweets` has checked the file: a row it would refuse raises ValueError.
    Every row's time is read, in file order, so that a local time shown twice is placed as
    :func:`airline_tweets` places it."""
    complaints: list[LabelledComplaint] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if "negativereason" not in (reader.fieldnames or []):
            return []
        clock = _airline_clock(path, zone)
        for row in reader:
            try:
                created = parse_airline_time(row["tweet_created"], zone, clock)
            except ValueError as exc:
                raise ValueError(f"{path}, line {reader.line_num}: {exc}") from None
            reason = (row.get("negativereason") or "").strip()
            if row.get("airline_sentiment") != "negative" or not reason or reason == NO_REASON:
                continue
            complaints.append(
                LabelledComplaint(
                    brand=row["airline"],
                    event_ms=int(created.timestamp() * 1000),
                    reason=reason,
                    text=row["text"],
                )
            )
    complaints.sort(key=lambda c: c.event_ms)
    return complaints


def _first_undecodable_line(path: Path) -> int | None:
    """The number of the first line of ``path`` that is not UTF-8 (physical lines, from 1)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _airline_event(
    path: Path, line: int, row: dict[str | Any, Any], columns: int, clock: LocalClock
) -> MentionEvent:
    """One row as a mention; a row with fewer or more cells than the header (a file cut short
    mid-row, a stray comma) or an unreadable time is a ValueError naming the file and line."""
    cells = columns - sum(value is None for value in row.values())
    if None in row:  # csv.DictReader keeps the cells beyond the header under the key None
        cells = columns + len(row[None])
    if cells != columns:
        hint = " (is the file cut short?)" if cells < columns else ""
        raise ValueError(
            f"{path}, line {line}: the row has {cells} cells, the header {columns}{hint}"
        )
    try:
        created = parse_airline_time(row["tweet_created"], clock.zone, clock)
    except ValueError as exc:
        raise ValueError(f"{path}, line {line}: {exc}") from None
    label = row.get("airline_sentiment") or "neutral"
    sentiment = cast(Sentiment, label if label in SENTIMENTS else "neutral")
    return MentionEvent(
        brand=row["airline"],
        event_ms=int(created.timestamp() * 1000),
        sentiment=sentiment,
        lang="en",
        platform="x",
        text=row["text"],
        mention_id=row["tweet_id"],
    )
