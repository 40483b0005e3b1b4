"""--from/--to in a zone with summer time: local times the clocks skip or show twice."""

from __future__ import annotations

import pytest

from streams.replay.command import CommandOptions, OptionError, replay_options
from streams.replay.times import TimeFormatError, parse_time, parse_zone, show_time

OSLO = parse_zone("Europe/Oslo")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-03-29T02:30", "does not exist"),  # Oslo springs forward 02:00 -> 03:00
        ("2026-03-29T02:00", "does not exist"),
        ("2026-10-25T02:30", "happens twice"),  # Oslo falls back 03:00 -> 02:00
        ("2026-10-25T02:00", "happens twice"),
    ],
)
def test_a_local_time_the_clocks_skip_or_repeat_is_refused(text: str, why: str) -> None:
    with pytest.raises(TimeFormatError, match=why):
        parse_time(text, OSLO)


def test_the_message_offers_both_readings_of_a_repeated_time() -> None:
    with pytest.raises(TimeFormatError) as caught:
        parse_time("2026-10-25T02:30", OSLO)
    message = str(caught.value)
    first, second = "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"
    assert first in message and second in message
    # Both suggestions parse, an hour apart, in the order the clock shows them.
    assert parse_time(second) - parse_time(first) == 3_600_000


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2026-03-29T01:59", "2026-03-29 01:59 CET"),
        ("2026-03-29T03:00", "2026-03-29 03:00 CEST"),
        ("2026-10-25T01:59", "2026-10-25 01:59 CEST"),
        ("2026-10-25T03:00", "2026-10-25 03:00 CET"),
        ("2026-10-25T02:30+01:00", "2026-10-25 02:30 CET"),
        ("2026-10-25T02:30+02:00", "2026-10-25 02:30 CEST"),
        ("2026-10-25", "2026-10-25 00:00 CEST"),
    ],
)
def test_times_around_the_change_are_read_on_the_local_clock(text: str, shown: str) -> None:
    assert show_time(parse_time(text, OSLO), OSLO) == shown


def test_the_command_names_the_option() -> None:
    options = CommandOptions(start="2026-10-24", end="2026-10-25T02:15", timezone="Europe/Oslo")
    with pytest.raises(OptionError) as caught:
        replay_options(options)
    assert caught.value.option == "--to"
    assert "happens twice" in caught.value.message


LOS_ANGELES = parse_zone("America/Los_Angeles")


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("2015-02-22Z", "2015-02-22T00:00Z"),
        ("2015-02-22+01:00", "2015-02-22T00:00+01:00"),
        ("2015-02-22-08:00", "2015-02-22T00:00-08:00"),
        ("20150222+0100", "2015-02-22T00:00+01:00"),
    ],
)
def test_a_date_with_an_offset_is_midnight_at_that_offset(text: str, same_as: str) -> None:
    """Python 3.11 reads any character between a date and a time as their separator:
    ``2015-02-22+01:00`` was 01:00 with no offset, placed in --timezone, hours off."""
    assert parse_time(text, LOS_ANGELES) == parse_time(same_as, LOS_ANGELES)


@pytest.mark.parametrize("text", ["2015-02-22x12:00", "2015-02-22_12:00", "2015-02-2212:00"])
def test_a_date_and_time_not_separated_by_t_or_a_space_are_refused(text: str) -> None:
    with pytest.raises(TimeFormatError, match="2015-02-22T12:00"):
        parse_time(text)


def test_the_separators_iso_8601_allows_are_read() -> None:
    expected = parse_time("2015-02-22T12:00+01:00")
    for text in ("2015-02-22 12:00+01:00", "2015-02-22t12:00+01:00", "2015-02-22T11:00Z"):
        assert parse_time(text) == expected
