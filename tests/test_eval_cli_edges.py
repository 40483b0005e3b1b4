"""`stormvarsel eval nab` and `eval airline` at their edges (found in a review of the evaluation
and training commands): labelled windows of one row or none, a swept threshold that beats
nothing, leave-one-out over one file, a blank airline, and Ctrl-C after episodes were printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detectors.nab import crossval, scoring
from streams.eval_cli import eval_group

START = datetime(2015, 3, 1, tzinfo=UTC)
KEY = "realTweets/Twitter_volume_X.csv"


def _time(i: int) -> str:
    return (START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S")


def write_data(directory: Path, name: str = "Twitter_volume_X.csv", n: int = 1200) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{_time(i)},{3 + i % 4}\n" for i in range(n))
    (directory / name).write_text("timestamp,value\n" + rows, encoding="utf-8")
    return directory


def write_labels(path: Path, windows: dict[str, list[list[str]]]) -> Path:
    path.write_text(json.dumps(windows), encoding="utf-8")
    return path


def nab(data: Path, labels: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        eval_group, ["nab", "--data", str(data), "--labels", str(labels), *extra]
    )
    # A traceback (ZeroDivisionError) was the old answer to a one-row window.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_a_window_of_one_row_is_refused_naming_the_file(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    labels = write_labels(tmp_path / "labels.json", {KEY: [[_time(900), _time(900)]]})
    code, output = nab(data, labels)
    assert code == 2, output
    assert "Twitter_volume_X.csv: the labelled window" in output
    assert "covers one row only" in output
    assert "widen it" in output


def test_row_weights_refuses_a_one_row_window() -> None:
    times = [START + timedelta(minutes=5 * i) for i in range(100)]
    with pytest.raises(scoring.WindowError, match="covers one row only"):
        scoring.row_weights(times, [(times[40], times[40])])
    # Two rows are a window NAB scores (the cost after it divides by 2 - 1).
    weights = scoring.row_weights(times, [(times[40], times[41])])
    assert weights.n_windows == 1
    assert weights.unweighted[50] == scoring.scaled_sigmoid(50 - 41)


def test_a_window_covering_no_row_is_named_in_a_warning(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    after_the_data = ["2016-01-01 00:00:00", "2016-01-02 00:00:00"]
    kept = [_time(900), _time(950)]
    labels = write_labels(tmp_path / "labels.json", {KEY: [kept, after_the_data]})
    code, output = nab(data, labels)
    assert code == 0, output
    warning = [line for line in output.splitlines() if line.startswith("warning: ")]
    assert warning == [
        "warning: Twitter_volume_X.csv: the labelled window 2016-01-01 00:00:00 .. "
        "2016-01-02 00:00:00 covers no row of the file; it is not scored"
    ]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def test_no_better_threshold_is_null_in_json_and_none_in_the_table(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    labels = write_labels(tmp_path / "labels.json", {KEY: []})  # no windows: nothing beats null
    code, output = nab(data, labels, "--json")
    assert code == 0, output
    payload = json.loads(output, parse_constant=_reject_constant)  # Infinity was printed
    for profile in payload["profiles"].values():
        assert profile["swept_threshold"] is None
    code, output = nab(data, labels)
    assert code == 0, output
    assert "NAB swept optimum, standard: 0.0 at threshold none (" in output
    assert "threshold inf" not in output


def test_leave_one_out_over_one_file_is_a_usage_error(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    labels = write_labels(tmp_path / "labels.json", {KEY: [[_time(900), _time(950)]]})
    code, output = nab(data, labels, "--leave-one-out")
    assert code == 2, output
    assert "--leave-one-out needs at least 2 data files" in output
    assert "cross-validated" not in output
    with pytest.raises(ValueError, match="at least 2 files"):
        crossval.leave_one_out([data / "Twitter_volume_X.csv"], {KEY: []})


HEADER = "tweet_id,airline_sentiment,negativereason,airline,text,tweet_created,split\n"
ROW = "{id},neutral,,{airline},@x hello,2/24/2015 11:{minute:02d},train\n"


def test_a_blank_airline_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "airline.csv"
    rows = [ROW.format(id=i, airline="Delta", minute=i) for i in range(1, 6)]
    rows[2] = ROW.format(id=3, airline="", minute=3)  # line 4
    rows[4] = ROW.format(id=5, airline=" ", minute=5)
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    result = CliRunner().invoke(eval_group, ["airline", "--data", str(path)])
    assert result.exit_code == 2, result.output
    assert "airline.csv, line 4: the airline is blank (2 rows have none)" in result.output


def test_ctrl_c_in_eval_airline_keeps_the_episodes_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The episodes are printed as the replay finds them: "nothing printed" was wrong."""
    import detectors.replay
    from detectors.episodes import EpisodeEvent
    from streams.cli import main
    from streams.cli_support import EXIT_INTERRUPTED

    def replay(*_args: object, **_kwargs: object) -> Iterator[EpisodeEvent]:
        yield EpisodeEvent("opened", 0, {"episode_id": "e1", "brand": "Delta"})
        raise KeyboardInterrupt

    monkeypatch.setattr(detectors.replay, "replay", replay)
    path = tmp_path / "airline.csv"
    path.write_text(HEADER + ROW.format(id=1, airline="Delta", minute=1), encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", "airline", "--data", str(path), "--json"])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert '"episode_id":"e1"' in result.output.replace(" ", "")
    assert "interrupted; the episodes printed so far; nothing written" in result.output
