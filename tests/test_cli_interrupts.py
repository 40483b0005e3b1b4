"""Ctrl-C in every long-running command: one line saying what it left, and exit 130 (the shell's
128 + SIGINT), never click's bare "Aborted!" and 1, which a script could not tell from a failure.
A declined confirmation is not an interrupt: exit 1, saying nothing was changed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.cli_support import EXIT_INTERRUPTED
from streams.kafka_local import LocalKafka, free_port
from tests.conftest import REPO
from tests.running_worker import start_worker

#: Commands that return at once, or handle Ctrl-C themselves (ingest, replay and demo say what
#: they sent, published or stopped, and exit 130).
NOT_WRAPPED = {
    "config show",
    "kafka status",
    "ingest",
    "replay",
    "demo",
}


def _leaves(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            out.extend(_leaves(command, f"{path} "))
        else:
            out.append((path, command))
    return out


def test_every_command_says_what_an_interrupt_left() -> None:
    """A command added later without it would print "Aborted!" and exit 1 again."""
    unwrapped = [
        path
        for path, command in _leaves(main)
        if not hasattr(command.callback, "interrupt_state") and path not in NOT_WRAPPED
    ]
    assert unwrapped == []
    assert {path for path, _ in _leaves(main)} >= NOT_WRAPPED


@pytest.mark.parametrize(
    ("args", "target", "said"),
    [
        (["models", "install"], "streams.sentiment.factory.install_e5", "redoes the interrupted"),
        (
            ["kafka", "fetch"],
            "streams.kafka_local.LocalKafka.ensure_installed",
            "nothing installed",
        ),
        (["kafka", "stop"], "streams.kafka_local.LocalKafka.stop", "may still be stopping"),
    ],
)
def test_ctrl_c_exits_130_with_one_line(
    monkeypatch: pytest.MonkeyPatch, args: list[str], target: str, said: str
) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "Aborted" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("interrupted; ")]
    assert said in line


def test_a_subcommand_of_another_module_exits_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`eval airline` is registered from streams.eval_cli: wrapped where it is registered."""
    import streams.eval_cli

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(streams.eval_cli, "_load_config", interrupted)
    data = tmp_path / "tweets.csv"
    data.write_text("tweet_id,airline,tweet_created,text\n")
    result = CliRunner().invoke(main, ["eval", "airline", "--data", str(data)])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "interrupted; nothing printed or written" in result.output


_PROMPT = textwrap.dedent(
    """
    import click
    from streams.cli_support import confirm_or_stop, interruptible, leaves_on_interrupt

    @click.command()
    @interruptible("nothing was changed")
    def cli() -> None:
        print("listed", flush=True)
        confirm_or_stop("Change it?")
        leaves_on_interrupt("part of it changed")
        print("changed")

    cli()
    """
)


def _prompt(answer: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROMPT],
        input=answer,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_a_declined_confirmation_changes_nothing_and_says_so(answer: str) -> None:
    """ "n", the default, or the input ending: exit 1 as before, but not "Aborted!"."""
    result = _prompt(answer)
    assert result.returncode == 1, result.stderr
    assert "Not confirmed: nothing was changed." in result.stderr
    assert "Aborted" not in result.stderr and "changed\n" not in result.stdout


def test_yes_goes_on() -> None:
    result = _prompt("y\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("changed\n")


def test_ctrl_c_at_the_prompt_is_an_interrupt() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _PROMPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "listed\n"
    time.sleep(0.5)  # at the prompt
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED, err
    assert "interrupted; nothing was changed" in err
    assert "Aborted" not in err and "changed" not in out


def _unreachable_env() -> dict[str, str]:
    return {
        **os.environ,
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "STORMVARSEL_LOG_FORMAT": "json",
    }


def _interrupt_while_waiting_for_kafka(args: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run a command against a Kafka that is not there; SIGINT once it says it is waiting."""
    err = tmp_path / "stderr"
    env = {**_unreachable_env(), "STORMVARSEL_DATA_DIR": str(tmp_path / "data")}
    with err.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 60
        while "kafka.waiting" not in err.read_text():
            assert process.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, err.read_text()


def test_ctrl_c_while_topics_create_waits_for_kafka(tmp_path: Path) -> None:
    code, said = _interrupt_while_waiting_for_kafka(
        ["topics", "create", "--timeout", "60"], tmp_path
    )
    assert code == EXIT_INTERRUPTED, said
    assert "interrupted; topics created before it stay" in said
    assert "Aborted" not in said and "Traceback" not in said


def test_ctrl_c_while_the_worker_waits_for_kafka(tmp_path: Path) -> None:
    code, said = _interrupt_while_waiting_for_kafka(["worker", "--wait-for-kafka", "60"], tmp_path)
    assert code == EXIT_INTERRUPTED, said
    assert "interrupted; the worker stopped while starting, before it read any mention" in said
    assert "Aborted" not in said and "Traceback" not in said


@pytest.mark.integration
def test_ctrl_c_stops_a_running_worker_cleanly_and_exits_130(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """Before: the same clean stop as SIGTERM, and exit 0: a script could not tell them apart."""
    worker = start_worker(kafka, tmp_path)
    try:
        worker.process.send_signal(signal.SIGINT)
        assert worker.process.wait(timeout=60) == EXIT_INTERRUPTED, worker.log_tail()
    finally:
        worker.stop()
    log = worker.log.read_text()
    assert "Signal received: 2" in log  # Faust's own shutdown ran, as for SIGTERM (15)
    assert '"signal": "SIGINT"' in log and '"event": "worker.stopped"' in log
    assert "interrupted; the worker shut down cleanly, as on SIGTERM" in log
    assert "Aborted" not in log and "Traceback" not in log
