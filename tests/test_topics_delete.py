"""``stormvarsel topics delete --prefix P`` on the real Kafka: it deletes the topics beginning
with P and nothing else, lists them with their records first, and refuses a prefix that would
take a live pipeline topic or the worker's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    NotCoordinatorError,
)

from streams import topics as topics_module
from streams.cli import main
from streams.cli_support import EXIT_INTERRUPTED
from streams.kafka_local import LocalKafka, free_port
from streams.replay.publish import delete_advice, delete_command
from streams.settings import Settings
from streams.topics import prefix_refusal

pytestmark = pytest.mark.integration


def delete(bootstrap: str, *args: str, input: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(
        main,
        ["topics", "delete", *args],
        input=input,
        env={"STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": bootstrap, **env},
    )


def records(kafka: LocalKafka, names: list[str]) -> dict[str, int]:
    """Records per topic (end offsets summed); -1 for a topic the broker does not list."""
    reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    try:
        existing = reader.topics()
        counts = {}
        for name in names:
            if name not in existing:
                counts[name] = -1
                continue
            tps = [TopicPartition(name, p) for p in reader.partitions_for_topic(name) or ()]
            counts[name] = sum(reader.end_offsets(tps).values())
        return counts
    finally:
        reader.close()


@pytest.fixture
def made(kafka: LocalKafka) -> Iterator[tuple[str, list[str], list[str]]]:
    """A prefix with two topics under it (3 records, none), and unrelated topics whose names
    are close: the prefix with '-' for '.', and the prefix in the middle of a name."""
    run = uuid.uuid4().hex[:8]
    prefix = f"td{run}."
    ours = [f"{prefix}alerts", f"{prefix}buckets"]
    others = [f"td{run}-alerts", f"x.td{run}.alerts"]
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(name, 2, 1) for name in [*ours, *others]])
    admin.wait_for_topics([*ours, *others], timeout_ms=30_000)
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    for n in range(3):
        producer.send(ours[0], f"alert {n}".encode())
    for name in others:
        producer.send(name, b"keep me")
    producer.flush()
    producer.close()
    yield prefix, ours, others


def test_deletes_the_prefixed_topics_and_nothing_else(
    kafka: LocalKafka, made: tuple[str, list[str], list[str]]
) -> None:
    prefix, ours, others = made
    result = delete(kafka.bootstrap, "--prefix", prefix, "--yes")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [ours[0], "3", "records"]
    assert lines[1].split() == [ours[1], "0", "records"]
    assert f"deleted {ours[0]}" in lines and f"deleted {ours[1]}" in lines
    assert lines[-1] == f"Deleted 2 topics beginning with {prefix!r}."
    # Gone as the command ends (a replay to the prefix right after creates them afresh) ...
    assert records(kafka, ours) == dict.fromkeys(ours, -1)
    # ... and the topics with close names keep their records.
    assert records(kafka, others) == dict.fromkeys(others, 1)


def test_asks_first_and_a_no_changes_nothing(
    kafka: LocalKafka, made: tuple[str, list[str], list[str]]
) -> None:
    prefix, ours, _ = made
    declined = delete(kafka.bootstrap, "--prefix", prefix, input="n\n")
    assert declined.exit_code == 1, declined.output
    assert "Delete these 2 topics and their records? [y/N]" in declined.output
    assert "Not confirmed: nothing was changed." in declined.output
    assert records(kafka, ours) == {ours[0]: 3, ours[1]: 0}
    confirmed = delete(kafka.bootstrap, "--prefix", prefix, input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert records(kafka, ours) == dict.fromkeys(ours, -1)


def test_dry_run_lists_and_deletes_nothing(
    kafka: LocalKafka, made: tuple[str, list[str], list[str]]
) -> None:
    prefix, ours, _ = made
    result = delete(kafka.bootstrap, "--prefix", prefix, "--dry-run")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()[:2]] == ours
    assert result.output.splitlines()[-1] == "Dry run: 2 topics listed, none deleted."
    assert records(kafka, ours) == {ours[0]: 3, ours[1]: 0}


def test_no_match_says_so_and_exits_0(kafka: LocalKafka) -> None:
    prefix = f"none{uuid.uuid4().hex[:8]}."
    result = delete(kafka.bootstrap, "--prefix", prefix)
    assert result.exit_code == 0, result.output
    assert result.output == f"No topic begins with {prefix!r}: nothing to delete.\n"


@pytest.mark.parametrize(
    ("prefix", "env", "said"),
    [
        ("", {}, "--prefix is empty"),
        ("  ", {}, "--prefix is empty"),
        ("m", {}, "would match 'mentions', a topic the live pipeline uses"),
        ("mentions.valid", {}, "would match 'mentions.valid', a topic"),
        ("al", {}, "would match 'alerts', a topic"),
        # The configured topic prefix's live topics, and the bare names too.
        ("prod.", {"STORMVARSEL_TOPIC_PREFIX": "prod."}, "would match 'prod.alerts', a topic"),
        ("ment", {"STORMVARSEL_TOPIC_PREFIX": "prod."}, "would match 'mentions', a topic"),
        # The configured app's own topics: every one of them, or one by name.
        ("storm", {}, "would match every topic of the worker's app id 'stormvarsel'"),
        ("stormvarsel-", {}, "every topic of the worker's app id"),
        ("stormvarsel-detector-s", {}, "'stormvarsel-detector-seeds', a topic"),
        ("shop-mention-ids", {"STORMVARSEL_APP_ID": "shop"}, "'shop-mention-ids-changelog'"),
    ],
)
def test_refuses_a_prefix_of_live_topics_before_asking_kafka(
    prefix: str, env: dict[str, str], said: str
) -> None:
    """Refused in one line before any connection: no broker listens at the address."""
    result = delete(f"127.0.0.1:{free_port()}", "--prefix", prefix, "--yes", **env)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"error: --prefix {prefix!r} ") or result.output.startswith(
        "error: --prefix is empty"
    )
    assert said in result.output
    assert "no Kafka broker answered" not in result.output


def test_refuses_the_app_repartition_topics_and_kafkas_own(kafka: LocalKafka) -> None:
    app = f"tdapp{uuid.uuid4().hex[:6]}"
    topic = f"{app}-shop.agent-mentions-repartition"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.wait_for_topics([topic], timeout_ms=30_000)
    admin.close()
    env = {"STORMVARSEL_APP_ID": app}
    result = delete(kafka.bootstrap, "--prefix", f"{app}-shop", "--yes", **env)
    assert result.exit_code == 1, result.output
    assert f"would match the worker's internal topic {topic!r}" in result.output
    assert records(kafka, [topic]) == {topic: 0}
    # Another app's topics are not this app's: deleted (the demo's, after a run).
    other = delete(kafka.bootstrap, "--prefix", f"{app}-shop", "--yes")
    assert other.exit_code == 0, other.output
    assert records(kafka, [topic]) == {topic: -1}


def test_refuses_kafkas_own_topics() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9")
    refused = prefix_refusal(settings, "__", ["__consumer_offsets", "x"])
    assert refused == "--prefix '__' would match Kafka's own topic '__consumer_offsets'; " + (
        "name another prefix"
    )
    # A demo run's topics and its worker's (app id stormvarsel-demo-<run>) may go.
    assert (
        prefix_refusal(settings, "demo-20261206-101010.", ["demo-20261206-101010.alerts"]) is None
    )
    assert prefix_refusal(settings, "stormvarsel-demo-20261206-101010-", []) is None


def test_kafka_unreachable_is_one_line() -> None:
    where = f"127.0.0.1:{free_port()}"
    result = delete(where, "--prefix", "replay.", "--timeout", "1")
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: no Kafka broker answered at {where} within 1 s")
    assert result.output.count("\n") == 1, result.output


def test_ctrl_c_while_deleting_says_what_it_left(
    kafka: LocalKafka, made: tuple[str, list[str], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, ours, _ = made

    def interrupted(*_args: object, **_kwargs: object) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(topics_module, "delete_prefixed", interrupted)
    result = delete(kafka.bootstrap, "--prefix", prefix, "--yes")
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert result.output.splitlines()[-1] == (
        f"interrupted; some topics beginning with {prefix!r} may be deleted already; run "
        f"`stormvarsel topics delete --prefix {prefix}` again to delete the rest"
    )
    assert records(kafka, ours) == {ours[0]: 3, ours[1]: 0}


def test_an_interrupted_replay_names_the_command_that_deletes_its_partial_results(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl-C in a replay with --publish-prefix leaves part of the range on its topics; the
    line said "delete them" without how (the local broker has no kafka-topics.sh)."""
    import streams.replay.command

    def interrupted(*_args: object, **_kwargs: object) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(streams.replay.command, "run_command", interrupted)
    args = ["replay", "--from", "2015-02-20", "--to", "2015-02-21", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(main, [*args, "--publish-prefix", "pm."])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    (line,) = result.output.splitlines()
    assert line == (
        "interrupted; no report written; the topics pm.* hold a partial result: delete them "
        "(`stormvarsel topics delete --prefix pm.`), or publish the next replay under another "
        "--publish-prefix"
    )


def test_the_replay_refusal_gives_kafka_topics_alone_for_a_prefix_delete_refuses() -> None:
    """``--publish-prefix mentions.`` publishes to ``mentions.alerts``, not a live topic, but
    ``topics delete --prefix mentions.`` would refuse: the advice must not name it."""
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9")
    names = ["mentions.alerts"]
    assert delete_advice(settings, "mentions.", names) == delete_command(settings, names)
    assert delete_advice(settings, "pm x.", ["pm x.alerts"]).startswith(
        "stormvarsel topics delete --prefix 'pm x.' (it lists"
    )


class LoadingCoordinator:
    """An admin client whose group coordinator is not ready (``error``) for the first ``busy``
    calls."""

    def __init__(self, busy: int, error: type[Exception] = CoordinatorNotAvailableError) -> None:
        self.busy = busy
        self.error = error
        self.calls = 0

    def describe_groups(self, groups: list[str]) -> dict[str, object]:
        self.calls += 1
        if self.calls <= self.busy:
            raise self.error("loading")
        return {groups[0]: {"members": [], "group_state": "Empty"}}

    def list_topics(self) -> list[str]:
        return ["__consumer_offsets"]


@pytest.mark.parametrize(
    "error", [CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError]
)
def test_a_coordinator_still_loading_is_waited_for(error: type[Exception]) -> None:
    """Right after the broker started, the group's coordinator answered "not available" (or
    "loading", or "not the coordinator": a CI run met that one) for a moment, and reset-state
    or grow refused at once ("try again shortly")."""
    admin = LoadingCoordinator(busy=3, error=error)
    topics_module.refuse_while_workers_run(admin, "stormvarsel", wait_s=10)  # type: ignore[arg-type]
    assert admin.calls == 4
    with pytest.raises(topics_module.StormvarselError, match=r"no coordinator .* for 0\.6 s"):
        topics_module.refuse_while_workers_run(LoadingCoordinator(busy=100), "g", wait_s=0.6)  # type: ignore[arg-type]
