"""Run the Faust worker: topics first, then the app, with structlog and graceful SIGTERM."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

import faust

from streams.app import build_app, load_detector_config
from streams.detector_seeds import load_seeds
from streams.errors import ConfigError
from streams.log_setup import configure_logging, get_logger
from streams.settings import Settings, file_problems, redact_url
from streams.topics import (
    ALERTS,
    MENTIONS,
    MENTIONS_SCORED,
    ensure_internal_topics,
    ensure_topics,
    faust_internal_topics,
)
from streams.web_listener import bind_web_sockets

log = get_logger(__name__)


def check_data_dir(path: Path) -> None:
    """Create the worker's state directory (tables' local stores) and try a file in it: Faust
    would fail on it only after joining the group, with a traceback in its log."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f"STORMVARSEL_DATA_DIR: cannot write in {path} ({exc.strerror or exc}); point it at "
            "a writable directory"
        ) from None


def check_sentiment_head(settings: Settings) -> None:
    """A ``STORMVARSEL_SENTIMENT_HEAD`` that cannot be loaded, as one line before Kafka: the
    scoring stage would fail on it only after joining the group, with two tracebacks."""
    if settings.sentiment_backend != "e5" or settings.sentiment_head is None:
        return
    from streams.sentiment.e5_scorer import Head, HeadError

    try:
        Head.load(settings.sentiment_head)
    except HeadError as exc:
        raise ConfigError(f"STORMVARSEL_SENTIMENT_HEAD: {exc}") from None


class Worker(faust.Worker):  # type: ignore[misc]
    """faust's Worker, remembering which signal stopped it: SIGTERM and SIGINT shut it down
    the same clean way, but the command exits 130 after a Ctrl-C, 0 after SIGTERM.

    Named ``Worker`` like faust's: mode labels a service's log lines with its class name, and
    "[^Worker]: Ready" is the line that says the worker has started (a subclass named
    ``_Worker`` logged "[^_Worker]: Ready", and a test waiting for the usual line timed out).
    """

    stopped_by: signal.Signals | None = None

    def _on_sigint(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGINT
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGTERM
        super()._on_sigterm()


def run_worker(settings: Settings, *, wait_for_kafka_s: float = 60.0) -> signal.Signals | None:
    """Block until the worker stops: SIGTERM or SIGINT shut it down cleanly (offsets committed,
    producer flushed), and the signal is returned. A Ctrl-C before Faust has installed its
    handlers (while checking the settings, waiting for Kafka, creating topics) is a
    ``KeyboardInterrupt``; nothing has been read then."""
    config = configure_logging(settings.log_level, settings.log_format)
    if problems := file_problems(settings):  # a CA file that is a directory, a secret unreadable
        raise ConfigError("; ".join(problems))
    brands = settings.brands  # fail early on a bad brands file, before touching Kafka
    load_detector_config(settings)  # and on a bad detector configuration
    check_sentiment_head(settings)  # and on a head file that is not one
    # and on a port another program holds: bound now, served by Faust later
    listeners = bind_web_sockets(settings.web_host, settings.web_port)
    check_data_dir(settings.data_dir)  # and on a state directory it cannot write
    states = ensure_topics(settings, timeout_s=wait_for_kafka_s)
    partitions = {s.name: s.partitions for s in states}
    seeds = load_seeds(settings, timeout_s=wait_for_kafka_s)  # from before the topics grew
    app, _topics = build_app(
        settings,
        mention_partitions=partitions[settings.topic(MENTIONS)],
        scored_partitions=partitions[settings.topic(MENTIONS_SCORED)],
        alerts_partitions=partitions[settings.topic(ALERTS)],
        web_listeners=listeners,
        seeds=seeds,
    )
    # Faust's changelogs too, before it subscribes to them (see ensure_internal_topics).
    ensure_internal_topics(settings, faust_internal_topics(app), timeout_s=wait_for_kafka_s)
    log.info(
        "worker.starting",
        app_id=settings.app_id,
        bootstrap=settings.kafka_bootstrap_servers,
        topics=partitions,
        brands=[b.id for b in brands.brands],
        carried_over=len(seeds),  # brands' detectors kept when the topics grew
        web=f"http://{settings.web_host}:{settings.web_port}",
        alertmanager=[redact_url(url) for url in settings.alertmanager_url_list] or None,
    )
    worker = Worker(
        app,
        loglevel=settings.log_level,
        logging_config=config,
        quiet=True,
        redirect_stdouts=False,
    )
    # mode's Worker installs SIGTERM/SIGINT handlers that stop every service (committing offsets,
    # flushing the producer) and then exits 0 either way; execute_from_commandline never returns.
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    log.info("worker.stopped", signal=None if worker.stopped_by is None else worker.stopped_by.name)
    return worker.stopped_by
