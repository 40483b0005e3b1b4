"""An unusable ``--out`` is refused before Kafka is read; a report that cannot be written is one
line, not a traceback (no Kafka: the replay itself is stubbed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detectors.config import DetectorConfig
from streams.cli import main
from streams.replay import run as replay_run
from streams.replay.command import CommandOptions, OptionError, run_command
from streams.replay.result import ReplayResult, RunResult
from streams.replay.source import ReplayError
from streams.settings import load_settings

FROM, TO = "2015-02-16", "2015-02-17"


def _no_kafka(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("Kafka was read before --out was checked")


@pytest.mark.parametrize("where", ["under-a-file", "a-file"])
def test_an_unusable_out_fails_before_kafka_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    """Before, --out was first used by write_report after the whole replay: a NotADirectoryError
    traceback at the end of a long run."""
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    out = tmp_path / "a-file" / "report" if where == "under-a-file" else tmp_path / "a-file"
    monkeypatch.setattr(replay_run, "prepare", _no_kafka)
    with pytest.raises(OptionError) as caught:
        run_command(load_settings(), CommandOptions(start=FROM, end=TO, out=out, quiet=True))
    assert caught.value.option == "--out" and str(out) in caught.value.message


def test_the_command_exits_2_naming_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    monkeypatch.setattr(replay_run, "prepare", _no_kafka)
    args = ["replay", "--from", FROM, "--to", TO, "--out", str(tmp_path / "a-file" / "r")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "'--out'" in result.output and "Traceback" not in result.output


def test_a_new_out_is_removed_again_when_the_replay_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_mentions(*_args: Any) -> None:
        raise ReplayError("no mentions to replay")

    monkeypatch.setattr(replay_run, "prepare", no_mentions)
    out = tmp_path / "new" / "report"
    with pytest.raises(ReplayError):
        run_command(load_settings(), CommandOptions(start=FROM, end=TO, out=out, quiet=True))
    assert not (tmp_path / "new").exists()


def test_a_report_that_cannot_be_written_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "report"

    def replay(*_args: Any, **_kwargs: Any) -> ReplayResult:
        out.rmdir()  # the directory went away while the replay ran
        out.write_text("", encoding="utf-8")
        return ReplayResult(
            topic="mentions",
            stage="scored",
            start_ms=0,
            end_ms=60_000,
            warmup_start_ms=0,
            runs=[RunResult("live configuration", DetectorConfig())],
        )

    monkeypatch.setattr(replay_run, "prepare", lambda *_: None)
    monkeypatch.setattr(replay_run, "run_prepared", replay)
    with pytest.raises(ReplayError, match=r"report could not be written: .*report"):
        run_command(load_settings(), CommandOptions(start=FROM, end=TO, out=out, quiet=True))
