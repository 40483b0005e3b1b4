"""The volume detector on NAB's realTweets files, through ``stormvarsel eval nab``."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detectors.nab import corpus, crossval, run
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


def _two_files(tmp_path: Path) -> Path:
    data = tmp_path / "two"
    data.mkdir()
    for name in ("Twitter_volume_CRM.csv", "Twitter_volume_CVS.csv"):
        (data / name).symlink_to(NAB / "realTweets" / name)
    return data


def test_leave_one_out_scores_each_file_with_a_configuration_chosen_on_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crossval, "GRID", {"cusum_limit": (4.0, 16.0)})
    labels = corpus.read_windows(NAB / "labels" / "combined_windows.json")
    paths = corpus.data_files(_two_files(tmp_path))
    calls: list[tuple[int, int]] = []
    folds, cv, default = crossval.leave_one_out(
        paths, labels, progress=lambda d, t: calls.append((d, t))
    )

    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert [f.held_out for f in folds] == [p.name for p in paths]

    def standard(path: Path, limit: float | None) -> float:
        config = run.DetectorConfig()
        if limit is not None:
            config = config.replace(spikes=dataclasses.replace(config.spikes, cusum_limit=limit))
        return run.summary(run.run_files([path], labels, config))["standard"]

    for fold, train in zip(folds, reversed(paths), strict=True):
        held = next(p for p in paths if p.name == fold.held_out)
        # Chosen on the other file alone, then scored on the held-out one.
        scores = {limit: standard(train, limit) for limit in (4.0, 16.0)}
        assert fold.chosen["cusum_limit"] == max(scores, key=lambda k: (scores[k], -k))
        assert fold.train_normalised == pytest.approx(scores[fold.chosen["cusum_limit"]])
        assert fold.held_out_normalised == pytest.approx(standard(held, fold.chosen["cusum_limit"]))
        assert fold.default_held_out_normalised == pytest.approx(standard(held, None))
    assert default == pytest.approx(run.summary(run.run_files(paths, labels))["standard"])
    # Both files have three windows: the cross-validated score is the mean of the held-out ones.
    assert [len(corpus.windows_for(labels, p)) for p in paths] == [3, 3]
    assert cv == pytest.approx(sum(f.held_out_normalised for f in folds) / 2)


def test_eval_nab_leave_one_out_reports_every_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crossval, "GRID", {"cusum_limit": (8.0, 16.0)})
    result = CliRunner().invoke(
        eval_group,
        [
            "nab",
            "--data",
            str(_two_files(tmp_path)),
            "--labels",
            str(NAB / "labels" / "combined_windows.json"),
            "--leave-one-out",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    loo = json.loads(result.output)["leave_one_out"]
    assert [f["held_out"] for f in loo["folds"]] == [
        "Twitter_volume_CRM.csv",
        "Twitter_volume_CVS.csv",
    ]
    assert all(f["chosen"]["cusum_limit"] in (8.0, 16.0) for f in loo["folds"])
    assert loo["default_standard"] == pytest.approx(
        json.loads(result.output)["profiles"]["standard"]["normalised"], abs=1e-3
    )
