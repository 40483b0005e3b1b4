"""The README's first command, end to end and non-interactively, on ports and directories of its
own: the storm is paged, the post-mortem report is written, and everything is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from streams.demo_scenario import generate
from streams.kafka_local import free_port
from streams.local_services import alertmanager_tool, find_binary

pytestmark = pytest.mark.integration
SERVICES = bool(alertmanager_tool("alertmanager") and find_binary("prometheus"))


@pytest.mark.timeout(420)
def test_demo_pages_the_storm_writes_the_report_and_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    report = tmp_path / "report"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STORMVARSEL_")},
        "STORMVARSEL_KAFKA_LOCAL_PORT": str(free_port()),
        "STORMVARSEL_KAFKA_LOCAL_CONTROLLER_PORT": str(free_port()),
        "STORMVARSEL_KAFKA_LOCAL_DATA_DIR": str(state / "kafka"),
        "COLUMNS": "200",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--pace", "0.3", "--report-dir", str(report)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=400,
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    print(f"demo took {seconds:.0f} s")

    # The dead letters, then the page as the on-call person sees it.
    assert "invalid_json" in output and "missing_field:text" in output
    assert "PAGE: BrandStorm · nordlys-energi · critical" in output, output[-4000:]
    assert "UTKAST: må godkjennes av en person før publisering" in output
    assert "dobbelt trekk" in output  # the issue is named from the storm's own words
    assert "Escalate to head of communications now." in output
    if SERVICES:
        assert "as Alertmanager delivered it to the on-call receiver" in output
        assert "notification received: firing nordlys-energi critical" in output
        assert "notification received: resolved nordlys-energi critical" in output
        assert "Prometheus ready at http://127.0.0.1:" in output
    # Fjellbrød carried on as usual: the live view shows it, never in a storm.
    assert "fjellbrod" in output and "PAGE: BrandStorm · fjellbrod" not in output

    # The post-mortem report, with the storm in it.
    html = (report / "report.html").read_text(encoding="utf-8")
    summary = (report / "summary.md").read_text(encoding="utf-8")
    assert "<svg" in html and "Nordlys Energi" in html
    assert "critical" in summary and "Nordlys Energi" in summary
    for name in ("volume.csv", "negative_share.csv", "storm_level.csv", "timeline.csv"):
        assert (report / name).stat().st_size > 0, name
    assert f"Post-mortem report: {report / 'report.html'}" in output

    # Everything stopped: the demo's broker is gone, and so are its services.
    assert "Demo finished." in output and "Kafka stopped." in output
    assert "Worker stopped." in output
    assert not (state / "kafka" / "kafka.pid").exists()


def test_scenario_is_seeded_multilingual_and_tells_calm_storm_recovery() -> None:
    end = 1_795_000_000_000
    first, second = generate(end), generate(end)
    assert first.all == second.all  # the same story every time for the same end
    assert generate(end, seed=1).all != first.all
    langs = {m.get("lang") for m in first.storm} - {None}
    assert {"nb", "sv", "en"} <= langs
    minutes = (first.storm_end_ms - first.storm_start_ms) / 60_000
    calm_rate = len(first.calm) / (24 * 60)
    storm_rate = len(first.storm) / minutes
    assert storm_rate > 5 * calm_rate  # a wave, not a wobble
    assert all("brand" not in m for m in first.all)  # the worker matches brands from the text
    phases = (first.calm, first.storm, first.recovery)
    for phase in phases:
        times = [m["created_at"] for m in phase]
        assert times == sorted(times)
    assert first.calm[-1]["created_at"] < first.storm[0]["created_at"]
    assert first.storm[-1]["created_at"] < first.recovery[0]["created_at"]
    ms = [datetime.fromisoformat(m["created_at"]).timestamp() * 1000 for m in first.all]
    assert max(ms) <= end
