"""Benchmark arguments that ran into a division by zero (found in a review of the evaluation and
training commands)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "detector_bench.py"


def test_detector_bench_refuses_hours_shorter_than_a_minute() -> None:
    """--hours 0.005 is 0.3 minutes, rounded to 0: the load divided by it (ZeroDivisionError)."""
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--hours", "0.005", "--brands", "1", "--state-days", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "--hours 0.005 is less than a minute" in run.stderr
    assert "Traceback" not in run.stderr
