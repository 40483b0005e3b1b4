"""The log scrubber (``streams/log_setup.py``): a registered secret reaches no line, however the
renderer escapes, cuts or wraps it.

Only the finished line used to be searched, for the secret exactly as registered: JSON lines write
``"`` as ``\\"``, ``\\`` as ``\\\\`` and ``ä`` as ``\\u00e4``, a ``repr`` escapes ``\\`` and
quotes, so such secrets were written out; and the console's rich tracebacks showed every frame's
local variables cut at 80 characters, so 55 characters of a 64-character token held in a local
(the notifier's ``NotifyConfig``, the intake view's ``token``) were shown, out of reach of a
search for the whole token.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from streams import log_setup
from streams.log_setup import REDACTED, add_secret, get_logger, redact, scrub_event

#: Secrets that the renderers escape: quotes, a backslash, a control character, non-ASCII.
ESCAPED_SECRETS = [
    'Zq9"vLx-wr7',
    "Zq9\\vLx-wr7",
    "Zq9'vLx\"wr7",  # both quotes: repr escapes the single one
    "Pässwort-Grün-7",
    "tab\tsecret-7",
]
TOKEN = "c0ffee00" * 8  # 64 hex characters, as `openssl rand -hex 32` makes
JWT = "eyJhbGciOiJIUzI1NiJ9." + "A1b2C3d4" * 12  # 117 characters (out of the tracebacks' code)


@pytest.fixture(autouse=True)
def _no_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers its own secrets, and they are forgotten afterwards."""
    monkeypatch.setattr(log_setup, "_secrets", frozenset())
    monkeypatch.setattr(log_setup, "_pattern", None)


def forms(secret: str) -> list[str]:
    """The secret and the ways a renderer may have written it."""
    return [
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(repr(secret)[1:-1])[1:-1],
    ]


def pieces(secret: str, size: int = 12) -> Iterator[str]:
    """Every run of ``size`` characters of ``secret``: none may be shown either."""
    return (secret[i : i + size] for i in range(len(secret) - size + 1))


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


@dataclass(frozen=True)
class Credentials:
    """Holds a secret in a field, as NotifyConfig does: its repr shows it."""

    url: str
    token: str


def log_everywhere(secret: str) -> None:
    """The secret in a field, a nested field, an object's repr, a third-party library's
    %-formatted message and an exception's message."""
    log = get_logger("test")
    log.info(
        "configured",
        password=secret,
        headers={"Authorization": [f"Bearer {secret}"]},
        credentials=Credentials("https://am.example", secret),
    )
    logging.getLogger("aiokafka.conn").warning("config: %s", {"sasl_plain_password": secret})
    try:
        raise RuntimeError(f"login refused for password {secret}")
    except RuntimeError:
        log.exception("post.failed")


@pytest.mark.parametrize("secret", ESCAPED_SECRETS)
def test_json_lines_hold_no_secret_in_any_escaped_form(
    log_output: Callable[[str], io.StringIO], secret: str
) -> None:
    out = log_output("json")
    add_secret(secret)
    log_everywhere(secret)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "configured",
        "config: {'sasl_plain_password': '********'}",
        "post.failed",
    ]
    assert lines[0]["password"] == REDACTED
    assert lines[0]["headers"] == {"Authorization": [f"Bearer {REDACTED}"]}
    assert "RuntimeError: login refused for password ********" in lines[2]["exception"]
    for line in lines:  # as read back, and as written
        for text in strings_in(line):
            assert secret not in text, text
    for form in forms(secret):
        assert form not in out.getvalue(), form


@pytest.mark.parametrize("secret", ESCAPED_SECRETS)
def test_console_lines_hold_no_secret_in_any_escaped_form(
    log_output: Callable[[str], io.StringIO], secret: str
) -> None:
    out = log_output("console")
    add_secret(secret)
    log_everywhere(secret)
    text = out.getvalue()
    assert "configured" in text and "config: " in text and "post.failed" in text
    assert "RuntimeError: login refused for password ********" in text
    for form in forms(secret):
        assert form not in text, form


def test_console_tracebacks_show_no_locals(log_output: Callable[[str], io.StringIO]) -> None:
    """Rich showed each frame's locals, strings cut to 80 characters with the line cut at the
    box's edge: no registered secret was whole, and 55 of its characters were shown."""
    out = log_output("console")
    add_secret(TOKEN)
    config = Credentials("https://am.example", TOKEN)

    def post(bearer: str, config: Credentials) -> None:
        raise ConnectionError("alertmanager unreachable")

    try:
        post(TOKEN, config)
    except ConnectionError:
        get_logger("streams.agents.notify").exception("notify.post_failed", alerts=1)
    text = out.getvalue()
    # the traceback is still there: frames, exception and message
    assert "in post" in text and "ConnectionError: alertmanager unreachable" in text
    for piece in pieces(TOKEN):
        assert piece not in text, piece


def test_a_long_secret_in_an_exception_message_is_scrubbed_before_rich_wraps_it(
    log_output: Callable[[str], io.StringIO],
) -> None:
    """Rich folds a word longer than its box onto the next line: the finished line held the
    token in two pieces, and a search for the whole one found neither."""
    out = log_output("console")
    add_secret(JWT)
    try:
        raise PermissionError(f"refused bearer {JWT}")
    except PermissionError:
        get_logger("test").exception("post.failed")
    text = out.getvalue()
    assert f"PermissionError: refused bearer {REDACTED}" in text
    for piece in pieces(JWT):
        assert piece not in text, piece


def test_every_written_form_of_a_secret_is_redacted() -> None:
    """The line pass after rendering catches what the renderers escape, on its own."""
    secret = 'Zq9"vL\\x-Grün'
    add_secret(secret)
    assert redact(f"password={secret}") == f"password={REDACTED}"
    assert redact(json.dumps({"password": secret})) == f'{{"password": "{REDACTED}"}}'
    assert redact(json.dumps({"password": secret}, ensure_ascii=False)) == (
        f'{{"password": "{REDACTED}"}}'
    )
    assert redact(repr({"password": secret})) == f"{{'password': '{REDACTED}'}}"
    assert redact(json.dumps(repr(secret))) == f"\"'{REDACTED}'\""


def test_the_longest_secret_is_masked_whole() -> None:
    add_secret("abcd-1234")
    add_secret("abcd-1234-wxyz")
    assert redact("a abcd-1234-wxyz b abcd-1234") == f"a {REDACTED} b {REDACTED}"


def test_short_secrets_and_unrelated_text_are_left_alone() -> None:
    add_secret("abc")  # shorter than MIN_SECRET_LENGTH: would blank out ordinary words
    add_secret("Kv8-secret")
    assert redact("abc abcd Kv8-secre") == "abc abcd Kv8-secre"


def test_the_event_is_not_touched_while_no_secret_is_registered() -> None:
    event = {"event": "x", "password": "Kv8-secret", "nested": {"a": ["Kv8-secret"]}}
    assert scrub_event(None, "info", event) is event
    assert event == {"event": "x", "password": "Kv8-secret", "nested": {"a": ["Kv8-secret"]}}
    add_secret("Kv8-secret")
    assert scrub_event(None, "info", event) == {
        "event": "x",
        "password": REDACTED,
        "nested": {"a": [REDACTED]},
    }
