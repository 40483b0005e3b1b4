"""The volume detector on NAB's realTweets files, through ``stormvarsel eval nab``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detectors.nab import corpus, run
from detectors.volume import VolumeDetector
from streams.eval_cli import eval_group
from tests.detector_support import DATA

NAB = DATA / "nab"
pytestmark = pytest.mark.skipif(
    not (NAB / "realTweets").is_dir(),
    reason=f"NAB data not found at {NAB} (../shared/data is absent)",
)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("nab-results")
    result = CliRunner().invoke(
        eval_group,
        [
            "nab",
            "--data",
            str(NAB / "realTweets"),
            "--labels",
            str(NAB / "labels" / "combined_windows.json"),
            "--results-dir",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output), out


def test_low_fp_target_met(evaluated: tuple[dict[str, Any], Path]) -> None:
    report, _ = evaluated
    assert report["profiles"]["reward_low_FP_rate"]["normalised"] >= 75.0


def test_standard_score_beats_published_detectors(evaluated: tuple[dict[str, Any], Path]) -> None:
    """Measured 84.1 with the default configuration (ARTime 80.1, CAD OSE 77.6)."""
    report, _ = evaluated
    assert report["profiles"]["standard"]["normalised"] >= 84.0
    assert report["profiles"]["reward_low_FN_rate"]["normalised"] >= 86.8


@pytest.mark.xfail(
    reason="target not reached: the default configuration scores 84.1 < 85", strict=True
)
def test_standard_target_85(evaluated: tuple[dict[str, Any], Path]) -> None:
    report, _ = evaluated
    assert report["profiles"]["standard"]["normalised"] >= 85.0


def test_results_are_nab_format_and_alerts_are_exactly_the_detections(
    evaluated: tuple[dict[str, Any], Path],
) -> None:
    report, out = evaluated
    assert sorted(report["files"]) == [p.name for p in corpus.data_files(NAB / "realTweets")]
    path = NAB / "realTweets" / "Twitter_volume_CRM.csv"
    with (out / "stormvarsel_Twitter_volume_CRM.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    series = corpus.read_series(path)
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert [r["timestamp"] for r in rows] == list(series.raw_timestamps)
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    assert sum(int(r["label"]) for r in rows) > 0
    # >= 0.5 exactly where the default configuration opens an episode (its alert).
    detector = VolumeDetector(run.DetectorConfig(bucket_minutes=5.0))
    opened = []
    for t, v in zip(series.times_ms, series.values, strict=True):
        step = detector.step(t, v)
        opened.append(step.transition is not None and step.transition.previous == 0)
    assert [float(r["anomaly_score"]) >= 0.5 for r in rows] == opened
    assert sum(opened) >= 3
    assert (out / "stormvarsel_standard_scores.csv").exists()
