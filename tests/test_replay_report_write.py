"""A report that cannot be written whole leaves the directory's earlier report as it was: a
file-size limit (as a full disk) stops the writing part-way, for real (no Kafka)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Writes a report of a day of steady mentions, under RLIMIT_FSIZE when a limit is given:
# a write past it fails with EFBIG (SIGXFSZ ignored), as a full disk fails with ENOSPC.
WRITER = """
import resource, signal, sys
from pathlib import Path
from detectors.config import DetectorConfig
from streams.replay.report import write_report
from streams.replay.result import BucketPoint, ReplayResult, RunResult

out, limit = Path(sys.argv[1]), int(sys.argv[2])
run = RunResult("live configuration", DetectorConfig())
run.buckets["acme"] = [
    BucketPoint(start_ms=i * 60_000, end_ms=(i + 1) * 60_000, volume=5, negative=1,
                expected_volume=4.5, negative_share_baseline=0.2, storm_level=0,
                buzz_level=0)
    for i in range(24 * 60)
]
result = ReplayResult(topic="mentions", stage="scored", start_ms=0, end_ms=24 * 3_600_000,
                      warmup_start_ms=0, runs=[run], brand_names={"acme": "Acme"})
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    write_report(result, out)
except OSError as exc:
    print("failed:", exc.strerror)
    sys.exit(3)
"""


def write(out: Path, limit: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(out), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_a_failed_write_keeps_the_earlier_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    earlier = {}
    for name in ("report.html", "summary.md", "volume.csv", "negative_share.csv", "timeline.csv"):
        earlier[name] = f"the earlier replay's {name}\n"
        (out / name).write_text(earlier[name], encoding="utf-8")
    done = write(out, limit=20_000)  # the page alone is larger
    assert done.returncode == 3, done.stdout + done.stderr
    assert "failed" in done.stdout
    for name, text in earlier.items():
        assert (out / name).read_text(encoding="utf-8") == text, name
    assert sorted(p.name for p in out.iterdir()) == sorted(earlier)  # nothing half-written


def test_a_complete_write_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "volume.csv").write_text("old\n", encoding="utf-8")
    done = write(out)
    assert done.returncode == 0, done.stdout + done.stderr
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "summary.md", "volume.csv", "timeline.csv", "alerts.jsonl"} <= names
    assert not any(n.startswith(".") for n in names)
    assert (out / "volume.csv").read_text(encoding="utf-8").startswith("brand,bin_start")
    assert len((out / "volume.csv").read_text(encoding="utf-8").splitlines()) > 24 * 6
