"""Reading and writing NAB's file formats: data files, label windows and result files."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_time(text: str) -> datetime:
    """NAB timestamps (UTC): ``2015-03-03 04:37:53``, with ``.000000`` appended in labels."""
    return datetime.strptime(text.strip().split(".", 1)[0], TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Series:
    """One NAB data file: the raw timestamp strings (kept for output), their times and values."""

    name: str
    raw_timestamps: tuple[str, ...]
    times: tuple[datetime, ...]
    values: tuple[float, ...]

    @property
    def times_ms(self) -> list[int]:
        return [int(t.timestamp() * 1000) for t in self.times]


def read_series(path: Path) -> Series:
    """Read a ``timestamp,value`` file."""
    raw: list[str] = []
    values: list[float] = []
    times: list[datetime] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected columns timestamp,value")
        for row in reader:
            line = reader.line_num
            try:
                time = parse_time(row["timestamp"] or "")
                value = float(row["value"] or "")
            except ValueError as exc:
                raise ValueError(f"{path}, line {line}: {exc}") from None
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{path}, line {line}: expected a count >= 0, got {value}")
            if times and time <= times[-1]:
                raise ValueError(f"{path}, line {line}: timestamps must increase")
            raw.append(row["timestamp"])
            times.append(time)
            values.append(value)
    if not raw:
        raise ValueError(f"{path}: no rows")
    return Series(path.name, tuple(raw), tuple(times), tuple(values))


@dataclass(frozen=True)
class SkippedFile:
    """A CSV file in a data directory that is not a NAB data file: its path and first line."""

    path: Path
    header: str

    def describe(self) -> str:
        if not self.header:
            return f"{self.path}: the file is empty"
        shown = self.header if len(self.header) <= 60 else self.header[:57] + "..."
        return f"{self.path}: its header is {shown!r}, not timestamp,value"


def scan_data_files(directory: Path) -> tuple[list[Path], list[SkippedFile]]:
    """The NAB-format CSVs in a directory (not recursive), in name order, and the other CSVs
    (skipped: their first line does not start with ``timestamp,value``)."""
    found: list[Path] = []
    skipped: list[SkippedFile] = []
    for path in sorted(directory.glob("*.csv")):
        if not path.is_file():
            continue
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            first = handle.readline().strip()
        if first.split(",")[:2] == ["timestamp", "value"]:
            found.append(path)
        else:
            skipped.append(SkippedFile(path, first))
    return found, skipped


def data_files(directory: Path) -> list[Path]:
    """Every NAB-format CSV in a directory (not recursive), in name order."""
    return scan_data_files(directory)[0]


Windows = list[tuple[datetime, datetime]]


def read_windows(labels_file: Path) -> dict[str, Windows]:
    """NAB's ``combined_windows.json``: data-file key (``category/file.csv``) -> windows."""
    try:
        raw = json.loads(labels_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{labels_file}: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{labels_file}: expected an object of file -> windows")
    out: dict[str, Windows] = {}
    for key, spans in raw.items():
        try:
            windows = [(parse_time(a), parse_time(b)) for a, b in spans]
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{labels_file}: {key}: expected [[start, end], ...] times ({exc})"
            ) from None
        if any(start > end for start, end in windows):
            raise ValueError(f"{labels_file}: {key}: a window ends before it starts")
        out[key] = windows
    return out


def windows_for(labels: dict[str, Windows], data_file: Path) -> Windows:
    """The windows of a data file, matched by ``<dir>/<name>`` as NAB keys them, else by name."""
    key = f"{data_file.parent.name}/{data_file.name}"
    if key in labels:
        return labels[key]
    matches = [k for k in labels if k.rsplit("/", 1)[-1] == data_file.name]
    if len(matches) == 1:
        return labels[matches[0]]
    raise KeyError(f"no labels for {data_file.name} in the labels file")


def read_result_scores(path: Path) -> list[float]:
    """The ``anomaly_score`` column of a NAB results file."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [float(row["anomaly_score"]) for row in csv.DictReader(handle)]


def write_results(
    path: Path,
    series: Series,
    anomaly_scores: Sequence[float],
    labels: Sequence[int],
) -> None:
    """Write a NAB results file: ``timestamp,value,anomaly_score,label``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for ts, value, score, label in zip(
            series.raw_timestamps, series.values, anomaly_scores, labels, strict=True
        ):
            writer.writerow([ts, _number(value), _number(score), label])


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
