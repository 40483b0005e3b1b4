"""Connection settings shared by Faust (aiokafka) and the kafka-python admin/producer clients."""

from __future__ import annotations

import ssl
import time
from typing import Any

import faust
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams.errors import StormvarselError
from streams.log_setup import get_logger
from streams.settings import Settings

log = get_logger(__name__)


class KafkaUnreachable(StormvarselError):
    """No broker answered in time; the message names the servers and what to try."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.kafka_security_protocol not in {"SSL", "SASL_SSL"}:
        return None
    context = ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH,
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
    )
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    return context


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Credentials object for ``faust.App(broker_credentials=...)``."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.sasl_password(),
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )


def client_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """Keyword arguments for kafka-python clients (admin, producer, consumer)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_list,
        "client_id": client_id,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.sasl_password()
    return config


def connect_admin(settings: Settings, timeout_s: float = 30.0) -> KafkaAdminClient:
    """An admin client, retrying while the cluster is not reachable yet (e.g. still starting)."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        remaining_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
        try:
            return KafkaAdminClient(
                **client_config(settings, "stormvarsel-admin"),
                request_timeout_ms=10_000,
                bootstrap_timeout_ms=min(10_000, remaining_ms),
            )
        except (KafkaError, OSError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise KafkaUnreachable(
                f"no Kafka broker answered at {settings.kafka_bootstrap_servers} within "
                f"{timeout_s:.0f} s ({type(last_error).__name__}); start one with "
                "`stormvarsel kafka start` or set STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS"
            )
        log.info("kafka.waiting", servers=settings.kafka_bootstrap_servers)
        time.sleep(1.0)
