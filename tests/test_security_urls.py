"""A password holding ``/``, ``?`` or ``#`` in a URL setting.

urllib ends a URL's host part at the first of them, so ``http://am:pa/ss-secret@alertmanager:9093``
read as host ``am``, port ``pa``: no password was found to mask, the whole URL was printed by the
start-up error, ``config show`` and the ``worker.starting`` log, and with digits before the ``/``
it was even accepted and the worker posted to host ``am``. Such URLs are now refused in one line
asking for the password to be percent-encoded, and masked from ``://`` to the last ``@``.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from streams.cli import main
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
