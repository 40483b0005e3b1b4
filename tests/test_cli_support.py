"""Option checks shared by the command-line modules (streams.cli_support)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streams.cli_support import check_writable_parent


def test_writable_parent_accepts_a_new_file_in_an_existing_directory(tmp_path: Path) -> None:
    check_writable_parent(tmp_path / "new.json", "--out")


@pytest.mark.parametrize("parent", ["no-such-dir", "a-file"])
def test_writable_parent_names_the_option_and_the_directory(tmp_path: Path, parent: str) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    target = tmp_path / parent / "out.json"
    with pytest.raises(click.BadParameter) as info:
        check_writable_parent(target, "--predictions")
    assert info.value.param_hint == "--predictions"
    assert info.value.message == f"cannot write a file in {target.parent}"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["topics", "create", "--timeout", "-1"], "'--timeout': -1.0 is not in the range x>0"),
        (["topics", "create", "--timeout", "0"], "'--timeout': 0.0 is not in the range x>0"),
        (["topics", "create", "--timeout", "nan"], "'--timeout': 'nan' is not a finite number"),
        (["topics", "grow", "--partitions", "0"], "'--partitions': 0 is not in the range 1<=x<="),
        # It ends by asking for STORMVARSEL_TOPIC_PARTITIONS=N, which refuses more than 1024.
        (["topics", "grow", "--partitions", "2000"], "'--partitions': 2000 is not in the"),
        (
            ["replay", "--from", "2015-02-20", "--to", "2015-02-21", "--warmup", "7"],
            "'--warmup': '7' has no unit",
        ),
        (["topics", "grow", "--partitions", "4", "--timeout", "nan"], "'--timeout': 'nan' is not"),
        (["kafka", "start", "--timeout", "-5"], "'--timeout': -5.0 is not in the range x>0"),
        (["kafka", "start", "--timeout", "inf"], "'--timeout': 'inf' is not a finite number"),
        (["worker", "--wait-for-kafka", "-1"], "'--wait-for-kafka': -1.0 is not in the range x>=0"),
        (["worker", "--wait-for-kafka", "nan"], "'--wait-for-kafka': 'nan' is not a finite"),
        (["ingest", "in.jsonl", "--wait-for-kafka", "nan"], "'--wait-for-kafka': 'nan' is not"),
        (["ingest", "in.jsonl", "--rate", "nan"], "'--rate': 'nan' is not a finite number"),
        (["ingest", "in.jsonl", "--speedup", "inf"], "'--speedup': 'inf' is not a finite number"),
        (["demo", "--pace", "nan"], "'--pace': 'nan' is not a finite number"),
        # Text where a number goes said "is not a valid float range" / "integer range".
        (["topics", "create", "--timeout", "abc"], "'--timeout': 'abc' is not a valid number."),
        (["ingest", "in.jsonl", "--rate", "fast"], "'--rate': 'fast' is not a valid number."),
        (
            ["topics", "grow", "--partitions", "x"],
            "'--partitions': 'x' is not a valid whole number",
        ),
        (["ingest", "in.jsonl", "--limit", "ten"], "'--limit': 'ten' is not a valid whole number"),
    ],
)
def test_bad_seconds_and_rates_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], said: str
) -> None:
    """-1, 0, nan and inf went through: 'no Kafka broker answered ... within -1 s', and a
    traceback from int(nan * 1000) or int(inf * 1000)."""
    import streams.cli
    import streams.demo
    import streams.ingest
    import streams.topics
    import streams.worker
    from streams.cli import main

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the command ran with a bad option")

    monkeypatch.setattr(streams.cli, "_local_kafka", must_not_run)
    monkeypatch.setattr(streams.topics, "ensure_topics", must_not_run)
    monkeypatch.setattr(streams.worker, "run_worker", must_not_run)
    monkeypatch.setattr(streams.ingest, "run_ingest", must_not_run)
    monkeypatch.setattr(streams.demo, "run_demo", must_not_run)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {said}" in result.output


def test_range_options_show_a_readable_metavar() -> None:
    """The help read "--timeout FLOAT RANGE" and "--batch-size INTEGER RANGE"; a timeout is in
    seconds."""
    from streams.cli import main

    for args, shown in (
        (["kafka", "start", "--help"], "--timeout SECONDS"),
        (["topics", "create", "--help"], "--timeout SECONDS"),
        (["sentiment", "train", "--help"], "--holdout NUMBER"),
        (["topics", "grow", "--help"], "--partitions N"),
        (["sentiment", "eval", "--help"], "--batch-size N"),
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert shown in result.output
        assert "RANGE" not in result.output


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--out", "Invalid value for '--out': is empty; name a path, or leave the option out"),
        ("--topic", "Invalid value for '--topic': is empty; leave --topic out to replay"),
    ],
)
def test_replay_refuses_an_empty_out_or_topic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, option: str, says: str
) -> None:
    """`--out ""` (an unset shell variable) wrote the report into the current directory, and
    `--topic ""` replayed the default topic."""
    from streams.cli import main
    from streams.kafka_local import free_port

    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.chdir(tmp_path)
    args = ["replay", "--from", "2015-02-20", "--to", "2015-02-21", "--warmup", "0"]
    result = CliRunner().invoke(main, [*args, option, ""])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["ingest", "in.jsonl", "--rejects", ""], "'--rejects'"),
        (["eval", "nab", "--data", "nab", "--labels", "labels.json", "--results-dir", ""], None),
        (["sentiment", "eval", "--data", "data.csv", "--predictions", ""], "'--predictions'"),
        (["sentiment", "train", "--data", "data.csv", "--out", ""], "'--out'"),
        (["demo", "--report-dir", ""], "'--report-dir'"),
    ],
)
def test_an_empty_output_path_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], option: str | None
) -> None:
    """click reads "" as ".": `sentiment train --out ""` wrote ./.npz, `eval nab --results-dir
    ""` wrote into the current directory, and `ingest --rejects ""` said "--rejects .: cannot
    write (Is a directory)" only after reaching Kafka."""
    import streams.demo
    from streams.cli import main
    from streams.kafka_local import free_port

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the command ran with an empty path")

    monkeypatch.setattr(streams.demo, "run_demo", must_not_run)
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "nab").mkdir()
    (tmp_path / "labels.json").write_text("{}", encoding="utf-8")
    (tmp_path / "data.csv").write_text("text,label\nbra,positive\n", encoding="utf-8")
    before = sorted(path.name for path in tmp_path.iterdir())
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    hint = option or "'--results-dir'"
    assert f"Invalid value for {hint}: is empty; name a path" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == before


@pytest.mark.parametrize("prefix", [None, "pm."])
def test_an_interrupted_replay_says_what_its_published_topics_hold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str | None
) -> None:
    """Ctrl-C: no report. With --publish-prefix the results already published stay on their
    topics, a part of the range, which the message did not say."""
    import streams.replay.command
    from streams.cli import main

    def interrupted(*_args: object, **_kwargs: object) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(streams.replay.command, "run_command", interrupted)
    args = ["replay", "--from", "2015-02-20", "--to", "2015-02-21", "--out", str(tmp_path / "r")]
    if prefix is not None:
        args += ["--publish-prefix", prefix]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130, result.output
    (line,) = result.output.splitlines()  # one line, as every interrupted command says
    assert line.startswith("interrupted; no report written")
    assert ("the topics pm.* hold a partial result" in line) == (prefix is not None)
