"""Connection settings shared by Faust (aiokafka) and the kafka-python admin/producer clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from aiokafka import errors as aiokafka_errors
from aiokafka.conn import create_conn
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams.errors import ConfigError, StormvarselError
from streams.log_setup import get_logger
from streams.settings import Settings

log = get_logger(__name__)


class KafkaUnreachable(StormvarselError):
    """No broker answered in time; the message names the servers and what to try."""


class KafkaAccessRefused(KafkaUnreachable):
    """A broker answered, but the TLS handshake or the SASL login failed: retrying cannot help.

    The message says which, names the settings to check, and never contains a secret.
    """


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL; ConfigError naming the setting whose file is
    missing or unusable (it used to surface as "no Kafka broker answered")."""
    if settings.kafka_security_protocol not in {"SSL", "SASL_SSL"}:
        return None
    cafile, certfile, keyfile = (
        settings.kafka_ssl_cafile,
        settings.kafka_ssl_certfile,
        settings.kafka_ssl_keyfile,
    )
    for name, path in (("CAFILE", cafile), ("CERTFILE", certfile), ("KEYFILE", keyfile)):
        if path is not None and not path.is_file():
            why = "is a directory" if path.is_dir() else "does not exist"
            raise ConfigError(f"STORMVARSEL_KAFKA_SSL_{name}: {path} {why}")
    if keyfile is not None and certfile is None:
        raise ConfigError(
            "STORMVARSEL_KAFKA_SSL_KEYFILE: set STORMVARSEL_KAFKA_SSL_CERTFILE too (the client "
            "certificate that goes with the key)"
        )
    try:
        context = ssl.create_default_context(
            purpose=ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"STORMVARSEL_KAFKA_SSL_CAFILE: cannot load CA certificates from {cafile} "
            f"({_tls_reason(exc)}); expected PEM certificates"
        ) from None
    if certfile is not None:
        try:
            # An encrypted key would make OpenSSL ask for its pass phrase on the terminal.
            context.load_cert_chain(
                str(certfile), str(keyfile) if keyfile else None, password=lambda: b""
            )
        except (ssl.SSLError, OSError) as exc:
            names = "STORMVARSEL_KAFKA_SSL_CERTFILE" + (
                " / STORMVARSEL_KAFKA_SSL_KEYFILE" if keyfile else ""
            )
            raise ConfigError(
                f"{names}: cannot load the client certificate and key ({_tls_reason(exc)}); "
                "expected a PEM certificate and its unencrypted PEM private key (in the "
                "certificate file when no key file is set)"
            ) from None
    return context


def _tls_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


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


async def _open_and_close(settings: Settings, server: str, timeout_s: float) -> None:
    host, _, port = server.rpartition(":")
    secured = settings.kafka_security_protocol.startswith("SASL_")
    connection = await asyncio.wait_for(
        create_conn(
            host,
            int(port),
            client_id="stormvarsel-diagnose",
            request_timeout_ms=int(timeout_s * 1000),
            ssl_context=ssl_context(settings),
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism if secured else None,
            sasl_plain_username=settings.kafka_sasl_username if secured else None,
            sasl_plain_password=settings.sasl_password() if secured else None,
        ),
        timeout_s,
    )
    connection.close()


def diagnose_access(settings: Settings, timeout_s: float = 10.0) -> str | None:
    """Why the first broker refuses us, when it is TLS or SASL; ``None`` for anything else.

    kafka-python only reports "unable to bootstrap" when a login fails, which reads like a broker
    that is down; one direct connection with aiokafka (the library the worker itself uses) tells
    a wrong password or an untrusted certificate apart. Runs in a thread of its own, so it works
    whether or not the caller has an event loop running.
    """
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    server = settings.bootstrap_list[0]
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stormvarsel-diagnose") as pool:
            pool.submit(asyncio.run, _open_and_close(settings, server, timeout_s)).result()
    except aiokafka_errors.SaslAuthenticationFailed:
        return (
            f"Kafka at {server} refused the SASL login of user "
            f"{settings.kafka_sasl_username!r} ({settings.kafka_sasl_mechanism}): wrong user name "
            "or password; check STORMVARSEL_KAFKA_SASL_USERNAME and "
            "STORMVARSEL_KAFKA_SASL_PASSWORD (or STORMVARSEL_KAFKA_SASL_PASSWORD_FILE)"
        )
    except aiokafka_errors.UnsupportedSaslMechanismError:
        return (
            f"Kafka at {server} does not offer the SASL mechanism "
            f"{settings.kafka_sasl_mechanism}; check STORMVARSEL_KAFKA_SASL_MECHANISM"
        )
    except ssl.SSLCertVerificationError as exc:
        return (
            f"the TLS certificate of the Kafka broker at {server} could not be verified "
            f"({exc.verify_message}); set STORMVARSEL_KAFKA_SSL_CAFILE to the CA that signed it"
        )
    except ssl.SSLError as exc:
        return (
            f"the TLS handshake with Kafka at {server} failed ({exc.reason or exc}); is that a TLS "
            "listener? check STORMVARSEL_KAFKA_SECURITY_PROTOCOL and the port"
        )
    except ConfigError:
        raise  # a TLS file that cannot be used: no retry helps
    except Exception:  # down, starting, a network problem: the caller keeps retrying
        return None
    return None


class ClosingAdminClient(KafkaAdminClient):
    """A ``KafkaAdminClient`` that stops its network thread when it cannot bootstrap.

    kafka-python starts that thread before it bootstraps and raises without stopping it, so a
    probe retrying through a broker outage would leave one thread behind per attempt."""

    def __init__(self, **configs: Any) -> None:
        try:
            super().__init__(**configs)
        except BaseException:
            client, net = getattr(self, "_client", None), getattr(self, "_net", None)
            with contextlib.suppress(Exception):
                if client is not None:
                    client.close()
            with contextlib.suppress(Exception):
                if net is not None:
                    net.stop()
            raise


def connect_admin(settings: Settings, timeout_s: float = 30.0) -> KafkaAdminClient:
    """An admin client, retrying while the cluster is not reachable yet (e.g. still starting).

    A refused TLS handshake or SASL login raises :class:`KafkaAccessRefused` at once.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        remaining_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
        # Secured: one direct connection first, so a refused login fails in well under a second
        # instead of after kafka-python's bootstrap timeout.
        refused = diagnose_access(settings, timeout_s=min(10.0, remaining_ms / 1000))
        if refused is not None:
            log.error("kafka.access_refused", problem=refused)
            raise KafkaAccessRefused(refused)
        try:
            return ClosingAdminClient(
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


@contextlib.contextmanager
def kafka_logs_quiet() -> Iterator[None]:
    """Silence kafka-python's own log lines unless debugging.

    It logs every refused connection attempt and lost connection at ERROR; the commands that
    use it (ingest, topics create, replay) report an unreachable broker in one line and every
    record Kafka did not acknowledge in their own words.
    """
    library = logging.getLogger("kafka")
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    previous = library.level
    library.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        library.setLevel(previous)
