"""Security without a broker: the container user, the ingest token check, and secrets kept out of
``config show`` and logs, whether they come from the environment or from files."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams import http_ingest
from streams.cli import main
from streams.errors import ConfigError
from streams.http_ingest import authorised
from streams.log_setup import get_logger, redact
from streams.settings import load_settings, redact_url
from tests.conftest import REPO
from tests.test_compose import dockerfile_instructions

DOCKERFILE = REPO / "deploy" / "worker" / "Dockerfile"
SASL_PASSWORD = "sasl-pw-Q7x1"
INGEST_TOKEN = "ingest-token-Zk93"
AM_TOKEN = "am-token-Lp02"
URL_PASSWORD = "url-pw-Hh55"
SECRETS = (SASL_PASSWORD, INGEST_TOKEN, AM_TOKEN, URL_PASSWORD)


# --- the container ---


def final_stage(path: Path) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_the_worker_image_runs_as_an_unprivileged_user() -> None:
    stage = final_stage(DOCKERFILE)
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users, "the runtime stage has no USER: the worker would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"0", "root"} and group not in {"0", "root"}, users[-1]
    # After USER nothing switches back: USER is the last word on who runs the process.
    last_user = max(i for i, (keyword, _) in enumerate(stage) if keyword == "USER")
    assert not [k for k, _ in stage[last_user:] if k == "RUN"], "RUN after USER runs as that user"
    # The numeric id belongs to a system account created in this stage, with no login shell.
    runs = " ".join(args for keyword, args in stage if keyword == "RUN")
    arg_defaults = dict(
        args.split("=", 1) for keyword, args in stage if keyword == "ARG" and "=" in args
    )
    uid = re.search(r"useradd[^&]*--uid\s+\"?\$\{?(\w+)\}?\"?", runs)
    assert uid and arg_defaults.get(uid.group(1)) == user, (uid, arg_defaults, user)
    assert "--system" in runs and "/usr/sbin/nologin" in runs
    # It owns its data directory only; the code and the virtualenv stay root's (read-only to it).
    env = " ".join(args for keyword, args in stage if keyword == "ENV")
    data_dir = re.search(r"STORMVARSEL_DATA_DIR=(\S+)", env)
    assert data_dir and f"chown stormvarsel:stormvarsel {data_dir.group(1)}" in runs
    assert "chown -R stormvarsel" not in runs and "/app" not in runs.split("chown", 1)[-1]


def test_no_secret_is_baked_into_the_image() -> None:
    for keyword, args in final_stage(DOCKERFILE):
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert not re.search(r"(PASSWORD|TOKEN|SECRET)\w*=", args, re.IGNORECASE), args


# --- the ingest token ---


def test_bearer_token_is_checked_exactly() -> None:
    token = INGEST_TOKEN
    assert authorised(f"Bearer {token}", token)
    assert authorised(f"bearer  {token} ", token)
    for header in (
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {token[:-1]}",
        f"Bearer {token}x",
        f"Bearer {token.upper()}",
        f"Basic {token}",
        token,
        f"Token {token}",
        "Bearer \u00e6\u00f8\u00e5",
        "Bearer \udcff",
    ):
        assert not authorised(header, token), header
    assert authorised(None, None)  # no token configured: open (the worker warns when exposed)


def test_bearer_token_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check goes through hmac.compare_digest on two 32-byte digests, whatever was sent:
    neither the length of the token nor how much of it was right changes what is compared."""
    seen: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(http_ingest.hmac, "compare_digest", spy)
    headers = [None, "Basic x", "Bearer a", f"Bearer {INGEST_TOKEN}", "Bearer " + "x" * 5000]
    for header in headers:
        authorised(header, INGEST_TOKEN)
    assert seen == [(32, 32)] * len(headers)
    assert hashlib.sha256(INGEST_TOKEN.encode()).digest_size == 32


# --- secrets in settings, config show and logs ---


def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, from_files: bool) -> None:
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_USERNAME", "stormvarsel")
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", "https://am1.example:9093")
    values = {
        "KAFKA_SASL_PASSWORD": SASL_PASSWORD,
        "HTTP_INGEST_TOKEN": INGEST_TOKEN,
        "ALERTMANAGER_TOKEN": AM_TOKEN,
    }
    for name, value in values.items():
        if from_files:
            path = tmp_path / name.lower()
            path.write_text(value + "\n", encoding="utf-8")
            path.chmod(0o600)
            monkeypatch.setenv(f"STORMVARSEL_{name}_FILE", str(path))
        else:
            monkeypatch.setenv(f"STORMVARSEL_{name}", value)


@pytest.mark.parametrize("from_files", [False, True], ids=["env", "files"])
def test_secrets_are_read_but_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, from_files: bool
) -> None:
    secret_env(monkeypatch, tmp_path, from_files)
    settings = load_settings()
    assert settings.sasl_password() == SASL_PASSWORD
    assert settings.ingest_token() == INGEST_TOKEN
    assert settings.alertmanager_bearer() == AM_TOKEN
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        for secret in SECRETS:
            assert secret not in result.output, (secret, args)
    shown = json.loads(CliRunner().invoke(main, ["config", "show", "--json"]).output)
    if from_files:
        assert shown["settings"]["http_ingest_token_file"].endswith("http_ingest_token")
    else:
        assert shown["settings"]["http_ingest_token"] == "********"


@pytest.mark.parametrize("name", ["KAFKA_SASL_PASSWORD", "HTTP_INGEST_TOKEN", "ALERTMANAGER_TOKEN"])
def test_an_empty_secret_is_refused_not_taken_as_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """An empty token file must not silently switch authentication off."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_USERNAME", "stormvarsel")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_PASSWORD", "set")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.delenv(f"STORMVARSEL_{name}", raising=False)
    monkeypatch.setenv(f"STORMVARSEL_{name}_FILE", str(empty))

    def read() -> str | None:
        settings = load_settings()
        return {
            "KAFKA_SASL_PASSWORD": settings.sasl_password,
            "HTTP_INGEST_TOKEN": settings.ingest_token,
            "ALERTMANAGER_TOKEN": settings.alertmanager_bearer,
        }[name]()

    with pytest.raises(ConfigError, match=f"STORMVARSEL_{name}_FILE: expected a secret"):
        read()
    monkeypatch.setenv(f"STORMVARSEL_{name}", "  ")
    with pytest.raises(ConfigError, match=f"STORMVARSEL_{name}: expected a secret"):
        read()
    monkeypatch.setenv(f"STORMVARSEL_{name}", "given")  # given directly, it wins over the file
    assert read() == "given"


def test_a_password_in_an_alertmanager_url_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Basic auth in the URL instead of a token: used as given, never shown."""
    urls = f"https://am1.example:9093,https://pager:{URL_PASSWORD}@am2.example:9093"
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", urls)
    assert f":{URL_PASSWORD}@" in load_settings().alertmanager_url_list[1]
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert URL_PASSWORD not in result.output
        assert "pager:********@am2.example:9093" in result.output


@pytest.mark.parametrize("name", ["GRAFANA_URL", "RUNBOOK_URL"])
def test_links_shown_in_pages_cannot_carry_credentials(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """These URLs go into every page's annotations: a password there would be sent to everyone."""
    monkeypatch.setenv(f"STORMVARSEL_{name}", f"https://viewer:{URL_PASSWORD}@links.example/x")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"STORMVARSEL_{name}: expected a link without a password")
    assert URL_PASSWORD not in str(refused.value)


def test_url_passwords_are_masked() -> None:
    assert redact_url("https://u:p4ss@am.example:9093/x") == "https://u:********@am.example:9093/x"
    assert redact_url("https://am.example:9093") == "https://am.example:9093"
    assert redact_url("https://user@am.example") == "https://user@am.example"


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_secrets_never_reach_a_log_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    log_output: Callable[[str], io.StringIO],
    log_format: str,
) -> None:
    """Once read, a secret is scrubbed from every line: our own structlog events, third-party
    stdlib logging (kafka-python logs its whole configuration at DEBUG), and tracebacks."""
    secret_env(monkeypatch, tmp_path, from_files=True)
    settings = load_settings()
    settings.sasl_password(), settings.ingest_token(), settings.alertmanager_bearer()
    with_url = load_settings(
        alertmanager_urls=f"https://pager:{URL_PASSWORD}@am2.example", alertmanager_token_file=None
    )
    with_url.alertmanager_url_list  # noqa: B018  (registers the URL's password)
    out = log_output(log_format)
    get_logger("test").info("configured", password=SASL_PASSWORD, token=INGEST_TOKEN)
    third_party = logging.getLogger("aiokafka.conn")
    config: dict[str, Any] = {"sasl_plain_password": SASL_PASSWORD, "token": AM_TOKEN}
    third_party.warning("Starting client with configuration: %s", config)
    try:
        raise RuntimeError(f"failed posting to https://pager:{URL_PASSWORD}@am2.example")
    except RuntimeError:
        get_logger("test").exception("post.failed", header=f"Bearer {AM_TOKEN}")
    text = out.getvalue()
    assert "configured" in text and "Starting client" in text and "post.failed" in text
    assert "RuntimeError" in text  # the traceback is there, only scrubbed
    for secret in SECRETS:
        assert secret not in text, secret
    assert text.count("********") >= 5


def test_redaction_does_not_touch_short_or_unrelated_text() -> None:
    assert redact("nothing secret here") == "nothing secret here"


def test_alertmanager_token_and_url_password_are_not_combined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both would need the one Authorization header; refused at start, the password masked."""
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", f"https://pager:{URL_PASSWORD}@am.example")
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_TOKEN", AM_TOKEN)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == (
        "STORMVARSEL_ALERTMANAGER_URLS: a URL with a password and an Alertmanager token cannot "
        "be combined (https://pager:********@am.example); use one of them"
    )
    monkeypatch.delenv("STORMVARSEL_ALERTMANAGER_TOKEN")
    assert load_settings().alertmanager_url_list == [f"https://pager:{URL_PASSWORD}@am.example"]
