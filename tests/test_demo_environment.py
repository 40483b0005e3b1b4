"""What the demo takes from the shell it runs in, checked before anything starts.

The demo is run from the shell of a real deployment, too: its worker's environment was a copy
of that shell, so with --no-services (or without Alertmanager installed) the made-up storm went
to the real Alertmanager of STORMVARSEL_ALERTMANAGER_URLS; a lower-case setting beside the
demo's own made the worker refuse to start ("set twice"), with no reason shown; a deployment's
brands file made the story's mentions match no brand, and the demo played to nobody, exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.demo import REPO_BRANDS, check_demo_brands, demo_worker_env
from streams.errors import StormvarselError
from tests.conftest import REPO


def test_the_demo_worker_never_gets_the_shells_alertmanager() -> None:
    shell = {
        "PATH": "/usr/bin",
        "STORMVARSEL_ALERTMANAGER_URLS": "https://pager:secret@alertmanager.prod.example:9093",
        "stormvarsel_alertmanager_token": "prod-token",
        "STORMVARSEL_ALERTMANAGER_TOKEN_FILE": "/run/secrets/am",
        "STORMVARSEL_SENTIMENT_BATCH_SIZE": "16",
    }
    env = demo_worker_env(shell, {"STORMVARSEL_TOPIC_PREFIX": "demo-1."})
    assert not [name for name in env if "ALERTMANAGER" in name.upper()], env
    assert env["PATH"] == "/usr/bin" and env["STORMVARSEL_SENTIMENT_BATCH_SIZE"] == "16"


def test_a_setting_the_demo_gives_replaces_every_spelling_of_it() -> None:
    shell = {"stormvarsel_log_format": "console", "Stormvarsel_Topic_Prefix": "prod."}
    env = demo_worker_env(
        shell, {"STORMVARSEL_LOG_FORMAT": "json", "STORMVARSEL_TOPIC_PREFIX": "demo-1."}
    )
    assert env == {"STORMVARSEL_LOG_FORMAT": "json", "STORMVARSEL_TOPIC_PREFIX": "demo-1."}


def test_a_brands_file_without_the_storys_brands_is_refused() -> None:
    check_demo_brands(REPO_BRANDS)  # as shipped
    airlines = REPO / "docs" / "examples" / "airlines-brands.yaml"
    with pytest.raises(StormvarselError, match="unset STORMVARSEL_BRANDS_FILE") as raised:
        check_demo_brands(airlines)
    assert "fjellbrod" in str(raised.value) and "nordlys-energi" in str(raised.value)


def test_a_report_dir_that_cannot_be_written_is_refused_before_the_story(
    tmp_path: Path,
) -> None:
    """It was a traceback after the whole four-minute story."""
    afile = tmp_path / "afile"
    afile.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["demo", "--report-dir", str(afile / "report")])
    assert result.exit_code == 2, result.output
    assert "--report-dir" in result.output and "not a writable directory" in result.output
