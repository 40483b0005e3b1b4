"""The command line's own reading of options and variables before any setting is loaded.

``kafka start|stop|status --data-dir ""`` (an unset shell variable) used the current directory,
and left a ``.kafka.lock`` there; the log level and format were read only under their upper-case
names before the worker started, while every setting is read in any case.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from streams.cli import main


@pytest.mark.parametrize("command", ["start", "stop", "status"])
def test_an_empty_data_dir_is_refused_not_read_as_the_current_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, command: str
) -> None:
    def no_broker(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the broker was looked for")

    monkeypatch.setattr("streams.kafka_local.LocalKafka.from_settings", no_broker)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["kafka", command, "--data-dir", ""])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--data-dir': is empty; name a path" in result.output
    assert list(tmp_path.iterdir()) == []  # no .kafka.lock in the current directory


@pytest.fixture
def logging_set_up(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Each (level, format) the command line configured logging with, in order."""
    calls: list[tuple[str, str]] = []

    def record(level: str = "INFO", log_format: str = "auto") -> dict[str, Any]:
        calls.append((level, log_format))
        return {}

    monkeypatch.setattr("streams.log_setup.configure_logging", record)
    return calls


def test_the_log_level_and_format_are_read_in_any_case(
    monkeypatch: pytest.MonkeyPatch, logging_set_up: list[tuple[str, str]]
) -> None:
    monkeypatch.setenv("stormvarsel_log_level", "debug")
    monkeypatch.setenv("Stormvarsel_Log_Format", "JSON")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert logging_set_up == [("DEBUG", "json")]


def test_the_demo_keeps_a_log_level_given_in_lower_case(
    monkeypatch: pytest.MonkeyPatch, logging_set_up: list[tuple[str, str]]
) -> None:
    """Without a level the demo quiets the log to WARNING, in the format asked for."""
    monkeypatch.setattr("streams.demo.run_demo", lambda *_args, **_kwargs: 0)
    monkeypatch.setenv("stormvarsel_log_format", "console")
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert logging_set_up == [("INFO", "console"), ("WARNING", "console")]

    logging_set_up.clear()
    monkeypatch.setenv("stormvarsel_log_level", "debug")
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert logging_set_up == [("DEBUG", "console")]
