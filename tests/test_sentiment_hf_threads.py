"""The transformers backend's threads follow the container's CPU quota, like e5's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import REPO
from tests.test_sentiment_hf import build_tiny_model

# In a fresh process: torch's inter-op pool can be sized once, before any parallel work.
PROBE = """
import sys
from pathlib import Path
import torch
from streams.sentiment import e5_scorer
from streams.sentiment.hf_backend import TransformersScorer

e5_scorer.CGROUP_CPU_MAX = Path(sys.argv[2])
TransformersScorer(sys.argv[1], threads=0)
print("THREADS", torch.get_num_threads(), torch.get_num_interop_threads())
TransformersScorer(sys.argv[1], threads=0)  # the pool is sized already: kept, no error
print("THREADS", torch.get_num_threads(), torch.get_num_interop_threads())
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to see a quota of 1")
def test_threads_0_means_one_per_cpu_of_the_cgroup_quota(tmp_path: Path) -> None:
    """STORMVARSEL_SENTIMENT_THREADS=0 with ``--cpus 1`` on a bigger host: one thread, not one
    per host core (torch's default), in both torch pools."""
    model = build_tiny_model(tmp_path / "tiny", {0: "NEG", 1: "NEU", 2: "POS"})
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n", encoding="ascii")  # a quota of 1 CPU
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(model), str(cpu_max)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [line for line in done.stdout.splitlines() if line.startswith("THREADS")]
    assert seen == ["THREADS 1 1", "THREADS 1 1"], done.stdout[-3000:]
