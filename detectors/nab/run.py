"""Run the volume detector over NAB files and score the results with NAB's method."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.config import DetectorConfig
from detectors.nab import corpus, scoring
from detectors.states import NORMAL
from detectors.volume import VolumeDetector

DETECTOR_NAME = "stormvarsel"
#: NAB counts a detection where the anomaly score is >= this threshold.
ALERT_THRESHOLD = 0.5


def bucket_minutes_of(series: corpus.Series) -> float:
    """The data's own bin width: the most common gap between consecutive rows."""
    gaps: dict[int, int] = {}
    ms = series.times_ms
    for a, b in itertools.pairwise(ms):
        gaps[b - a] = gaps.get(b - a, 0) + 1
    if not gaps:
        return 5.0
    return max(gaps.items(), key=lambda kv: (kv[1], -kv[0]))[0] / 60_000


def anomaly_scores(series: corpus.Series, config: DetectorConfig | None = None) -> list[float]:
    """One anomaly score per row, >= 0.5 exactly on rows where an episode opens (an alert).

    Other rows get ``0.5 * z / (z + watch_enter)`` for positive spike scores z (else 0): below
    0.5 always, rising with the evidence, so NAB's threshold sweep has something to sweep.
    """
    base = config or DetectorConfig()
    config = base.replace(bucket_minutes=bucket_minutes_of(series))
    detector = VolumeDetector(config)
    watch = config.states.watch_enter
    out: list[float] = []
    for start_ms, value in zip(series.times_ms, series.values, strict=True):
        step = detector.step(start_ms, value)
        z = step.spike.score
        t = step.transition
        if t is not None and t.previous == NORMAL and t.level > NORMAL:
            out.append(min(1.0, ALERT_THRESHOLD + 0.5 * (1.0 - math.exp(-max(z, 0.0) / watch))))
        else:
            out.append(0.5 * max(z, 0.0) / (max(z, 0.0) + watch) if z > 0 else 0.0)
    return out


@dataclass(frozen=True)
class FileResult:
    name: str
    series: corpus.Series
    weights: scoring.RowWeights
    scores: list[float]
    labels: list[int]


def run_files(
    paths: Sequence[Path], labels: dict[str, corpus.Windows], config: DetectorConfig | None = None
) -> list[FileResult]:
    """Run and place every file; a labelled window NAB cannot score is a ValueError naming the
    file (:class:`scoring.WindowError`), a file without labels a KeyError."""
    results = []
    for path in paths:
        series = corpus.read_series(path)
        try:
            weights = scoring.row_weights(series.times, corpus.windows_for(labels, path))
        except scoring.WindowError as exc:
            raise scoring.WindowError(f"{path}: {exc}") from None
        scores = anomaly_scores(series, config)
        flags = [1 if w >= 0 else 0 for w in weights.window]
        results.append(FileResult(path.name, series, weights, scores, flags))
    return results


def summary(results: Sequence[FileResult], threshold: float = ALERT_THRESHOLD) -> dict[str, float]:
    out = {}
    for profile in scoring.PROFILES:
        total = sum(
            scoring.score_file(r.weights, r.scores, threshold, profile).score for r in results
        )
        out[profile.name] = scoring.normalised(
            total, sum(r.weights.n_windows for r in results), profile
        )
    return out


@dataclass(frozen=True)
class ProfileReport:
    """One profile's figures for a set of files."""

    profile: str
    normalised: float
    per_file_raw: dict[str, float]
    per_file_normalised: dict[str, float]
    #: None when no threshold scores above never detecting anything (NAB's null score).
    swept_threshold: float | None
    swept_normalised: float


def report(
    results: Sequence[FileResult], threshold: float = ALERT_THRESHOLD
) -> list[ProfileReport]:
    """NAB scores of a run at the alert threshold, per file and overall, plus NAB's own
    swept-threshold optimum for comparison."""
    n_windows = sum(r.weights.n_windows for r in results)
    reports = []
    for profile in scoring.PROFILES:
        raw = {
            r.name: scoring.score_file(r.weights, r.scores, threshold, profile).score
            for r in results
        }
        per_file = {
            r.name: scoring.normalised(raw[r.name], r.weights.n_windows, profile) for r in results
        }
        best_at, best_raw = scoring.best_threshold(
            [(r.weights, r.scores) for r in results], profile
        )
        reports.append(
            ProfileReport(
                profile.name,
                scoring.normalised(sum(raw.values()), n_windows, profile),
                raw,
                per_file,
                best_at if math.isfinite(best_at) else None,
                scoring.normalised(best_raw, n_windows, profile),
            )
        )
    return reports


def write_all(results: Sequence[FileResult], out_dir: Path, detector: str = DETECTOR_NAME) -> None:
    """NAB-format results, one file per input, named ``<detector>_<input name>``."""
    for r in results:
        corpus.write_results(out_dir / f"{detector}_{r.name}", r.series, r.scores, r.labels)
    for rep, profile in zip(report(results), scoring.PROFILES, strict=True):
        path = out_dir / f"{detector}_{profile.name}_scores.csv"
        lines = ["Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count"]
        for r in results:
            fs = scoring.score_file(r.weights, r.scores, ALERT_THRESHOLD, profile)
            lines.append(
                f"{detector},{profile.name},{r.name},{ALERT_THRESHOLD},{fs.score!r},"
                f"{fs.tp},{fs.tn},{fs.fp},{fs.fn},{fs.total}"
            )
        lines.append(
            f"{detector},{profile.name},Totals,{ALERT_THRESHOLD},"
            f"{sum(rep.per_file_raw.values())!r},,,,,"
        )
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
