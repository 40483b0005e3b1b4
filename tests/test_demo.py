"""The README's first command, end to end, on ports and directories of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka_local import free_port
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_demo_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STORMVARSEL_")},
        "STORMVARSEL_KAFKA_LOCAL_PORT": str(free_port()),
        "STORMVARSEL_KAFKA_LOCAL_CONTROLLER_PORT": str(free_port()),
        "STORMVARSEL_KAFKA_LOCAL_DATA_DIR": str(state / "kafka"),
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "read from 'mentions'" in output and "10" in output
    assert "passed on for brand nordlys-energi" in output
    assert "dead-lettered: invalid_json" in output
    assert "dead-lettered: missing_field:text" in output
    assert "Scored ('mentions.scored', key = brand)" in output
    assert "negative" in output and "(detected)" in output and "(collector)" in output
    assert "Demo finished." in output and "Kafka stopped." in output
    # Nothing is left running: the broker of this data directory is gone.
    pid_file = state / "kafka" / "kafka.pid"
    assert not pid_file.exists()
