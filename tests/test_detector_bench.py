"""The detector benchmark still runs and says at what load it measured (tiny sizes, no timing)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.compiled import compiled_modules

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "detector_bench.py"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_prints_throughput_at_the_load_it_ran_and_state_size() -> None:
    run = bench("--brands", "2", "--hours", "1", "--repeat", "2", "--state-days", "1")
    assert run.returncode == 0, run.stderr
    core, throughput, state = run.stdout.splitlines()
    assert re.fullmatch(r"detector core: (compiled with mypyc \(\d+ modules\)|plain .*)", core)
    load = re.search(r"from 09:00 \((\d+) mentions/min per brand\)", throughput)
    assert load, throughput
    # 09:00-10:00 of the daily rhythm, plus brand 0's storm: near, not at, the nominal 100.
    assert 60 <= int(load.group(1)) <= 100
    assert re.search(r"best of 2 runs [\d,]+ mention updates/s", throughput)
    assert re.search(r"after 1 days \([\d,]+ mentions, 1,440 buckets\)", state)


def test_the_quiet_hours_run_at_a_lower_load() -> None:
    small = ("--brands", "2", "--hours", "1", "--repeat", "1", "--state-days", "1")
    night = bench(*small, "--start-hour", "6")  # the daily rhythm's trough: a fifth of the mean
    day = bench(*small, "--start-hour", "18")  # its peak: 1.8 times the mean
    assert night.returncode == 0 and day.returncode == 0, night.stderr + day.stderr

    def load(run: subprocess.CompletedProcess[str]) -> int:
        found = re.search(r"\((\d+) mentions/min per brand\)", run.stdout)
        assert found, run.stdout
        return int(found.group(1))

    assert load(night) < load(day) / 4


def test_rejects_an_impossible_start_hour_or_repeat() -> None:
    for args in (("--start-hour", "24"), ("--repeat", "0")):
        run = bench(*args)
        assert run.returncode == 2
        assert args[0] in run.stderr


@pytest.mark.skipif(not compiled_modules(), reason="built as plain Python (HATCH_BUILD_NO_HOOKS)")
def test_against_plain_alternates_the_compiled_core_and_its_plain_sources() -> None:
    run = bench("--brands", "2", "--hours", "1", "--repeat", "2", "--against-plain")
    assert run.returncode == 0, run.stderr
    rounds = re.findall(
        r"round (\d): (compiled|plain Python): [\d,]+ mention updates/s", run.stdout
    )
    assert rounds == [
        ("1", "compiled"),
        ("1", "plain Python"),
        ("2", "compiled"),
        ("2", "plain Python"),
    ]
    assert re.search(r"against plain Python: best of 2 rounds, .* = \d+\.\d\dx", run.stdout)
