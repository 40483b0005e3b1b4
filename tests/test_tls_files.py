"""TLS files that cannot be used are named at once, not reported as an unreachable broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.kafka_clients import ssl_context
from streams.kafka_local import free_port
from streams.settings import Settings
from tests.tls_support import _openssl, _self_signed_ca, needs_openssl


def tls(**files: Path) -> Settings:
    return Settings(
        kafka_security_protocol="SSL", **{f"kafka_ssl_{k}": v for k, v in files.items()}
    )


def refusal(settings: Settings) -> str:
    with pytest.raises(ConfigError) as caught:
        ssl_context(settings)
    return str(caught.value)


def test_a_missing_or_unreadable_ca_file_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    assert refusal(tls(cafile=missing)) == f"STORMVARSEL_KAFKA_SSL_CAFILE: {missing} does not exist"
    assert refusal(tls(cafile=tmp_path)).endswith(f"{tmp_path} is a directory")
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    message = refusal(tls(cafile=not_pem))
    assert message.startswith(
        f"STORMVARSEL_KAFKA_SSL_CAFILE: cannot load CA certificates from {not_pem}"
    )


def test_a_key_without_its_certificate_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("")
    assert refusal(tls(keyfile=key)).startswith(
        "STORMVARSEL_KAFKA_SSL_KEYFILE: set STORMVARSEL_KAFKA_SSL_CERTFILE too"
    )


@needs_openssl
def test_a_good_ca_and_client_pair_load_and_a_mismatched_or_locked_key_is_named(
    tmp_path: Path,
) -> None:
    key, cert = _self_signed_ca(tmp_path, "client")
    _, other_cert = _self_signed_ca(tmp_path, "other")
    assert ssl_context(tls(cafile=cert, certfile=cert, keyfile=key)) is not None
    message = refusal(tls(certfile=other_cert, keyfile=key))
    assert message.startswith(
        "STORMVARSEL_KAFKA_SSL_CERTFILE / STORMVARSEL_KAFKA_SSL_KEYFILE: cannot load"
    )
    locked = tmp_path / "locked.key"
    _openssl(
        "pkey", "-in", str(key), "-out", str(locked), "-aes256", "-passout", "pass:x", cwd=tmp_path
    )
    # Before: OpenSSL asked for the pass phrase on the terminal (stdin here is closed).
    assert "cannot load the client certificate" in refusal(tls(certfile=cert, keyfile=locked))


def test_the_command_line_names_the_file_instead_of_waiting_for_kafka(tmp_path: Path) -> None:
    """Before: "no Kafka broker answered at ... (FileNotFoundError)" after the whole timeout."""
    env = {
        **os.environ,
        "STORMVARSEL_KAFKA_SECURITY_PROTOCOL": "SSL",
        "STORMVARSEL_KAFKA_SSL_CAFILE": str(tmp_path / "ca.pem"),
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "topics", "create", "--timeout", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: STORMVARSEL_KAFKA_SSL_CAFILE: {tmp_path / 'ca.pem'} does not exist"
    )
