"""`stormvarsel eval nab` on broken input: one clear error naming the file (and line), never a
traceback or a score computed from data it misread."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.eval_cli import eval_group

START = datetime(2015, 3, 1, tzinfo=UTC)


def write_data(directory: Path, rows: list[tuple[str, str]], prefix: bytes = b"") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "Twitter_volume_X.csv"
    text = "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows)
    path.write_bytes(prefix + text.encode())
    return path


def good_rows(n: int = 2000) -> list[tuple[str, str]]:
    return [
        ((START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S"), str(3 + i % 4))
        for i in range(n)
    ]


def write_labels(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


LABELS = {"realTweets/Twitter_volume_X.csv": [["2015-03-05 00:00:00", "2015-03-06 00:00:00"]]}


def run(data: Path, labels: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        eval_group, ["nab", "--data", str(data), "--labels", str(labels), *extra]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("line", "value", "said"),
    [
        (900, "abc", "could not convert string to float"),
        (900, "nan", "expected a count >= 0, got nan"),
        (900, "-50", "expected a count >= 0, got -50.0"),
        (900, "", "could not convert string to float"),
    ],
)
def test_a_bad_value_names_file_and_line(tmp_path: Path, line: int, value: str, said: str) -> None:
    rows = good_rows()
    rows[line - 2] = (rows[line - 2][0], value)
    data = write_data(tmp_path / "realTweets", rows)
    code, output = run(data.parent, write_labels(tmp_path / "l.json", LABELS))
    assert code == 2
    assert f"{data}, line {line}: {said}" in output


def test_times_out_of_order_or_repeated_are_refused(tmp_path: Path) -> None:
    rows = good_rows()
    for broken in (rows[::-1], rows + rows[-1:]):
        data = write_data(tmp_path / "realTweets", broken)
        code, output = run(data.parent, write_labels(tmp_path / "l.json", LABELS))
        assert code == 2 and "timestamps must increase" in output


def test_a_byte_order_mark_is_read_not_skipped(tmp_path: Path) -> None:
    data = write_data(tmp_path / "realTweets", good_rows(), prefix=b"\xef\xbb\xbf")
    code, output = run(data.parent, write_labels(tmp_path / "l.json", LABELS), "--json")
    assert code == 0, output
    assert list(json.loads(output)["files"]) == ["Twitter_volume_X.csv"]


@pytest.mark.parametrize(
    ("labels", "said"),
    [
        ([1, 2], "expected an object of file -> windows"),
        (
            {"realTweets/Twitter_volume_X.csv": [["2015-03-06 00:00:00", "2015-03-05 00:00:00"]]},
            "a window ends before it starts",
        ),
        ({"realTweets/Twitter_volume_X.csv": [["yesterday", "today"]]}, "expected [[start, end]"),
    ],
)
def test_bad_labels_are_refused(tmp_path: Path, labels: object, said: str) -> None:
    data = write_data(tmp_path / "realTweets", good_rows())
    code, output = run(data.parent, write_labels(tmp_path / "l.json", labels))
    assert code == 2 and "--labels" in output and said in output


def test_labels_that_are_not_json_and_a_bad_config(tmp_path: Path) -> None:
    data = write_data(tmp_path / "realTweets", good_rows())
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    code, output = run(data.parent, broken)
    assert code == 2 and f"{broken}: not JSON" in output
    config = tmp_path / "bad.yaml"
    config.write_text("spikes: [\n", encoding="utf-8")
    code, output = run(
        data.parent, write_labels(tmp_path / "l.json", LABELS), "--config", str(config)
    )
    assert code == 2 and "cannot read it as YAML" in output


def test_a_csv_with_another_header_is_named_not_silently_skipped(tmp_path: Path) -> None:
    data = write_data(tmp_path / "realTweets", good_rows())
    other = data.parent / "Twitter_volume_Y.csv"
    other.write_text("time,value\n2015-03-01 00:00:00,3\n", encoding="utf-8")
    result = CliRunner().invoke(
        eval_group,
        [
            "nab",
            "--data",
            str(data.parent),
            "--labels",
            str(write_labels(tmp_path / "l.json", LABELS)),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == ["Twitter_volume_X.csv"]  # stdout stays JSON
    assert result.stderr == (
        f"warning: skipped {other}: its header is 'time,value', not timestamp,value\n"
    )


def test_no_usable_file_is_one_usage_error_saying_what_was_found(tmp_path: Path) -> None:
    directory = tmp_path / "realTweets"
    directory.mkdir()
    labels = write_labels(tmp_path / "l.json", LABELS)
    code, output = run(directory, labels)
    assert (
        code == 2
        and f"no NAB data files (timestamp,value) in {directory}: it has no .csv" in output
    )
    (directory / "a.csv").write_text("Timestamp,Value\n", encoding="utf-8")
    (directory / "b.csv").write_text("", encoding="utf-8")
    code, output = run(directory, labels)
    assert code == 2
    assert (
        f"{directory / 'a.csv'}: its header is 'Timestamp,Value', not timestamp,value; "
        f"{directory / 'b.csv'}: the file is empty"
    ) in output
