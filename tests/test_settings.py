from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.errors import ConfigError
from streams.settings import _PATH_FIELDS, Settings, file_problems, load_settings


def test_defaults_are_usable_for_the_local_broker() -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.topic("mentions") == "mentions"
    assert settings.brands.brands == ()


def test_values_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", " a:1, b:2 ")
    monkeypatch.setenv("STORMVARSEL_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("STORMVARSEL_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("TOPIC_PARTITIONS", "99")  # unprefixed: ignored
    settings = load_settings()
    assert settings.bootstrap_list == ["a:1", "b:2"]
    assert settings.topic_partitions == 8
    assert settings.topic("alerts") == "staging.alerts"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "TOPIC_PARTITIONS",
            "abc",
            "STORMVARSEL_TOPIC_PARTITIONS: expected a whole number, got 'abc'",
        ),
        (
            "TOPIC_PARTITIONS",
            "0",
            "STORMVARSEL_TOPIC_PARTITIONS: expected a number greater than or equal to 1",
        ),
        (
            "WEB_PORT",
            "70000",
            "STORMVARSEL_WEB_PORT: expected a number less than or equal to 65535",
        ),
        ("KAFKA_SECURITY_PROTOCOL", "TLS", "STORMVARSEL_KAFKA_SECURITY_PROTOCOL: expected one of"),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            "localhost",
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS: expected host:port[,host:port...]",
        ),
        ("LOG_LEVEL", "LOUD", "STORMVARSEL_LOG_LEVEL: expected one of 'DEBUG', 'INFO'"),
        ("KAFKA_VERSION", "3.9.0", "STORMVARSEL_KAFKA_VERSION: expected text matching"),
        # Kafka refuses such topic names only when the worker creates them.
        ("TOPIC_PREFIX", "staging ", "STORMVARSEL_TOPIC_PREFIX: expected text matching"),
        ("GRAFANA_URL", "grafana:3000", "STORMVARSEL_GRAFANA_URL: expected an http(s):// link"),
        ("RUNBOOK_URL", "javascript:go()", "STORMVARSEL_RUNBOOK_URL: expected an http(s):// link"),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            "kafka://broker:9092",
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS: expected host:port without a scheme, got "
            "'kafka://broker:9092' (write 'broker:9092')",
        ),
        ("APP_ID", "a" * 201, "STORMVARSEL_APP_ID: expected text matching"),
        ("DEDUP_WINDOW_S", "inf", "STORMVARSEL_DEDUP_WINDOW_S: expected a finite number"),
        ("BRANDS_FILE", "", "STORMVARSEL_BRANDS_FILE: expected a path, got an empty value"),
        ("DATA_DIR", "  ", "STORMVARSEL_DATA_DIR: expected a path, got an empty value"),
        (
            "SENTIMENT_LABEL_MAP",
            "LABEL_0=good",
            "STORMVARSEL_SENTIMENT_LABEL_MAP: expected MODEL_LABEL=CLASS pairs",
        ),
    ],
)
def test_invalid_value_gives_one_line_naming_key_and_form(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(f"STORMVARSEL_{name}", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(expected), message


def test_sasl_needs_mechanism_user_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match=r"^STORMVARSEL_KAFKA_SASL_MECHANISM: expected PLAIN"):
        load_settings()
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(ConfigError, match=r"^STORMVARSEL_KAFKA_SASL_USERNAME: expected"):
        load_settings()
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_USERNAME", "svc")
    with pytest.raises(ConfigError, match=r"^STORMVARSEL_KAFKA_SASL_PASSWORD: expected"):
        load_settings()
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_PASSWORD", "hunter2")
    assert load_settings().sasl_password() == "hunter2"


def test_password_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_PASSWORD_FILE", str(secret))
    assert load_settings().sasl_password() == "from-file"


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_PASSWORD", "s3cr3t-value")
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "s3cr3t-value" not in result.output
        assert "********" in result.output
        assert "SCRAM-SHA-256" in result.output


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("STORMVARSEL_GRAFANA_URL", "https://admin:hunt[er2@grafana.example.com/d"),
        ("STORMVARSEL_ALERTMANAGER_URLS", "http://127.0.0.1:9093,http://am:hunt[er2@am2:9093"),
        ("STORMVARSEL_RUNBOOK_URL", "https://wiki.example.com:port/runbooks"),
    ],
)
def test_a_url_that_does_not_parse_is_refused_without_showing_its_password(
    monkeypatch: pytest.MonkeyPatch, name: str, url: str
) -> None:
    """urlsplit cannot read these, so nothing could say whether they carry a password: they
    would have gone into every page, and `config show` printed them in clear text."""
    monkeypatch.setenv(name, url)
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert f"error: {name}: not a valid URL" in result.output
        assert "hunt[er2" not in result.output


def test_config_show_reports_bad_value_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_TOPIC_REPLICATION", "many")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: STORMVARSEL_TOPIC_REPLICATION: expected a whole number, got 'many'"
    )


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("worker", "kafka", "config", "topics", "demo"):
        assert f"  {command} " in result.output


def test_topics_create_without_a_broker_says_so_in_one_line(tmp_path: Path) -> None:
    """kafka-python logs every refused connection at ERROR; the command's own error is enough."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    run = subprocess.run(
        [sys.executable, "-m", "streams.cli", "topics", "create", "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: no Kafka broker answered at 127.0.0.1:{port}")


def test_config_show_names_an_empty_brands_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "brands.yaml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("STORMVARSEL_BRANDS_FILE", str(empty))
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert f"brands: none in {empty}" in result.output
    assert "set STORMVARSEL_BRANDS_FILE" not in result.output


def test_ingest_of_a_directory_says_it_is_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ingest", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path} is a directory; give a file" in result.output


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("LOG_LEVEL", " Warning ", "log_level", "WARNING"),
        ("LOG_FORMAT", "JSON", "log_format", "json"),
        ("KAFKA_SECURITY_PROTOCOL", "ssl", "kafka_security_protocol", "SSL"),
        ("SENTIMENT_BACKEND", "Lexicon", "sentiment_backend", "lexicon"),
        ("SENTIMENT_RUNTIME", "ONNX-INT8", "sentiment_runtime", "onnx-int8"),
    ],
)
def test_choices_are_accepted_in_any_case(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: str
) -> None:
    monkeypatch.setenv(f"STORMVARSEL_{name}", value)
    assert getattr(load_settings(), field) == expected
    result = CliRunner().invoke(main, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output


def test_a_bad_log_level_is_still_refused_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_LOG_LEVEL", "loud")
    with pytest.raises(
        ConfigError, match=r"STORMVARSEL_LOG_LEVEL: expected one of .*, got 'loud'$"
    ):
        load_settings()


def test_a_sasl_mechanism_in_lower_case_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_USERNAME", "worker")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_PASSWORD", "secret")
    settings = load_settings()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("foo", "expected host:port[,host:port...], got 'foo'"),
        ("a:1,foo:x", "expected host:port[,host:port...], got 'foo:x'"),
        (" ", "expected host:port[,host:port...], got ' '"),
        # Before: "(write 'broker:9092/')", itself refused.
        (
            "kafka://broker:9092/",
            "expected host:port without a scheme, got 'kafka://broker:9092/' (write 'broker:9092')",
        ),
        # Before: "(write '')".
        ("kafka://", "expected host:port without a scheme, got 'kafka://'"),
    ],
)
def test_bad_bootstrap_servers_say_what_they_got_once(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    """The validator names the bad server (describe_error appended the whole value again), and
    a scheme's suggestion is itself a usable server."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == f"STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS: {message}"


def test_a_misspelt_variable_is_named_with_the_setting_it_resembles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STORMVARSEL_BOOTSTRAP_SERVERS (without KAFKA_) used to be ignored without a word."""
    monkeypatch.setenv("STORMVARSEL_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("STORMVARSEL_NONSENSE", "1")
    monkeypatch.setenv("STORMVARSEL_IMAGE_TAG", "v1")  # docker-compose's, not a setting
    result = CliRunner().invoke(main, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert (
        "warning: STORMVARSEL_BOOTSTRAP_SERVERS is not a setting, so it has no effect; "
        "did you mean STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS?"
    ) in result.stderr
    assert "STORMVARSEL_NONSENSE is not a setting" in result.stderr
    assert "IMAGE_TAG" not in result.stderr
    json.loads(result.stdout)  # the JSON on stdout stays clean


FLOAT_FIELDS = [name for name, f in Settings.model_fields.items() if f.annotation is float]


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
def test_no_number_setting_takes_infinity_or_nan(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """Before: STORMVARSEL_DEDUP_WINDOW_S=inf was taken, and the worker crashed with an
    OverflowError after contacting Kafka."""
    monkeypatch.setenv(f"STORMVARSEL_{name.upper()}", value)
    with pytest.raises(ConfigError, match=f"^STORMVARSEL_{name.upper()}: expected a finite"):
        load_settings()


def test_every_path_setting_is_checked() -> None:
    paths = {name for name, f in Settings.model_fields.items() if "Path" in str(f.annotation)}
    assert paths == set(_PATH_FIELDS)
    assert len(FLOAT_FIELDS) >= 8


def test_a_tilde_in_a_path_is_the_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quoted ~ (compose files, systemd units) used to create a directory named ~."""
    monkeypatch.setenv("HOME", "/home/oncall")
    monkeypatch.setenv("STORMVARSEL_DATA_DIR", "~/stormvarsel")
    monkeypatch.setenv("STORMVARSEL_BRANDS_FILE", "~/brands.yaml")
    settings = load_settings()
    assert settings.data_dir == Path("/home/oncall/stormvarsel")
    assert settings.brands_file == Path("/home/oncall/brands.yaml")


def test_config_show_names_a_variable_written_in_lower_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Settings are read in any case; config show labelled this one "(default)"."""
    monkeypatch.setenv("stormvarsel_topic_prefix", "staging.")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("STORMVARSEL_TOPIC_PREFIX")]
    assert "staging." in line and "(env, as stormvarsel_topic_prefix)" in line
    (line,) = [x for x in result.output.splitlines() if x.startswith("STORMVARSEL_APP_ID ")]
    assert "(default)" in line


def test_the_longest_app_id_still_names_valid_changelogs() -> None:
    """Kafka's limit is 249 characters; an app id of 240 passed and every changelog was
    refused when the worker started."""
    from streams.app import build_app
    from streams.topics import faust_internal_topics

    settings = Settings(app_id="a" * 200, alertmanager_urls="http://127.0.0.1:9")
    app, _ = build_app(settings)
    assert max(len(t.name) for t in faust_internal_topics(app)) <= 249


def test_a_setting_in_another_case_is_not_called_unknown_and_a_misspelt_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Names are read in any case. Before: STORMVARSEL_topic_prefix took effect but was warned
    about as having none, and a misspelt lower-case name got no warning at all."""
    monkeypatch.setenv("STORMVARSEL_topic_prefix", "staging.")
    monkeypatch.setenv("stormvarsel_app_idd", "x")
    result = CliRunner().invoke(main, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["topic_prefix"] == "staging."
    assert "topic_prefix" not in result.stderr
    assert result.stderr == (
        "warning: stormvarsel_app_idd is not a setting, so it has no effect; "
        "did you mean STORMVARSEL_APP_ID?\n"
    )


def test_a_setting_given_in_two_spellings_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: whichever came last in the environment won, and config show credited the
    upper-case one even when its value was not the one in effect."""
    monkeypatch.setenv("STORMVARSEL_TOPIC_PREFIX", "prod.")
    monkeypatch.setenv("stormvarsel_topic_prefix", "staging.")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "STORMVARSEL_TOPIC_PREFIX: set twice, as STORMVARSEL_TOPIC_PREFIX and "
        "stormvarsel_topic_prefix (names are read in any case); keep one"
    )
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: STORMVARSEL_TOPIC_PREFIX: set twice")


def test_a_tilde_for_an_unknown_user_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: Path.expanduser's RuntimeError escaped pydantic and the CLI printed a traceback."""
    monkeypatch.setenv("STORMVARSEL_DATA_DIR", "~no-such-user-here/state")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "STORMVARSEL_DATA_DIR: expected a path whose ~ names a user with a home directory, "
        "got '~no-such-user-here/state'"
    )


@pytest.mark.parametrize(
    ("protocol", "idle", "used"),
    [
        ("PLAINTEXT", ["KAFKA_SSL_CAFILE", "KAFKA_SASL_USERNAME"], []),
        ("SASL_PLAINTEXT", ["KAFKA_SSL_CAFILE"], ["KAFKA_SASL_USERNAME"]),
        ("SSL", ["KAFKA_SASL_USERNAME"], ["KAFKA_SSL_CAFILE"]),
        ("SASL_SSL", [], ["KAFKA_SSL_CAFILE", "KAFKA_SASL_USERNAME"]),
    ],
)
def test_a_security_setting_the_protocol_does_not_use_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, protocol: str, idle: list[str], used: list[str]
) -> None:
    """Before: a CA file set while the protocol stayed PLAINTEXT was ignored without a word, so
    the operator believed the connection was encrypted. An idle file is warned about but not
    read (its contents are no PEM block: only a file in effect must hold one)."""
    ca = tmp_path / "ca.pem"
    used_ca = "KAFKA_SSL_CAFILE" in used
    ca.write_text("-----BEGIN CERTIFICATE-----\n" if used_ca else "not read by config show\n")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("STORMVARSEL_KAFKA_SSL_CAFILE", str(ca))
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_USERNAME", "stormvarsel")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SASL_PASSWORD", "s3cret")
    result = CliRunner().invoke(main, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    for name in idle:
        assert (
            f"warning: STORMVARSEL_{name} has no effect while "
            f"STORMVARSEL_KAFKA_SECURITY_PROTOCOL is {protocol}"
        ) in result.stderr
    for name in used:
        assert f"STORMVARSEL_{name} has no effect" not in result.stderr
    assert "s3cret" not in result.stderr
    json.loads(result.stdout)


def test_config_show_checks_the_detector_file_and_lists_what_it_changes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Before: `config show` did not read STORMVARSEL_DETECTOR_CONFIG, so a typo in it surfaced
    only when the worker started."""
    good = tmp_path / "detector.yaml"
    good.write_text("spikes:\n  cusum_limit: 9\n  windows_minutes: [5, 30]\n")
    monkeypatch.setenv("STORMVARSEL_DETECTOR_CONFIG", str(good))
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert f"detector: {good}, keys that differ from the defaults:" in result.stdout
    assert "  spikes.cusum_limit: 9" in result.stdout
    assert "  spikes.windows_minutes: [5, 30]" in result.stdout
    assert "spikes.tail_quantile" not in result.stdout  # left at its default
    shown = json.loads(CliRunner().invoke(main, ["config", "show", "--json"]).stdout)
    assert shown["detector"] == {
        "file": str(good),
        "changed": {"spikes.cusum_limit": 9, "spikes.windows_minutes": [5, 30]},
    }

    bad = tmp_path / "typo.yaml"
    bad.write_text("spikes:\n  cusum_limt: 9\n")
    monkeypatch.setenv("STORMVARSEL_DETECTOR_CONFIG", str(bad))
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2
    assert f"STORMVARSEL_DETECTOR_CONFIG: {bad}: spikes.cusum_limt: unknown key" in result.output

    monkeypatch.delenv("STORMVARSEL_DETECTOR_CONFIG")
    result = CliRunner().invoke(main, ["config", "show"])
    assert "detector: built-in defaults, every key at its default" in result.stdout


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_usable_files_have_no_problems(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text(PEM)
    (tmp_path / "token").write_text("t0ken\n")
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password_file=tmp_path / "token",
        kafka_ssl_cafile=tmp_path / "ca.pem",
        kafka_ssl_certfile=tmp_path / "cert.pem",
        kafka_ssl_keyfile=tmp_path / "key.pem",
        http_ingest_token_file=tmp_path / "token",
        alertmanager_token_file=tmp_path / "token",
    )
    assert file_problems(settings) == []


def test_each_unusable_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "not-pem.pem").write_text("hello\n")
    (tmp_path / "empty").write_text("  \n")
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tmp_path,
        kafka_ssl_certfile=tmp_path / "missing.pem",
        kafka_ssl_keyfile=tmp_path / "not-pem.pem",
        http_ingest_token_file=tmp_path / "empty",
        alertmanager_token_file=tmp_path / "latin1",
    )
    assert file_problems(settings) == [
        f"STORMVARSEL_KAFKA_SSL_CAFILE={tmp_path}: is a directory",
        f"STORMVARSEL_KAFKA_SSL_CERTFILE={tmp_path / 'missing.pem'}: does not exist",
        f"STORMVARSEL_KAFKA_SSL_KEYFILE={tmp_path / 'not-pem.pem'}: holds no PEM block "
        "(no -----BEGIN line)",
        f"STORMVARSEL_HTTP_INGEST_TOKEN_FILE={tmp_path / 'empty'}: is empty",
        f"STORMVARSEL_ALERTMANAGER_TOKEN_FILE={tmp_path / 'latin1'}: is not UTF-8 text",
    ]


def test_an_unreadable_file_and_a_fifo_are_named(tmp_path: Path) -> None:
    import os

    locked = tmp_path / "ca.pem"
    locked.write_text(PEM)
    locked.chmod(0)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    try:
        problems = file_problems(
            Settings(
                kafka_security_protocol="SSL", kafka_ssl_cafile=locked, kafka_ssl_certfile=fifo
            )
        )
    finally:
        locked.chmod(0o600)
    expected = [f"STORMVARSEL_KAFKA_SSL_CERTFILE={fifo}: is not a regular file"]
    if os.geteuid() != 0:  # root reads it anyway
        expected.insert(
            0, f"STORMVARSEL_KAFKA_SSL_CAFILE={locked}: cannot be read (Permission denied)"
        )
    assert problems == expected


def test_idle_files_and_secrets_given_directly_are_not_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    plaintext = Settings(
        kafka_ssl_cafile=missing,  # idle under PLAINTEXT: warned about, not read
        kafka_sasl_password_file=missing,  # idle too
    )
    assert file_problems(plaintext) == []
    direct = Settings(alertmanager_token="t", alertmanager_token_file=missing)
    assert file_problems(direct) == []  # the value given directly wins (see _secret)


@pytest.mark.parametrize("as_json", [False, True])
def test_config_show_names_an_unusable_file_after_the_settings_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, as_json: bool
) -> None:
    """Before: exit 0 with the CA file a directory; the worker failed later, less clearly."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SSL_CAFILE", str(tmp_path))
    monkeypatch.setenv("STORMVARSEL_HTTP_INGEST_TOKEN_FILE", str(tmp_path / "missing"))
    result = CliRunner().invoke(main, ["config", "show", *(["--json"] if as_json else [])])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"error: STORMVARSEL_KAFKA_SSL_CAFILE={tmp_path}: is a directory",
        f"error: STORMVARSEL_HTTP_INGEST_TOKEN_FILE={tmp_path / 'missing'}: does not exist",
    ]
    if as_json:  # the settings are still printed, whole
        assert json.loads(result.stdout)["settings"]["kafka_ssl_cafile"] == str(tmp_path)
    else:
        assert "STORMVARSEL_KAFKA_SSL_CAFILE" in result.stdout and "detector:" in result.stdout


def test_config_show_with_usable_files_exits_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(PEM)
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SSL_CAFILE", str(ca))
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "error" not in result.stderr


def test_the_worker_refuses_an_unusable_file_before_kafka(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same check at the worker's start: one line and exit 2, before any connection."""
    monkeypatch.setenv("STORMVARSEL_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("STORMVARSEL_KAFKA_SSL_CAFILE", str(tmp_path))
    monkeypatch.setenv("STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("STORMVARSEL_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["worker", "--wait-for-kafka", "0"])
    assert result.exit_code == 2, result.output
    assert f"error: STORMVARSEL_KAFKA_SSL_CAFILE={tmp_path}: is a directory" in result.stderr
