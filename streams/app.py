"""The Faust application: topics, agents and web views, built from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust
import yaml
from faust.exceptions import ConsumerNotStarted
from faust.web import Web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from detectors.config import DetectorConfig
from streams import consumer_lag, http_ingest, kafka_fixes, metrics
from streams import topics as topic_names
from streams.agents import detect, notify, score, validate
from streams.alertmanager import Links
from streams.brand_matching import BrandMatcher
from streams.detector_seeds import seed_function
from streams.errors import ConfigError
from streams.kafka_clients import faust_credentials
from streams.log_setup import get_logger
from streams.mention import Limits
from streams.sentiment.factory import load_scorer
from streams.settings import Settings
from streams.topic_limit import TopicLimit, worker_topic_limit
from streams.upstream import UpstreamProbe
from streams.web_listener import PreboundWeb, WebLimits

log = get_logger(__name__)


@dataclass(frozen=True)
class Topics:
    mentions: faust.TopicT
    dlq: faust.TopicT
    valid: faust.TopicT
    scored: faust.TopicT
    alerts: faust.TopicT


class WorkerApp(faust.App):
    """A Faust app whose web server may serve on a socket the worker bound before starting."""

    web_listeners: list[socket.socket] | None = None
    web_limits: WebLimits = WebLimits()
    #: Set once the tables are recovered and the sentiment model is loaded (``/healthz``).
    ready_to_work: bool = False

    def mark_ready(self) -> None:
        self.ready_to_work = True

    def _new_web(self) -> Web:
        if self.web_listeners is None:
            return super()._new_web()
        return PreboundWeb(self, self.web_listeners, self.web_limits)


def _topic(app: faust.App, settings: Settings, name: str) -> faust.TopicT:
    # Raw bytes in and out: the agents parse and validate JSON themselves so that nothing a
    # collector sends can crash the stream; bad input goes to the dead-letter topic instead.
    return app.topic(
        settings.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
        replicas=settings.topic_replication,
    )


def load_detector_config(settings: Settings) -> DetectorConfig:
    """The detectors' configuration (defaults, or the YAML file named in the settings), with the
    brands file's time zones."""
    return with_brand_timezones(_detector_yaml(settings), settings)


def with_brand_timezones(config: DetectorConfig, settings: Settings) -> DetectorConfig:
    """``config`` with the ``timezone`` of each brand in the brands file that names one."""
    zones = settings.brands.timezones()
    return config.with_brand_timezones(zones) if zones else config


def _detector_yaml(settings: Settings) -> DetectorConfig:
    path = settings.detector_config
    if path is None:
        return DetectorConfig()
    try:
        return DetectorConfig.from_yaml(path)
    except OSError as exc:
        raise ConfigError(
            f"STORMVARSEL_DETECTOR_CONFIG: cannot read {path} ({exc.strerror})"
        ) from None
    except (ValueError, yaml.YAMLError) as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"STORMVARSEL_DETECTOR_CONFIG: {path}: {message}") from None


def build_app(
    settings: Settings,
    *,
    mention_partitions: int | None = None,
    scored_partitions: int | None = None,
    alerts_partitions: int | None = None,
    web_listeners: list[socket.socket] | None = None,
    seeds: Mapping[str, Any] | None = None,
) -> tuple[WorkerApp, Topics]:
    """The app with every stage registered.

    ``mention_partitions`` is the real partition count of the mentions topic (it may predate the
    current configuration); the de-duplication table must match it. ``web_listeners``, when
    given, are the sockets the web server serves on (see ``streams.web_listener``). ``seeds``:
    brands' detectors and firing alerts carried over from before the topics grew
    (``streams.detector_seeds``).
    """
    kafka_fixes.install()  # Faust/aiokafka bugs the chaos tests found (see the module)
    app = WorkerApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_list],
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # Only our own views (/metrics, /healthz, POST /mentions): Faust's built-in /table views
        # would serve table data (dedup ids, detector state, alert records) to anyone who can
        # reach the port, and /router, /stats and /graph describe the cluster's internals.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        producer_acks=-1,
        autodiscover=False,
    )
    app.web_listeners = web_listeners
    app.web_limits = WebLimits(settings.web_read_timeout_s, settings.web_max_connections)
    topics = Topics(
        mentions=_topic(app, settings, topic_names.MENTIONS),
        dlq=_topic(app, settings, topic_names.MENTIONS_DLQ),
        valid=_topic(app, settings, topic_names.MENTIONS_VALID),
        scored=_topic(app, settings, topic_names.MENTIONS_SCORED),
        alerts=_topic(app, settings, topic_names.ALERTS),
    )
    brands = settings.brands
    matcher = BrandMatcher.from_file(brands)
    limits = Limits(
        max_bytes=settings.mention_max_bytes, max_future_skew_s=settings.max_future_skew_s
    )

    def destination_limit(topic: faust.TopicT, stage: str) -> TopicLimit:
        return worker_topic_limit(app, settings, topic.get_topic_name(), event=stage)

    # One reading of the dead-letter topic's limit for the three stages' dead letters.
    dlq_limit = destination_limit(topics.dlq, "dead_letter")
    valid_limit = destination_limit(topics.valid, "validate")
    scored_limit = destination_limit(topics.scored, "score")
    # Read for the producer's batch size alone: the detect stage's alert records are not checked.
    alerts_limit = destination_limit(topics.alerts, "alerts")

    @app.task
    async def fit_producer_batches() -> None:
        """Read the limits of the topics the stages write at start-up: each read lowers the
        producer's record batch size to fit it (``streams.kafka_send.fit_batches``; Kafka
        applies ``max.message.bytes`` to a whole batch). A stage reads its destination's limit
        before its first send too, and again every minute."""
        for limit in (valid_limit, scored_limit, dlq_limit, alerts_limit):
            await limit.get()

    validate.register(
        app,
        source=topics.mentions,
        valid=topics.valid,
        dlq=topics.dlq,
        matcher=matcher,
        config=validate.ValidateConfig(
            limits=limits,
            dedup_window_ms=int(settings.dedup_window_s * 1000),
            partitions=mention_partitions or settings.topic_partitions,
        ),
        valid_limit=valid_limit,
        dlq_limit=dlq_limit,
    )
    score.register(
        app,
        source=topics.valid,
        scored=topics.scored,
        dlq=topics.dlq,
        scorer_factory=lambda: load_scorer(
            settings, say=lambda m: log.info("scorer.prepare", step=m)
        ),
        on_loaded=app.mark_ready,
        config=score.ScoreConfig(
            batch_size=settings.sentiment_batch_size, batch_wait_s=settings.sentiment_batch_wait_s
        ),
        scored_limit=scored_limit,
        dlq_limit=dlq_limit,
    )
    detector_config = load_detector_config(settings)
    upstream = UpstreamProbe(
        settings,
        settings.app_id,
        [topics.mentions.get_topic_name(), topics.valid.get_topic_name()],
        max_age_s=max(120.0, 3 * detect.timer_interval(settings.detect_idle_close_s)),
    )
    detect.register(
        app,
        source=topics.scored,
        alerts=topics.alerts,
        dlq=topics.dlq,
        dlq_limit=dlq_limit,
        config=detect.DetectConfig(
            detector=detector_config,
            lateness_ms=int(settings.detect_lateness_s * 1000),
            idle_close_s=settings.detect_idle_close_s,
            partitions=scored_partitions or settings.topic_partitions,
            voices=brands.voices(detector_config.baseline.timezone),
            # Copies are dropped whenever de-duplication is on (off: tests comparing with the
            # pure core, which has no ids).
            copy_window_records=detect.COPY_WINDOW_RECORDS if settings.dedup_window_s > 0 else 0,
            upstream_caught_up=upstream.caught_up,
            source_read_to=lambda parts: upstream.read_to(topics.scored.get_topic_name(), parts),
            seed=seed_function(seeds or {}, detector_config),
            followed=frozenset(b.id for b in brands.brands) if brands.brands else None,
        ),
    )

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust types reject async receivers
    async def close_upstream_probe(sender: Any, *args: Any, **kwargs: Any) -> None:
        await asyncio.to_thread(upstream.close)

    if settings.alertmanager_url_list:
        notify.register(
            app,
            source=topics.alerts,
            config=notify.NotifyConfig(
                urls=settings.alertmanager_url_list,
                links=Links(runbook_url=settings.runbook_url, grafana_url=settings.grafana_url),
                partitions=alerts_partitions or settings.topic_partitions,
                token=settings.alertmanager_bearer(),
                resend_s=settings.notify_resend_s,
                ttl_s=settings.notify_ttl_s,
                max_age_s=settings.notify_max_age_s,
                carried=notify.carried_alerts(seeds or {}),
            ),
        )
    else:
        log.info("notify.off", hint="set STORMVARSEL_ALERTMANAGER_URLS to page through it")
    ingest_token = settings.ingest_token()
    if ingest_token is None and settings.web_host not in {"127.0.0.1", "localhost", "::1"}:
        log.warning(
            "http.ingest_open",
            web_host=settings.web_host,
            hint="POST /mentions takes mentions from anyone who reaches this port; "
            "set STORMVARSEL_HTTP_INGEST_TOKEN (or _FILE)",
        )
    http_ingest.register(
        app,
        mentions=topics.mentions,
        limits=limits,
        matcher=matcher,
        token=ingest_token,
        max_bytes=settings.http_max_bytes,
        read_timeout_s=settings.web_read_timeout_s,
        settings=settings,
    )
    consumer_lag.register(
        app,
        settings,
        [t.get_topic_name() for t in (topics.mentions, topics.valid, topics.scored, topics.alerts)],
    )
    metrics.initialise([brand.id for brand in brands.brands], detector_config.bucket_minutes * 60)
    _register_views(app)
    return app, topics


def _register_views(app: WorkerApp) -> None:
    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        # Faust starts its web server before the consumer, the tables' recovery and the model's
        # load: until those are done the worker is "starting" (503), not ready and not broken.
        # A worker with no partitions (more workers than partitions) is still healthy.
        status, partitions = "stopping", 0
        if app.started and not app.should_stop:
            status = "starting"
            if app.ready_to_work:
                with contextlib.suppress(ConsumerNotStarted):
                    status, partitions = "ok", len(app.consumer.assignment())
        # Said, not acted on: the worker rides out an outage, and restarting it would not help.
        kafka_up = REGISTRY.get_sample_value("stormvarsel_kafka_up") != 0
        body = {
            "status": status,
            "kafka": "up" if kafka_up else "unreachable",
            "rebalancing": bool(app.rebalancing),
            "partitions": partitions,
        }
        return web.json(body, status=200 if status == "ok" else 503)
