"""The one typed settings object, read from ``STORMVARSEL_*`` environment variables.

Every knob the worker, the local Kafka and the command line use lives here, so ``stormvarsel config
show`` can print the effective configuration and a bad value fails at start-up with one clear line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

import platformdirs
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.brands import BrandsFile, load_brands
from streams.errors import ConfigError
from streams.log_setup import REDACTED, add_secret
from streams.mention import (
    FORWARD_GROWTH,
    MENTION_MAX_BYTES_CEILING,
    PRODUCER_MAX_REQUEST_BYTES,
)

ENV_PREFIX = "STORMVARSEL_"
APP_NAME = "stormvarsel"


RUNBOOK_URL = "https://github.com/stormvarsel/stormvarsel/blob/main/docs/runbooks.md#brandstorm"


def default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME))


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
LogFormat = Literal["auto", "json", "console"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SentimentBackend = Literal["e5", "transformers", "lexicon"]
SentimentRuntime = Literal["onnx-int8", "onnx", "torch"]
#: Settings with a fixed set of values, taken in any case (``debug``, ``ssl``, ``JSON``).
_CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": LOG_LEVELS,
    "log_format": LOG_FORMATS,
    "kafka_security_protocol": get_args(SecurityProtocol),
    "kafka_sasl_mechanism": get_args(SaslMechanism),
    "sentiment_backend": get_args(SentimentBackend),
    "sentiment_runtime": get_args(SentimentRuntime),
}


#: Settings holding a file or directory path.
_PATH_FIELDS: tuple[str, ...] = (
    "kafka_sasl_password_file",
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "data_dir",
    "brands_file",
    "http_ingest_token_file",
    "sentiment_head",
    "detector_config",
    "alertmanager_token_file",
    "kafka_local_data_dir",
    "cache_dir",
)


#: The most partitions a pipeline topic may have (``topics grow`` keeps to it too).
MAX_TOPIC_PARTITIONS = 1024


class Settings(BaseSettings):
    """Effective configuration. Field ``x`` is read from ``STORMVARSEL_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        validate_default=True,
        frozen=True,
        # inf or nan in a duration or window got through and crashed the worker later on
        allow_inf_nan=False,
    )

    # --- Kafka connection (any cluster) ---
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a SASL_* protocol)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    kafka_sasl_password_file: Path | None = Field(
        None, description="File holding the SASL password; used when the password is not set."
    )
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")

    # --- Topics ---
    topic_prefix: str = Field(
        "",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="Prefix for every topic name, e.g. 'staging.' (empty by default).",
    )
    topic_partitions: int = Field(
        4,
        ge=1,
        le=MAX_TOPIC_PARTITIONS,
        description=f"Partitions for the pipeline topics (1..{MAX_TOPIC_PARTITIONS}).",
    )
    topic_replication: int = Field(
        1, ge=1, le=16, description="Replication factor for the pipeline topics (1..16)."
    )

    # --- Worker ---
    app_id: str = Field(
        "stormvarsel",
        # Kafka refuses topic names over 249 characters; the longest changelog name adds 27.
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="Faust app id: consumer group and changelog topic prefix.",
    )
    web_host: str = Field("127.0.0.1", description="Address the worker's HTTP server binds to.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's HTTP server.")
    web_read_timeout_s: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Seconds a client of the worker's HTTP server has to send a request's "
        "headers, or its body; also how long an idle connection is kept open.",
    )
    web_max_connections: int = Field(
        1000,
        ge=8,
        le=100_000,
        description="Connections the worker's HTTP server keeps open at once; more are "
        "answered 503 (lowered to a third of the open-files limit).",
    )
    data_dir: Path = Field(
        default_factory=lambda: default_state_dir() / "worker",
        description="Where the worker keeps its local state.",
    )
    brands_file: Path | None = Field(None, description="YAML file listing the monitored brands.")
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING or ERROR (any case).")
    log_format: LogFormat = Field(
        "auto", description="json, console, or auto (console on a terminal, JSON otherwise)."
    )

    # --- Intake ---
    mention_max_bytes: int = Field(
        65536,
        ge=1024,
        description="Largest accepted mention record, in bytes (at most 245,760: the validated "
        "record forwarded can be 4 times larger and must fit the producer's 1,000,000 bytes).",
    )

    @field_validator("mention_max_bytes")
    @classmethod
    def _mention_fits_the_producer(cls, value: int) -> int:
        """A valid mention must fit in one record when the validation stage forwards it: above
        the ceiling, the producer refused it (MessageSizeTooLargeError) and the agent crashed."""
        if value > MENTION_MAX_BYTES_CEILING:
            raise ValueError(
                f"expected at most {MENTION_MAX_BYTES_CEILING} bytes: the worker forwards a valid "
                f"mention as its validated JSON, up to {FORWARD_GROWTH} times larger (numbers "
                "such as 1e15 are written out in full), and Kafka's producer refuses records "
                f"over {PRODUCER_MAX_REQUEST_BYTES:,} bytes (max_request_size)"
            )
        return value

    max_future_skew_s: float = Field(
        3600.0, ge=0, description="How far in the future a mention's time may be, in seconds."
    )
    dedup_window_s: float = Field(
        86400.0,
        ge=0,
        description="Event-time window in which a repeated mention id is a duplicate (0: off).",
    )
    http_ingest_token: SecretStr | None = Field(
        None, description="Bearer token required by POST /mentions (secret; unset: no auth)."
    )
    http_ingest_token_file: Path | None = Field(
        None, description="File holding the bearer token; used when the token is not set."
    )
    http_max_bytes: int = Field(
        1_048_576, ge=1024, le=104_857_600, description="Largest POST /mentions body, in bytes."
    )

    # --- Sentiment scoring ---
    sentiment_backend: SentimentBackend = Field(
        "e5",
        description="e5 (offline default), transformers (any HF model) or lexicon (no torch).",
    )
    sentiment_model: str | None = Field(
        None, description="transformers backend: Hugging Face model id or local directory."
    )
    sentiment_model_revision: str | None = Field(
        None, description="transformers backend: model revision (commit) to pin."
    )
    sentiment_label_map: str | None = Field(
        None,
        description="transformers backend: class of each model label, e.g. "
        "LABEL_0=negative,LABEL_1=positive (wins over the label names).",
    )
    sentiment_head: Path | None = Field(
        None, description="e5 backend: classification head file (default: the shipped head)."
    )
    sentiment_runtime: SentimentRuntime = Field(
        "onnx-int8", description="e5 backend runtime: onnx-int8 (fastest), onnx or torch."
    )
    sentiment_batch_size: int = Field(
        256,
        ge=1,
        le=4096,
        description="Largest scoring micro-batch (mentions); sorted by length inside.",
    )
    sentiment_batch_wait_s: float = Field(
        0.25, gt=0, le=60, description="Longest wait to fill a scoring micro-batch, in seconds."
    )
    sentiment_max_length: int = Field(
        128, ge=8, le=512, description="Tokens per text kept for scoring (longer is truncated)."
    )
    sentiment_threads: int = Field(
        0, ge=0, le=256, description="Inference threads (0: one per CPU this process may use)."
    )
    sentiment_device: str = Field(
        "cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$", description="transformers backend device."
    )

    # --- Detection ---
    detector_config: Path | None = Field(
        None, description="YAML file overriding the detectors' default configuration."
    )
    detect_lateness_s: float = Field(
        60.0, ge=0, le=86400, description="Allowed lateness of mentions before buckets close."
    )
    detect_idle_close_s: float = Field(
        120.0,
        ge=1,
        le=86400,
        description="Wall-clock quiet time after which a partition's buckets close anyway, "
        "once nothing waits upstream.",
    )

    # --- Paging through Alertmanager ---
    alertmanager_urls: str = Field(
        "",
        description="Alertmanager base URLs, comma-separated (every instance of an HA cluster); "
        "empty: alerts stay on the alerts topic and nobody is paged.",
    )
    alertmanager_token: SecretStr | None = Field(
        None, description="Bearer token for Alertmanager (secret)."
    )
    alertmanager_token_file: Path | None = Field(
        None, description="File holding the Alertmanager bearer token."
    )
    notify_resend_s: float = Field(
        60.0, ge=1, le=3600, description="Seconds between re-sends of firing alerts."
    )
    notify_ttl_s: float = Field(
        14400.0,
        ge=10,
        le=86400,
        description="How long Alertmanager keeps a firing alert without a re-send (endsAt): a "
        "worker outage shorter than this neither resolves a storm nor pages it twice.",
    )
    notify_max_age_s: float = Field(
        86400.0,
        ge=0,
        description="Storm changes older than this (event time vs now) are not paged; 0: no limit.",
    )
    runbook_url: str = Field(
        RUNBOOK_URL, description="Runbook linked from BrandStorm alerts (your wiki's copy)."
    )
    grafana_url: str = Field(
        "http://127.0.0.1:3000", description="Grafana base URL for the alerts' dashboard links."
    )

    # --- Local development broker (`stormvarsel kafka ...`) ---
    kafka_version: str = Field(
        "4.4.0",
        pattern=r"^4\.\d+\.\d+$",
        description="Apache Kafka 4.x version fetched from Maven Central for the local broker.",
    )
    kafka_local_port: int = Field(
        9092, ge=1, le=65535, description="Client port of the local broker."
    )
    kafka_local_controller_port: int = Field(
        9094, ge=1, le=65535, description="KRaft controller port of the local broker."
    )
    kafka_local_data_dir: Path = Field(
        default_factory=lambda: default_state_dir() / "kafka",
        description="Data directory of the local broker.",
    )
    kafka_local_heap: str = Field(
        "512m", pattern=r"^\d+[mMgG]$", description="Java heap of the local broker, e.g. 512m."
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Download cache (Kafka jars, models).",
    )

    @field_validator(*_CHOICES, mode="before")
    @classmethod
    def _choice_in_any_case(cls, value: Any, info: ValidationInfo) -> Any:
        """A known value in any case, with spaces around, is that value (``debug`` is DEBUG,
        as logging itself takes it); anything else is left to be refused as given."""
        if isinstance(value, str) and info.field_name is not None:
            for choice in _CHOICES[info.field_name]:
                if value.strip().lower() == choice.lower():
                    return choice
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("expected host:port[,host:port...]")
        for server in servers:
            if any(ch.isspace() for ch in server):
                # Not refused by the client: it retried "broker 1:9092" until its timeout.
                raise ValueError(
                    "expected host:port[,host:port...] with no space inside an address "
                    f"(separate them with commas), got {server!r}"
                )
            _scheme, sep, rest = server.partition("://")
            if sep:
                rest = rest.rstrip("/")
                hint = f" (write {rest!r})" if rest else ""
                raise ValueError(f"expected host:port without a scheme, got {server!r}{hint}")
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port[,host:port...], got {server!r}")
        return ",".join(servers)

    @field_validator(*_PATH_FIELDS, mode="before")
    @classmethod
    def _check_path(cls, value: Any) -> Any:
        """``~`` is the user's home, as in a shell (a quoted ``~/x`` reached us unexpanded and
        made a directory named ``~``); an empty value is refused, since it read as ``.``."""
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("expected a path, got an empty value (unset it for the default)")
            value = Path(value.strip())
        if isinstance(value, Path):
            try:
                return value.expanduser()
            except RuntimeError:  # ~someone unknown, or no home directory at all
                raise ValueError(
                    "expected a path whose ~ names a user with a home directory, "
                    f"got {str(value)!r}"
                ) from None
        return value

    @field_validator("sentiment_label_map")
    @classmethod
    def _check_label_map(cls, value: str | None) -> str | None:
        from streams.sentiment.labels import LabelMappingError, parse_label_overrides

        try:
            parse_label_overrides(value)
        except LabelMappingError as exc:
            raise ValueError(str(exc)) from None
        return value.strip() if value and value.strip() else None

    @model_validator(mode="after")
    def _check_sasl(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            if self.kafka_sasl_mechanism is None:
                raise ValueError(
                    "kafka_sasl_mechanism: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 "
                    f"when kafka_security_protocol is {self.kafka_security_protocol}"
                )
            if not self.kafka_sasl_username:
                raise ValueError(
                    "kafka_sasl_username: expected a user name "
                    f"when kafka_security_protocol is {self.kafka_security_protocol}"
                )
            if self.kafka_sasl_password is None and self.kafka_sasl_password_file is None:
                raise ValueError(
                    "kafka_sasl_password: expected a password (or kafka_sasl_password_file) "
                    f"when kafka_security_protocol is {self.kafka_security_protocol}"
                )
        if self.notify_ttl_s < 2 * self.notify_resend_s:
            raise ValueError(
                "notify_ttl_s: expected at least twice notify_resend_s "
                f"({2 * self.notify_resend_s:g}), got {self.notify_ttl_s:g}"
            )
        # Before the list is split on its commas: a comma in a password would cut it in two.
        if (problem := _comma_problem("alertmanager_urls", self.alertmanager_urls)) is not None:
            raise ValueError(problem)
        has_token = self.alertmanager_token is not None or self.alertmanager_token_file is not None
        for name, url in [("alertmanager_urls", u) for u in self.alertmanager_url_list] + [
            ("grafana_url", self.grafana_url),
            ("runbook_url", self.runbook_url),
        ]:
            if url and (problem := _userinfo_problem(name, url)) is not None:
                raise ValueError(problem)
            if url and not _parses(url):
                raise ValueError(f"{name}: not a valid URL: {redact_url(url)!r}")
        for url in self.alertmanager_url_list:
            if not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"alertmanager_urls: expected http(s):// URLs, got {redact_url(url)!r}"
                )
            if has_token and _url_password(url) is not None:
                # One Authorization header per request: a bearer token or basic auth, not both.
                raise ValueError(
                    "alertmanager_urls: a URL with a password and an Alertmanager token cannot "
                    f"be combined ({redact_url(url)}); use one of them"
                )
        for name in ("grafana_url", "runbook_url"):
            url = getattr(self, name)
            if url and not url.startswith(("http://", "https://")):
                # A link in every page: a relative or javascript: one leads nowhere.
                raise ValueError(f"{name}: expected an http(s):// link, got {redact_url(url)!r}")
            if _url_password(url) is not None:
                # Both go into every page's annotations, read by everyone the page reaches.
                raise ValueError(
                    f"{name}: expected a link without a password (it is shown in every page), "
                    f"got {redact_url(getattr(self, name))!r}"
                )
        if self.kafka_local_port == self.kafka_local_controller_port:
            raise ValueError(
                "kafka_local_controller_port: expected a port different from kafka_local_port"
            )
        return self

    # --- Derived values ---
    def topic(self, name: str) -> str:
        """Full name of a pipeline topic (``mentions``, ``mentions.dlq``, ...)."""
        return f"{self.topic_prefix}{name}"

    @property
    def bootstrap_list(self) -> list[str]:
        return self.kafka_bootstrap_servers.split(",")

    def sasl_password(self) -> str | None:
        return _secret(
            self.kafka_sasl_password, self.kafka_sasl_password_file, "KAFKA_SASL_PASSWORD"
        )

    def ingest_token(self) -> str | None:
        return _secret(self.http_ingest_token, self.http_ingest_token_file, "HTTP_INGEST_TOKEN")

    def alertmanager_bearer(self) -> str | None:
        return _secret(self.alertmanager_token, self.alertmanager_token_file, "ALERTMANAGER_TOKEN")

    @property
    def alertmanager_url_list(self) -> list[str]:
        urls = [u.strip().rstrip("/") for u in self.alertmanager_urls.split(",") if u.strip()]
        for url in urls:
            password = _url_password(url)  # http://user:password@host: keep it out of logs
            add_secret(password)
            add_secret(unquote(password or ""))  # and as sent, once %2F is a / again
        return urls

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @cached_property
    def brands(self) -> BrandsFile:
        """The brands file, parsed and validated (an empty list when none is configured)."""
        if self.brands_file is None:
            return BrandsFile()
        return load_brands(self.brands_file)

    def masked(self) -> dict[str, Any]:
        """Every setting as plain values, secrets replaced by ``********``.

        Passwords written into URLs (``https://user:password@host``) are masked too.
        """
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = REDACTED
            elif isinstance(value, Path):
                shown[name] = str(value)
            elif name in _URL_FIELDS and isinstance(value, str):
                shown[name] = ",".join(redact_url(url) for url in value.split(","))
            else:
                shown[name] = value
        return shown


#: Settings holding URLs, which may carry a password in their user-info part.
_URL_FIELDS = frozenset({"alertmanager_urls", "runbook_url", "grafana_url"})


def _cut_userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, user-info, @host...)`` when a password holds ``/``, ``?`` or ``#``.

    urllib ends the host part at the first of them, so ``http://am:pa/ss@alertmanager:9093``
    reads as host ``am``, port ``pa`` and a path, with no password to mask (and with digits
    before the ``/``, as a URL to another host). Read as text instead: the last ``@`` comes
    after one of ``/?#``, with a ``:`` before it. Whatever follows that ``@`` is the host: only
    host-like text was once, so with a name in any script (``alertmanager.bücher.example``) or
    an IPv6 address with a zone id (``[fe80::1%25eth0]``) the password was shown.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return None
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=-1)
    at = rest.rfind("@")
    if cut < 0 or at < cut or ":" not in rest[:at]:
        return None  # urllib finds any user-info itself: it ends before the path
    return scheme + sep, rest[:at], rest[at:]


def _url_password(url: str) -> str | None:
    cut = _cut_userinfo(url)
    if cut is not None:
        return cut[1].partition(":")[2]
    try:
        return urlsplit(url.strip()).password
    except ValueError:
        return None


def _userinfo_problem(name: str, url: str) -> str | None:
    """The one-line refusal of a URL whose password holds ``/``, ``?`` or ``#``."""
    if _cut_userinfo(url) is None:
        return None
    return (
        f"{name}: the password in {redact_url(url)!r} holds '/', '?' or '#', which end the "
        "host part of a URL: percent-encode them in the password (/ as %2F, ? as %3F, # as "
        "%23; an @ that belongs to the path as %40)"
    )


#: Where the next URL of a comma-separated list begins: a comma before a scheme.
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def _comma_problem(name: str, urls: str) -> str | None:
    """The one-line refusal of a ``,`` in the user-info of a URL in the comma-separated ``urls``.

    The list is split on every comma, so ``https://pager:Zq,9vLx@am:9093`` became
    ``https://pager:Zq`` and ``9vLx@am:9093``, and the error about the first half showed part of
    the password. Read as text instead: each URL runs from its scheme to the next one (or from
    the start without one), and its user-info up to its last ``@``.
    The whole user-info is masked in the message: a comma may as well be in the user name."""
    for entry in _NEXT_URL.split(urls):
        scheme, sep, rest = entry.strip().partition("://")
        if not sep:
            scheme, rest = "", entry.strip()
        at = rest.rfind("@")
        if at >= 0 and "," in rest[:at]:
            shown = f"{scheme}{sep}{REDACTED}@{rest[at + 1 :].partition(',')[0]}"
            return (
                f"{name}: the user name or password in {shown!r} holds ',', which separates "
                "the URLs of this setting: percent-encode it as %2C"
            )
    return None


def _parses(url: str) -> bool:
    """Whether ``url`` splits into parts, with a valid port if it has one (``urlsplit`` raises
    for a stray ``[`` in the host part, ``.port`` for a port that is not a number)."""
    try:
        _ = urlsplit(url.strip()).port
    except ValueError:
        return False
    return True


def redact_url(url: str) -> str:
    """``url`` with the password of its user-info part replaced: for logs and ``config show``.

    A URL that does not parse is masked by its text: everything between ``://`` and the last
    ``@`` of the host part, so a password is never shown because the rest of the URL is wrong;
    so is one whose password holds ``/``, ``?`` or ``#`` (see :func:`_cut_userinfo`). Whenever
    urllib finds no password, a ``:`` and then an ``@`` after ``://`` are masked all the same
    (:func:`_mask_to_last_at`), so a URL read differently here and by urllib shows none."""
    userinfo_cut = _cut_userinfo(url)
    if userinfo_cut is not None:  # a password holding / ? or #: all the user-info is masked
        return f"{userinfo_cut[0]}{REDACTED}{userinfo_cut[2]}"
    if "://" not in url and "@" in url:
        # No scheme: urllib reads ``user:password@host`` as scheme ``user``, with no password.
        return f"{REDACTED}@{url.rpartition('@')[2]}"
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        scheme, sep, rest = url.partition("://")
        cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        userinfo, at, host = rest[:cut].rpartition("@")
        if not at:
            return _mask_to_last_at(url)
        user = userinfo.partition(":")[0]
        return f"{scheme}{sep}{user}:{REDACTED}@{host}{rest[cut:]}"
    if password is None:
        return _mask_to_last_at(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{REDACTED}@{host}"))


def _mask_to_last_at(url: str) -> str:
    """``url`` masked from ``://`` to its last ``@`` when a ``:`` comes before that ``@`` (what
    may be a password), else as it is: ``https://user@host`` and ``https://host/@team`` keep
    everything."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{REDACTED}@{host}"


_EMPTY_SECRET = "expected a secret, got an empty value (unset it instead)"  # noqa: S105 (a message)


def _secret(value: SecretStr | None, file: Path | None, name: str) -> str | None:
    """A secret given directly, else read from its file (``<NAME>_FILE``), else None; with
    the spaces and line ends around it removed.

    An empty one is refused rather than taken as "no secret": an empty token file or an unset
    shell variable in a deployment must not silently turn authentication off. Whatever is
    returned is registered with the log scrubber before the caller sees it.
    """
    if value is not None:
        # Stripped like a file's: a value set from a file (Kubernetes ``--from-file``, ``$(cat
        # f)`` keeps it, some tools do not) often ends in a newline, which no HTTP header
        # carries, and every collector was refused with 401.
        secret = value.get_secret_value().strip()
        where = f"{ENV_PREFIX}{name}"
    elif file is None:
        return None
    else:
        where = f"{ENV_PREFIX}{name}_FILE"
        try:
            secret = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {file}: {exc.strerror}") from exc
    if not secret.strip():
        raise ConfigError(f"{where}: {_EMPTY_SECRET}")
    add_secret(secret)
    return secret


def describe_error(exc: ValidationError, *, prefix: str = ENV_PREFIX) -> str:
    """The first pydantic error as one line: the env key, what is expected, what was given."""
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err.get("loc", ()) if part != "__root__"]
    message = err.get("msg", "invalid value")
    message = message.removeprefix("Value error, ")
    if not loc:
        # Model-level validators name the field at the start of their message.
        field, _, rest = message.partition(": ")
        return f"{prefix}{field.upper()}: {rest}" if rest else message
    key = prefix + "_".join(loc).upper()
    given = err.get("input")
    expected = _expected_form(err, message)
    # A validator's own message may already say what it got (the one bad part of a list).
    if isinstance(given, str | int | float) and ", got " not in expected:
        return f"{key}: {expected}, got {given!r}"
    return f"{key}: {expected}"


def _expected_form(err: Any, message: str) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '?')}"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return "expected a whole number"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return f"expected a number {message.removeprefix('Input should be ')}"
    if kind == "finite_number":
        return "expected a finite number"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {ctx.get('pattern', '?')}"
    if message.startswith("expected"):
        return message
    return f"expected a valid value ({message})"


def env_origin(name: str, environ: Mapping[str, str]) -> str | None:
    """The variable that sets the field ``name``, as it is written in ``environ`` (settings are
    read in any case: ``stormvarsel_topic_prefix`` sets ``topic_prefix`` too), or None."""
    wanted = f"{ENV_PREFIX}{name}".upper()
    if wanted in environ:
        return wanted
    return next((key for key in sorted(environ) if key.upper() == wanted), None)


def spelt_twice(environ: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """Settings given by more than one variable differing only in case, each with those names.

    pydantic-settings reads names in any case and keeps whichever comes last in the
    environment, an order nobody chose; ``config show`` could not say which one is in effect.
    """
    spellings: dict[str, list[str]] = {}
    for key in sorted(environ):
        if key.upper().startswith(ENV_PREFIX):
            spellings.setdefault(key.upper(), []).append(key)
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    return [(name, keys) for name, keys in spellings.items() if len(keys) > 1 and name in known]


#: STORMVARSEL_* variables that are not settings but are read elsewhere (docker-compose.yml).
NOT_SETTINGS = frozenset({f"{ENV_PREFIX}IMAGE_TAG"})


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``STORMVARSEL_*`` variables no setting reads (a typo is otherwise silently ignored),
    each with the setting it most resembles, if any."""
    known = [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]
    found = []
    for name in sorted(environ):
        # In any case, as pydantic-settings reads them: STORMVARSEL_topic_prefix is a setting,
        # stormvarsel_topic_prefx a typo.
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known and name not in NOT_SETTINGS:
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
            found.append((name, close[0] if close else None))
    return found


_TLS_FIELDS = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
_SASL_FIELDS = (
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_sasl_password_file",
)


def idle_settings(settings: Settings) -> list[tuple[str, str]]:
    """Kafka security settings that are set but unused under the chosen protocol, each with the
    protocols that would use it: a CA file given while the protocol is PLAINTEXT means the
    connection is not encrypted, which the operator most likely did not intend."""
    protocol = settings.kafka_security_protocol
    idle: list[tuple[str, str]] = []
    if protocol not in ("SSL", "SASL_SSL"):
        idle += [(name, "SSL or SASL_SSL") for name in _TLS_FIELDS if getattr(settings, name)]
    if not protocol.startswith("SASL_"):
        idle += [
            (name, "SASL_PLAINTEXT or SASL_SSL")
            for name in _SASL_FIELDS
            if getattr(settings, name) is not None
        ]
    return idle


#: Secrets read from a file when not given directly (``_secret``): field, the direct value's field,
#: and whether the field is a Kafka SASL one (idle unless the protocol is SASL_*).
_SECRET_FILES: tuple[tuple[str, str, bool], ...] = (
    ("kafka_sasl_password_file", "kafka_sasl_password", True),
    ("http_ingest_token_file", "http_ingest_token", False),
    ("alertmanager_token_file", "alertmanager_token", False),
)


def _file_problem(path: Path, *, pem: bool) -> str | None:
    """Why ``path`` cannot serve as the file a setting names, or None. Only what any reader of
    it needs is checked: a PEM file's contents are left to the TLS library."""
    if not path.exists():
        return "does not exist"
    if path.is_dir():
        return "is a directory"
    if not path.is_file():
        return "is not a regular file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if pem:
        return None if b"-----BEGIN" in data else "holds no PEM block (no -----BEGIN line)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    return None if text.strip() else "is empty"


def file_problems(settings: Settings) -> list[str]:
    """One line per file setting in effect that the worker could not use, e.g.
    ``STORMVARSEL_KAFKA_SSL_CAFILE=/x: is a directory``: the TLS files (which must hold a PEM
    block) under SSL or SASL_SSL, and the secrets' ``..._FILE`` settings when no value is given
    directly (the password's only under SASL_*). A secret given directly but empty is one line
    too (``STORMVARSEL_HTTP_INGEST_TOKEN: expected a secret, ...``): the worker refuses it as it
    refuses an empty file (:func:`_secret`). Settings that are idle for the protocol
    (:func:`idle_settings`) are not read."""
    protocol = settings.kafka_security_protocol
    files: list[tuple[str, Path, bool]] = []
    if protocol in ("SSL", "SASL_SSL"):
        files += [(name, path, True) for name in _TLS_FIELDS if (path := getattr(settings, name))]
    empty: list[str] = []
    for name, direct, sasl in _SECRET_FILES:
        if sasl and not protocol.startswith("SASL_"):
            continue
        value: SecretStr | None = getattr(settings, direct)
        path = getattr(settings, name)
        if value is not None:  # given directly: its file is not read
            if not value.get_secret_value().strip():
                empty.append(f"{ENV_PREFIX}{direct.upper()}: {_EMPTY_SECRET}")
        elif path is not None:
            files.append((name, path, False))
    problems = []
    for name, path, pem in files:
        problem = _file_problem(path, pem=pem)
        if problem is not None:
            problems.append(f"{ENV_PREFIX}{name.upper()}={path}: {problem}")
    return problems + empty


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment; raise ConfigError with one readable line."""
    if twice := spelt_twice(os.environ):
        name, keys = twice[0]
        raise ConfigError(
            f"{name}: set twice, as {' and '.join(keys)} (names are read in any case); keep one"
        )
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc)) from None
    return settings
