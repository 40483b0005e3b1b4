"""Shared fixtures: one real local Kafka broker for the whole test session (and an admin
client of it), and the guard that a test using a real component is marked ``integration``."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from kafka import KafkaAdminClient

from streams.kafka_local import LocalKafka, LocalKafkaError, free_port
from streams.log_setup import configure_logging
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# Fixtures `receiver`, `start_alertmanager` and `am` (a real Alertmanager) for the alerting tests.
pytest_plugins = ["tests.alertmanager_support"]

#: Fixtures that start a real component: the session's Kafka broker, and an Alertmanager
#: process (``am`` and every other one the tests start come from ``start_alertmanager``). A test
#: that uses one, directly or through another fixture, must be marked ``integration``.
REAL_COMPONENT_FIXTURES = frozenset({"kafka", "start_alertmanager"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse to run when a test starts a real component without the ``integration`` marker,
    so that ``-m "not integration"`` never starts one; runs before ``-m`` deselects."""
    unmarked = []
    for item in items:
        used = REAL_COMPONENT_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used and item.get_closest_marker("integration") is None:
            unmarked.append(f"  {item.nodeid} (uses {', '.join(sorted(used))})")
    if unmarked:
        raise pytest.UsageError(
            "tests that use a real component must be marked @pytest.mark.integration"
            " (or a module-level `pytestmark = pytest.mark.integration`):\n" + "\n".join(unmarked)
        )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the STORMVARSEL_* variables they set themselves."""
    for name in list(os.environ):
        if name.upper().startswith("STORMVARSEL_"):  # read in any case
            monkeypatch.delenv(name)


def make_broker(data_dir: Path) -> LocalKafka:
    defaults = Settings()
    return LocalKafka(
        version=defaults.kafka_version,
        data_dir=data_dir,
        cache_dir=defaults.cache_dir,
        port=free_port(),
        controller_port=free_port(),
        heap="384m",
    )


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A real single-node Kafka (KRaft) on 127.0.0.1, shared by the session's integration tests."""
    broker = make_broker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start(timeout_s=90)
    except LocalKafkaError as exc:
        pytest.fail(f"the local Kafka broker could not start: {exc}")
    yield broker
    broker.stop()


@pytest.fixture
def admin(kafka: LocalKafka) -> Iterator[KafkaAdminClient]:
    """An admin client of the session's broker, for a test to make or change topics."""
    client = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    yield client
    client.close()


@pytest.fixture
def log_output() -> Iterator[Callable[[str], io.StringIO]]:
    """Configure the project's logging into a buffer; put the root logger back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def configure(log_format: str) -> io.StringIO:
        out = io.StringIO()
        configure_logging("DEBUG", log_format)
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(out)
        return out

    yield configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    # Back to structlog's defaults in the same processor list: reset_defaults() alone makes a
    # new list, and a logger cached earlier (a module's logger first used in-process after a
    # CLI test's set-up) kept the old one, so a later test's capture_logs missed its events.
    processors = structlog.get_config()["processors"]
    structlog.reset_defaults()
    processors[:] = structlog.get_config()["processors"]
    structlog.configure(processors=processors)
