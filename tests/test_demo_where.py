"""The demo's last words: the "Where to look" box names Alertmanager (its URL was printed only
at start), and the lines after it say how to delete the run's topics, with commands that work
as printed. The full demo is tests/test_demo.py; here the box is printed from a made-up stack."""

from __future__ import annotations

import io
import shlex
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka.admin import KafkaAdminClient, NewTopic
from rich.console import Console

from streams import demo
from streams.cli import main
from streams.demo import DemoOptions, Stack
from streams.kafka_local import LocalKafka
from streams.settings import Settings
from streams.topics import PIPELINE_TOPICS, STATE_TABLES

RUN = "20261206-101010"


class FakeService:
    def __init__(self, url: str) -> None:
        self.url = url


def printed(stack: Stack, options: DemoOptions, bootstrap: str = "127.0.0.1:9092") -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    run = Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"demo-{RUN}.",
        app_id=f"stormvarsel-demo-{RUN}",
    )
    demo._where(console, stack, options, run)
    return out.getvalue()


def box(text: str) -> str:
    return text.split("Where to look", 1)[1].split("╰", 1)[0]


@pytest.mark.parametrize("keep_running", [False, True])
def test_the_box_names_alertmanager(tmp_path: Path, keep_running: bool) -> None:
    stack = Stack(broker=Any)  # type: ignore[arg-type]  # not used by the box
    stack.alertmanager = FakeService("http://127.0.0.1:39093")  # type: ignore[assignment]
    stack.prometheus = FakeService("http://127.0.0.1:39090")  # type: ignore[assignment]
    options = DemoOptions(report_dir=tmp_path / "report", keep_running=keep_running)
    inside = box(printed(stack, options))
    note = "" if keep_running else " (while it runs: --keep-running)"
    assert f"Alertmanager: http://127.0.0.1:39093{note} " in inside
    assert "Prometheus: http://127.0.0.1:39090/graph" in inside
    assert f"Post-mortem report: {tmp_path / 'report' / 'report.html'}" in inside


def test_without_alertmanager_the_box_does_not_name_it(tmp_path: Path) -> None:
    stack = Stack(broker=Any)  # type: ignore[arg-type]
    text = printed(stack, DemoOptions(report_dir=tmp_path / "report"))
    assert "Alertmanager" not in text and "Prometheus" not in text


def test_the_cleanup_lines_name_the_runs_topics_one_command_a_line(tmp_path: Path) -> None:
    stack = Stack(broker=Any)  # type: ignore[arg-type]
    text = printed(stack, DemoOptions(report_dir=tmp_path / "report"), "127.0.0.1:40123")
    after = text.split("╯", 1)[1].strip("\n").splitlines()
    env = "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:40123"
    assert after[1:] == [
        f"  {env} stormvarsel topics delete --prefix demo-{RUN}.",
        f"  {env} stormvarsel topics delete --prefix stormvarsel-demo-{RUN}-",
    ]
    assert after[0].startswith("This run's topics stay on the broker. To delete them later")


@pytest.mark.integration
def test_the_cleanup_commands_delete_the_runs_topics_and_no_live_one(kafka: LocalKafka) -> None:
    """Run as printed, in the shell of a live deployment (default app id, a topic prefix of its
    own): the run's pipeline topics and its worker's state go; the live pipeline topics and
    another run's stay."""
    live = f"live{uuid.uuid4().hex[:6]}."
    ours = [f"demo-{RUN}.{name}" for name in PIPELINE_TOPICS]
    ours += [f"stormvarsel-demo-{RUN}-{table}-changelog" for table in STATE_TABLES]
    ours += [f"stormvarsel-demo-{RUN}-detector-seeds"]
    other_run = "20261206-111111"
    kept = [*(f"{live}{name}" for name in PIPELINE_TOPICS), f"demo-{other_run}.mentions"]
    kept += [f"stormvarsel-demo-{other_run}-mention-ids-changelog"]
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        existing = set(admin.list_topics())
        fresh = [name for name in [*ours, *kept] if name not in existing]
        admin.create_topics([NewTopic(name, 1, 1) for name in fresh])
        admin.wait_for_topics(fresh, timeout_ms=30_000)
        run = Settings(
            kafka_bootstrap_servers=kafka.bootstrap,
            topic_prefix=f"demo-{RUN}.",
            app_id=f"stormvarsel-demo-{RUN}",
        )
        for command in demo.cleanup_commands(run):
            words = shlex.split(command)
            name, _, value = words[0].partition("=")
            assert words[1] == "stormvarsel"
            result = CliRunner().invoke(
                main, [*words[2:], "--yes"], env={name: value, "STORMVARSEL_TOPIC_PREFIX": live}
            )
            assert result.exit_code == 0, result.output
        left = set(admin.list_topics())
    finally:
        admin.close()
    assert not left & set(ours)
    assert set(kept) <= left


@pytest.mark.integration
def test_the_demo_uses_the_port_the_running_broker_has(kafka: LocalKafka) -> None:
    """The local broker of this data directory already runs, started with another port than the
    settings name now: the demo said "Kafka already running at <the settings' port>" and failed
    at its first topic, with nothing answering there."""
    from streams.kafka_local import free_port

    other = LocalKafka(
        version=kafka.version,
        data_dir=kafka.data_dir,
        cache_dir=kafka.cache_dir,
        port=free_port(),
        controller_port=free_port(),
    )
    assert other.start() is False  # already running, on the fixture's port
    assert other.bootstrap != kafka.bootstrap
    assert demo.running_bootstrap(other, started_here=False) == kafka.bootstrap
    assert demo.running_bootstrap(other, started_here=True) == other.bootstrap
