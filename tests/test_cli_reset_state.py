"""``topics reset-state --discard-baselines`` when there are no state topics to delete.

It deleted ``<app id>-detector-seeds`` (every brand's saved detector) straight away: without
``--yes`` it asked nothing, an "n" changed nothing, and no running worker stopped it. It now asks
and checks for workers as the path with state topics does. Kafka is mocked: what is tested is the
command's order of steps, not the deletion (see tests/test_topic_growth.py for that).
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.errors import StormvarselError


class _Admin:
    def close(self) -> None:
        pass


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No state topics; what touches Kafka is recorded instead of done."""
    done: list[str] = []

    def discard(*_args: Any, **_kwargs: Any) -> bool:
        done.append("discarded")
        return True

    def no_workers(_admin: Any, app_id: str) -> None:
        done.append(f"checked workers of {app_id}")

    monkeypatch.setattr("streams.topics.state_topics", lambda *_a, **_k: [])
    monkeypatch.setattr("streams.detector_seeds.discard_baselines", discard)
    monkeypatch.setattr("streams.kafka_clients.connect_admin", lambda *_a, **_k: _Admin())
    monkeypatch.setattr("streams.topics.refuse_while_workers_run", no_workers)
    return done


def test_discarding_the_detectors_asks_first_and_a_no_changes_nothing(calls: list[str]) -> None:
    result = CliRunner().invoke(main, ["topics", "reset-state", "--discard-baselines"], input="n\n")
    assert result.exit_code == 1, result.output
    assert calls == []
    assert "stormvarsel-detector-seeds" in result.output  # the question names what goes
    assert "Not confirmed: nothing was changed." in result.output
    assert "starts afresh" not in result.output


def test_a_yes_discards_them_after_checking_for_workers(calls: list[str]) -> None:
    result = CliRunner().invoke(main, ["topics", "reset-state", "--discard-baselines"], input="y\n")
    assert result.exit_code == 0, result.output
    assert calls == ["checked workers of stormvarsel", "discarded"]
    assert "Every brand starts afresh" in result.output


def test_with_yes_it_asks_nothing_but_still_checks_for_workers(calls: list[str]) -> None:
    result = CliRunner().invoke(main, ["topics", "reset-state", "--discard-baselines", "--yes"])
    assert result.exit_code == 0, result.output
    assert "[y/N]" not in result.output
    assert calls == ["checked workers of stormvarsel", "discarded"]


def test_a_running_worker_keeps_the_detectors(
    calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def running(_admin: Any, app_id: str) -> None:
        raise StormvarselError(f"1 worker(s) of app id {app_id!r} are running; stop every worker")

    monkeypatch.setattr("streams.topics.refuse_while_workers_run", running)
    result = CliRunner().invoke(main, ["topics", "reset-state", "--discard-baselines", "--yes"])
    assert result.exit_code == 1, result.output
    assert "error: 1 worker(s) of app id 'stormvarsel' are running" in result.output
    assert calls == []
