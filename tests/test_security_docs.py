"""SECURITY.md's promises about memory match what the worker does.

It said "bounded memory whatever arrives", but de-duplication remembers every distinct valid id
of a configured brand for a whole window: a flood of made-up ids grows it until the worker runs
out of memory. The page now says so, with the measured cost and the mitigations it names.
"""

from __future__ import annotations

from tests.conftest import REPO

SECURITY = (REPO / "SECURITY.md").read_text(encoding="utf-8")


def test_security_md_does_not_promise_memory_bounded_whatever_arrives() -> None:
    assert "whatever arrives:" not in SECURITY.lower()


def test_the_de_duplication_bound_and_its_mitigations_are_stated() -> None:
    section = SECURITY.split("**Not bounded by count: de-duplication.**", 1)[1].split("\n- ", 1)[0]
    for needed in (
        "STORMVARSEL_DEDUP_WINDOW_S",
        "STORMVARSEL_HTTP_INGEST_TOKEN",
        "2.6 kB",
        "per mention",
        "http.ingest_open",
        "VmRSS",
    ):
        assert needed in section, needed


def test_the_start_up_warning_it_names_exists() -> None:
    app = (REPO / "streams" / "app.py").read_text(encoding="utf-8")
    assert '"http.ingest_open"' in app
