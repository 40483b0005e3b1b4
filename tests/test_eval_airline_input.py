"""`stormvarsel eval airline` on broken input: one usage error naming the file and the line,
never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.eval_cli import eval_group

HEADER = "tweet_id,airline_sentiment,negativereason,airline,text,tweet_created,split\n"
ROWS = [
    "570306133677760513,neutral,,Virgin America,@VirginAmerica What @dhepburn said.,"
    "2/24/2015 11:35,train\n",
    "570301130888122368,positive,,Virgin America,@VirginAmerica plus you've added "
    "commercials to the experience... tacky.,2/24/2015 11:15,train\n",
]


def run(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(eval_group, ["airline", "--data", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # Cut mid-row after the airline: four of seven cells on line 3.
        (
            HEADER + ROWS[0] + ",".join(ROWS[1].split(",")[:4]),
            ", line 3: the row has 4 cells, the header 7 (is the file cut short?)",
        ),
        # Cut inside a quoted text: the rest of the file is that cell.
        (
            HEADER + ROWS[0] + '1,neutral,,Delta,"no end\n',
            ", line 3: the row has 5 cells, the header 7",
        ),
        # A time cut short in a row that is otherwise whole.
        (
            HEADER + ROWS[0] + ROWS[1].replace("2/24/2015 11:15", "2/24/"),
            ", line 3: tweet_created: '2/24/' is neither",
        ),
        (
            HEADER + ROWS[0].replace(",train", ",train,extra"),
            ", line 2: the row has 8 cells, the header 7",
        ),
        (HEADER.replace(",tweet_created", "") + ROWS[0], ", line 1: no column tweet_created"),
        ("", ": the file is empty"),
    ],
)
def test_a_broken_file_is_one_usage_error_naming_file_and_line(
    tmp_path: Path, text: str, said: str
) -> None:
    path = tmp_path / "airline.csv"
    path.write_text(text, encoding="utf-8")
    code, output = run(path)
    assert code == 2, output
    assert f"Error: {path}{said}" in output


@pytest.mark.parametrize("line", [2, 300])
def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path, line: int) -> None:
    """Latin-1 text on one line: the error named "after line 0" (the reader decodes a chunk
    ahead of its rows), now the line itself."""
    rows = [ROWS[0]] * 400
    rows[line - 2] = ROWS[0].replace("What", "Hvað")
    path = tmp_path / "airline.csv"
    path.write_bytes((HEADER + "".join(rows)).encode("utf-8").replace("ð".encode(), b"\xf0"))
    code, output = run(path)
    assert code == 2, output
    assert f"Error: {path}, line {line}: not UTF-8 text" in output


def test_an_intact_file_still_replays(tmp_path: Path) -> None:
    path = tmp_path / "airline.csv"
    path.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    code, output = run(path)
    assert code == 0, output
