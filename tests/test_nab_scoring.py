"""NAB's scoring method, checked against NAB's own published results for ARTime."""

from __future__ import annotations

import csv

import pytest

from detectors.nab import corpus, scoring
from tests.detector_support import DATA

NAB = DATA / "nab"
ARTIME = NAB / "results" / "ARTime"
needs_nab = pytest.mark.skipif(
    not ARTIME.is_dir(), reason=f"NAB data not found at {NAB} (../shared/data is absent)"
)


def test_scaled_sigmoid_shape() -> None:
    assert scoring.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scoring.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scoring.scaled_sigmoid(3.5) == -1.0
    assert scoring.scaled_sigmoid(0.5) < 0 < scoring.scaled_sigmoid(-0.5)


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert scoring.probation_rows(1000) == 150
    assert scoring.probation_rows(15902) == 750


def test_small_file_by_hand() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2015, 1, 1, tzinfo=UTC)
    times = [t0 + timedelta(minutes=5 * i) for i in range(100)]
    windows = [(times[40], times[49])]  # rows 40..49, width 10
    weights = scoring.row_weights(times, windows)
    assert weights.n_windows == 1
    # Probation: 15 rows. Detections at row 42 (in window) and 60 (after it) and 20 (before).
    scores = [0.0] * 100
    scores[42] = scores[60] = scores[20] = 1.0
    result = scoring.score_file(weights, scores, 0.5, scoring.STANDARD)
    tp = scoring.scaled_sigmoid(-(49 - 42 + 1) / 10) / scoring.scaled_sigmoid(-1.0)
    fp_after = 0.11 * scoring.scaled_sigmoid(abs(60 - 49) / 9)
    fp_before = 0.11 * -1.0
    assert result.score == pytest.approx(tp + fp_after + fp_before)
    assert (result.tp, result.fp, result.windows_detected) == (1, 2, 1)
    # No detection at all costs fn_weight per window.
    nothing = scoring.score_file(weights, [0.0] * 100, 0.5, scoring.REWARD_LOW_FN)
    assert nothing.score == -2.0


def _artime_files() -> list[tuple[str, scoring.RowWeights, list[float]]]:
    labels = corpus.read_windows(NAB / "labels" / "combined_windows.json")
    out = []
    for path in corpus.data_files(NAB / "realTweets"):
        series = corpus.read_series(path)
        weights = scoring.row_weights(series.times, corpus.windows_for(labels, path))
        scores = corpus.read_result_scores(ARTIME / f"ARTime_{path.name}")
        out.append((f"realTweets/{path.name}", weights, scores))
    return out


@needs_nab
@pytest.mark.parametrize("profile", scoring.PROFILES, ids=lambda p: p.name)
def test_reproduces_artime_per_file_scores(profile: scoring.Profile) -> None:
    with (ARTIME / f"ARTime_{profile.name}_scores.csv").open(encoding="utf-8") as handle:
        published = {row["File"]: row for row in csv.DictReader(handle)}
    files = _artime_files()
    assert {name for name, *_ in files} == set(published)
    for name, weights, scores in files:
        row = published[name]
        result = scoring.score_file(weights, scores, float(row["Threshold"]), profile)
        assert result.score == pytest.approx(float(row["Score"]), abs=1e-9), name
        assert (result.tp, result.tn, result.fp, result.fn, result.total) == (
            int(row["TP"]),
            int(row["TN"]),
            int(row["FP"]),
            int(row["FN"]),
            int(row["Total_Count"]),
        ), name


@needs_nab
def test_reproduces_artime_normalised_subset_scores() -> None:
    files = _artime_files()
    thresholds = {
        "standard": 0.317486,
        "reward_low_FP_rate": 0.317585,
        "reward_low_FN_rate": 0.317486,
    }
    expected = {"standard": 80.1, "reward_low_FP_rate": 66.2, "reward_low_FN_rate": 86.8}
    n_windows = sum(w.n_windows for _, w, _ in files)
    assert n_windows == 15
    for profile in scoring.PROFILES:
        total = sum(
            scoring.score_file(w, s, thresholds[profile.name], profile).score for _, w, s in files
        )
        assert round(scoring.normalised(total, n_windows, profile), 1) == expected[profile.name]


@needs_nab
def test_swept_threshold_is_at_least_as_good_as_the_published_one() -> None:
    files = [(w, s) for _, w, s in _artime_files()]
    threshold, raw = scoring.best_threshold(files, scoring.STANDARD)
    assert scoring.normalised(raw, 15, scoring.STANDARD) >= 80.1
    fixed = sum(scoring.score_file(w, s, threshold, scoring.STANDARD).score for w, s in files)
    assert fixed == pytest.approx(raw)
