"""A password holding ``/``, ``?`` or ``#`` in a URL setting.

urllib ends a URL's host part at the first of them, so ``http://am:pa/ss-secret@alertmanager:9093``
read as host ``am``, port ``pa``: no password was found to mask, the whole URL was printed by the
start-up error, ``config show`` and the ``worker.starting`` log, and with digits before the ``/``
it was even accepted and the worker posted to host ``am``. Such URLs are now refused in one line
asking for the password to be percent-encoded, and masked from ``://`` to the last ``@``.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from streams import log_setup
from streams.cli import main
from streams.errors import ConfigError
from streams.log_setup import redact
from streams.settings import load_settings, redact_url

#: (URL, the parts of its password that must never be shown)
CASES = [
    ("http://am:pa/ss-secret@alertmanager:9093", ["pa/ss-secret", "ss-secret"]),
    ("http://am:s3cret#x@alertmanager:9093", ["s3cret#x", "s3cret"]),
    ("http://am:s3cr?et@alertmanager:9093", ["s3cr?et", "s3cr"]),
    ("http://am:1234/secretpart@alertmanager:9093", ["1234/secretpart", "secretpart"]),
    ("https://am:pw/x?y#z@alertmanager.example/api/x?q=1", ["pw/x?y#z", "x?y#z"]),
    ("http://am:pass/w0rdz@[::1]:9093", ["pass/w0rdz", "w0rdz"]),
    # A host in any script, or an IPv6 address with a zone id: the host after the '@' was not
    # recognised, so nothing was masked; and the last one was accepted, as host 'pager'.
    ("https://pager:Zq/9vLx@alertmanager.bücher.example:9093", ["Zq/9vLx", "9vLx"]),
    ("https://pager:Zq/9vLx@[fe80::1%25eth0]:9093", ["Zq/9vLx", "9vLx"]),
    ("https://pager:4417/xQ@alertmanager.bücher.example", ["4417/xQ", "xQ"]),
    ("https://pager:Zq/9vLx@am.example:90x3", ["Zq/9vLx", "9vLx"]),  # and a port that is not one
]


@pytest.mark.parametrize(("url", "secrets"), CASES)
def test_redaction_never_shows_a_password_holding_path_characters(
    url: str, secrets: list[str]
) -> None:
    shown = redact_url(url)
    assert "********@" in shown
    for secret in secrets:
        assert secret not in shown, shown
    assert shown.endswith(url.rpartition("@")[2])  # host, port and path are kept


@pytest.mark.parametrize(
    "name", ["STORMVARSEL_ALERTMANAGER_URLS", "STORMVARSEL_GRAFANA_URL", "STORMVARSEL_RUNBOOK_URL"]
)
@pytest.mark.parametrize(("url", "secrets"), CASES)
def test_such_urls_are_refused_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, name: str, url: str, secrets: list[str]
) -> None:
    if name == "STORMVARSEL_ALERTMANAGER_URLS":
        url = f"https://am0.example:9093,{url}"  # the second of two
    monkeypatch.setenv(name, url)
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith(f"error: {name}: the password in "), lines[0]
        assert "percent-encode" in lines[0] and "%2F" in lines[0] and "%23" in lines[0]
        for secret in secrets:
            assert secret not in result.output


def test_a_percent_encoded_password_is_accepted_and_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "http://am:pa%2Fss-secret@alertmanager:9093"
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", url)
    assert load_settings().alertmanager_url_list == [url]
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "am:********@alertmanager:9093" in result.output
    assert "ss-secret" not in result.output
    # registered with the log scrubber as written and as sent
    assert "ss-secret" not in redact(f"posting to {url} as am:pa/ss-secret")


@pytest.mark.parametrize(
    "url",
    [
        "https://medium.com/@team/runbook",  # an @ in the path, no password
        "https://grafana.example/d/x?var-owner=ops@example.com",
        "https://grafana.example/d/x#@here",
    ],
)
def test_an_at_sign_in_a_path_is_not_mistaken_for_a_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    assert redact_url(url) == url
    monkeypatch.setenv("STORMVARSEL_RUNBOOK_URL", url)
    assert load_settings().runbook_url == url


#: (STORMVARSEL_ALERTMANAGER_URLS, the parts of a password or user-info that must never be shown)
#: The value was split on ',' before its passwords were masked, so a comma in a password cut the
#: URL in two and the start-up error printed the first half: 'https://pager:Zq'.
COMMA_CASES = [
    ("https://pager:Zq,9vLx@am.example:9093", ["Zq", "9vLx"]),
    ("https://pager:8443,Zq9vLx@am.example:9093", ["8443", "Zq9vLx"]),
    ("https://am0.example:9093,https://pager:Zq,9vLx@am.example:9093", ["Zq", "9vLx"]),
    ("https://pager:Zq,9vLx@am.example:9093,https://am0.example:9093", ["Zq", "9vLx"]),
    ("https://pager:a,b/c-secret@am.example:9093", ["a,b", "c-secret"]),
    ("https://pa,ger:Kv8pass@am.example:9093", ["Kv8pass", "ger:"]),  # a comma in the user
    ("pager:Zq,9vLx@am.example:9093", ["Zq", "9vLx"]),  # and no scheme
]


@pytest.mark.parametrize(("value", "secrets"), COMMA_CASES)
def test_a_comma_in_a_password_is_refused_without_any_part_of_it(
    monkeypatch: pytest.MonkeyPatch, value: str, secrets: list[str]
) -> None:
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", value)
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith("error: STORMVARSEL_ALERTMANAGER_URLS: "), lines[0]
        assert "%2C" in lines[0] and "********@am.example:9093" in lines[0], lines[0]
        for secret in secrets:
            assert secret not in result.output, result.output


def test_the_comma_percent_encoded_as_the_error_asks_is_accepted_and_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = "https://am0.example:9093,https://pager:Zq,9vLx@am.example:9093"
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", written)
    refused = CliRunner().invoke(main, ["config", "show"])
    assert refused.exit_code == 2 and "as %2C" in refused.output, refused.output
    url = "https://pager:Zq%2C9vLx@am.example:9093"
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", f"https://am0.example:9093,{url}")
    assert load_settings().alertmanager_url_list == ["https://am0.example:9093", url]
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "pager:********@am.example:9093" in result.output
    assert "Zq" not in result.output and "9vLx" not in result.output
    assert "9vLx" not in redact("basic auth pager:Zq,9vLx")  # as sent, once %2C is a , again


def test_a_password_in_a_url_without_a_scheme_is_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """urllib reads ``pager:Zq9vLx@host`` as the scheme ``pager``: nothing was masked."""
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", "pager:Zq9vLx@am.example:9093")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "error: STORMVARSEL_ALERTMANAGER_URLS: expected http(s):// URLs, "
        "got '********@am.example:9093'"
    )


def forget_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start with no secret registered: one registered by an earlier test would hide a miss."""
    monkeypatch.setattr(log_setup, "_secrets", frozenset())
    monkeypatch.setattr(log_setup, "_pattern", None)


@pytest.mark.parametrize(("url", "secrets"), CASES[-4:])
def test_a_refused_urls_password_is_registered_with_the_log_scrubber(
    monkeypatch: pytest.MonkeyPatch, url: str, secrets: list[str]
) -> None:
    forget_secrets(monkeypatch)
    with pytest.raises(ConfigError, match="percent-encode"):
        load_settings(alertmanager_urls=url)
    for secret in secrets:
        assert secret not in redact(f"posting to {url}")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://pager:Zq%2F9vLx@alertmanager.bücher.example:9093", "alertmanager.bücher.example"),
        ("https://pager:Zq%2F9vLx@[fe80::1%25eth0]:9093", "fe80::1%25eth0"),
    ],
)
def test_a_percent_encoded_password_with_any_host_is_accepted_with_that_host(
    monkeypatch: pytest.MonkeyPatch, url: str, host: str
) -> None:
    forget_secrets(monkeypatch)
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", url)
    assert load_settings().alertmanager_url_list == [url]
    assert urlsplit(url).hostname == host
    assert URL(url).host == unquote(host)  # as the notifier's HTTP client (aiohttp) reads it
    assert URL(url).password == "Zq/9vLx"
    result = CliRunner().invoke(main, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert f"pager:********@{url.rpartition('@')[2]}" in result.output
    assert "9vLx" not in result.output
    # registered with the log scrubber as written and as sent
    assert redact("Zq%2F9vLx and Zq/9vLx") == "******** and ********"


@pytest.mark.parametrize(
    "url",
    ["1https://pager:Zq9vLx@am.example:9093", "ht tp://pager:Zq9vLx@am.example:9093"],
)
def test_a_password_is_masked_when_urllib_finds_no_user_info(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """A scheme urllib does not take as one leaves it no host part, so no password: the URL was
    shown whole in the refusal. Whatever urllib makes of it, :// to the last @ is masked."""
    assert redact_url(url) == f"{url.partition('://')[0]}://********@am.example:9093"
    monkeypatch.setenv("STORMVARSEL_ALERTMANAGER_URLS", url)
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2, result.output
    assert "expected http(s):// URLs" in result.output and "Zq9vLx" not in result.output


#: Characters a password may hold, those that end a host part or a list entry among them.
PASSWORD_CHARS = st.sampled_from("QXZJKV0123456789/?#:@[]%,!$&'()*+;=~ÆØß€")
HOSTS = st.sampled_from(
    ["am.example", "alertmanager.bücher.example", "10.0.0.7", "[::1]", "[fe80::1%25eth0]"]
)


@settings(max_examples=300, deadline=None)
@given(
    password=st.text(PASSWORD_CHARS, min_size=6, max_size=16),
    host=HOSTS,
    port=st.sampled_from(["", ":9093"]),
    path=st.sampled_from(["", "/", "/am/api", "/x?q=1"]),
)
def test_a_url_password_is_never_shown_and_an_accepted_url_keeps_its_host(
    password: str, host: str, port: str, path: str
) -> None:
    """Whatever the password holds: the URL is masked from :// to its last @ (or just the
    password), and it is refused without the password, or accepted with the host as written."""
    url = f"https://pager:{password}@{host}{port}{path}"
    tail = url.rpartition("@")[2]
    assert redact_url(url) in (f"https://pager:********@{tail}", f"https://********@{tail}")
    try:
        urls = load_settings(alertmanager_urls=url).alertmanager_url_list
    except ConfigError as refused:
        assert password not in str(refused)
        return
    assert urls == [url.rstrip("/")]
    parts = urlsplit(url)
    assert parts.hostname == host.strip("[]") and parts.password == password
    for sent in (password, unquote(password)):  # registered as written and as sent
        if len(sent) >= log_setup.MIN_SECRET_LENGTH:
            assert redact(f"sent {sent}") == "sent ********"
