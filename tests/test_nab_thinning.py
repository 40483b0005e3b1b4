"""The thinning benchmark scores what ``eval nab`` scores, reproducibly, and refuses bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.detector_support import DATA

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "nab_thinning.py"
NAB = DATA / "nab"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def draws(run: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.mark.skipif(
    not (NAB / "realTweets").is_dir(),
    reason=f"NAB data not found at {NAB} (../shared/data is absent)",
)
def test_unthinned_is_the_eval_score_and_a_seed_repeats() -> None:
    args = (
        "--data",
        str(NAB / "realTweets"),
        "--labels",
        str(NAB / "labels" / "combined_windows.json"),
        "--json",
    )
    first = draws(bench(*args, "--keep", "1", "0.5", "--seeds", "1"))
    again = draws(bench(*args, "--keep", "0.5", "--seeds", "2"))
    full, half = first
    assert (full["keep"], full["windows"]) == (1.0, 15)
    # Keeping every tweet is exactly `stormvarsel eval nab` (tests/test_nab_detector.py).
    assert round(full["scores"]["standard"], 1) == 84.1
    assert (full["detected"], full["false_alarms"]) == (14, 8)
    assert again[0] == half  # seed 0 draws the same counts every time
    assert again[1]["seed"] == 1 and again[1]["scores"] != half["scores"]
    assert half["scores"]["standard"] < full["scores"]["standard"]


def test_refuses_bad_fractions_seeds_and_missing_data(tmp_path: Path) -> None:
    for args, said in (
        (("--keep", "0"), "must be in (0, 1]"),
        (("--keep", "1.5"), "must be in (0, 1]"),
        (("--keep", "half"), "not a number"),
        (("--seeds", "0"), "must be at least 1"),
        (("--data", str(tmp_path / "nowhere")), "no such directory"),
        (("--data", str(tmp_path)), "no NAB-format CSV files"),
    ):
        run = bench(*args)
        assert run.returncode == 2, (args, run.stderr)
        assert said in run.stderr, (args, run.stderr)
