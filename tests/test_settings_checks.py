"""Settings that were accepted and failed only later: a broker address with a space inside it
(the client then retried it until its timeout), and a secret set to an empty value, which
``config show`` passed with exit 0 while the worker refused it once connected to Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.errors import ConfigError
from streams.kafka_local import free_port
from streams.settings import Settings, file_problems, load_settings


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("broker 1:9092", "broker 1:9092"),
        ("127.0.0.1 :9092", "127.0.0.1 :9092"),
        ("a:9092, b: 9093", "b: 9093"),
        ("a\t:9092", "a\t:9092"),
    ],
)
def test_a_space_inside_a_broker_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, bad: str
) -> None:
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS: expected host:port[,host:port...] with no space "
        f"inside an address (separate them with commas), got {bad!r}"
    )
    # spaces around the addresses are still only trimmed
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", " a:9092 , b:9093 ")
    assert load_settings().bootstrap_list == ["a:9092", "b:9093"]


EMPTY = "expected a secret, got an empty value (unset it instead)"


def test_a_secret_set_to_an_empty_value_is_a_problem(tmp_path: Path) -> None:
    settings = Settings(http_ingest_token="", alertmanager_token="  ")
    assert file_problems(settings) == [
        f"STORMVARSEL_HTTP_INGEST_TOKEN: {EMPTY}",
        f"STORMVARSEL_ALERTMANAGER_TOKEN: {EMPTY}",
    ]
    sasl = {"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u", "kafka_sasl_password": ""}
    assert file_problems(Settings(kafka_security_protocol="SASL_SSL", **sasl)) == [
        f"STORMVARSEL_KAFKA_SASL_PASSWORD: {EMPTY}"
    ]
    # idle under PLAINTEXT (warned about, not read), as its file would be
    assert file_problems(Settings(**sasl)) == []
    # an empty value wins over a usable file, as it does in the worker (see _secret)
    (tmp_path / "token").write_text("t0ken\n")
    settings = Settings(http_ingest_token="", http_ingest_token_file=tmp_path / "token")
    assert file_problems(settings) == [f"STORMVARSEL_HTTP_INGEST_TOKEN: {EMPTY}"]


def test_config_show_names_an_empty_secret_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_HTTP_INGEST_TOKEN", "")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"error: STORMVARSEL_HTTP_INGEST_TOKEN: {EMPTY}"]
    assert "STORMVARSEL_HTTP_INGEST_TOKEN" in result.stdout  # the settings are still printed


def test_the_worker_refuses_an_empty_secret_before_kafka(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_TOKEN", "")
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("STORMVARSEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STORMVARSEL_WEB_PORT", str(free_port()))
    result = CliRunner().invoke(main, ["worker", "--wait-for-kafka", "0"])
    assert result.exit_code == 2, result.output
    assert f"error: STORMVARSEL_ALERTMANAGER_TOKEN: {EMPTY}" in result.stderr


def test_a_secret_set_with_a_line_end_is_taken_without_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A token set from a file (Kubernetes ``--from-file``) keeps its newline, which no HTTP
    header carries: every collector got 401. Stripped as a token read from its ``_FILE`` is."""
    monkeypatch.setenv("STORMVARSEL_HTTP_INGEST_TOKEN", "s3cret-token\n")
    assert load_settings().ingest_token() == "s3cret-token"
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n", encoding="utf-8")
    monkeypatch.delenv("STORMVARSEL_HTTP_INGEST_TOKEN")
    monkeypatch.setenv("STORMVARSEL_HTTP_INGEST_TOKEN_FILE", str(token_file))
    assert load_settings().ingest_token() == "s3cret-token"


def test_an_alert_ttl_under_twice_the_resend_interval_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An alert must outlive two re-send intervals, or one late re-send lets Alertmanager
    resolve a storm that is still going: a TTL just under twice the interval is refused,
    naming notify_ttl_s; exactly twice is accepted."""
    monkeypatch.setenv("STORMVARSEL_NOTIFY_RESEND_S", "10")
    monkeypatch.setenv("STORMVARSEL_NOTIFY_TTL_S", "19")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "notify_ttl_s" in message.lower()
    assert "at least twice notify_resend_s (20), got 19" in message
    monkeypatch.setenv("STORMVARSEL_NOTIFY_TTL_S", "20")
    settings = load_settings()
    assert (settings.notify_ttl_s, settings.notify_resend_s) == (20.0, 10.0)


def test_local_broker_ports_top_out_at_65535(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TCP port is at most 65535: that is accepted for the local broker, 65536 is refused."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_LOCAL_PORT", "65535")
    assert load_settings().kafka_local_port == 65535
    monkeypatch.setenv("STORMVARSEL_KAFKA_LOCAL_PORT", "65536")
    with pytest.raises(ConfigError, match=r"^STORMVARSEL_KAFKA_LOCAL_PORT: "):
        load_settings()


def test_the_local_broker_cannot_share_its_client_and_controller_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local broker's client and KRaft controller listeners need two ports: the same port
    for both is refused, naming the controller port."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_LOCAL_PORT", "9500")
    monkeypatch.setenv("STORMVARSEL_KAFKA_LOCAL_CONTROLLER_PORT", "9500")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "kafka_local_controller_port" in str(info.value).lower()
    assert "different from kafka_local_port" in str(info.value)
    monkeypatch.setenv("STORMVARSEL_KAFKA_LOCAL_CONTROLLER_PORT", "9501")
    assert load_settings().kafka_local_controller_port == 9501
