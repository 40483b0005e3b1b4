"""Replay of the Kafka history for post-mortems (``stormvarsel replay``; docs/replay.md).

The public API, imported lazily so that the pure report writer does not pull in Kafka or Faust:

- :func:`run_replay` (``streams.replay.run``): plan a time range on Kafka, run it through the
  live stages' code, return a :class:`ReplayResult`; :class:`ReplayOptions` says what to replay;
  :class:`NoMentions` is raised for a range without data.
- :func:`write_report` (``streams.replay.report``): ``write_report(result, out_dir)`` writes the
  HTML page, the Markdown summary and the CSV files and returns :class:`ReportPaths`.
- :class:`ReplayResult`, :class:`RunResult`, :class:`BucketPoint` (``streams.replay.result``):
  plain data; :class:`ReplayEngine` (``streams.replay.engine``): the pipeline without Kafka.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.replay.engine import ReplayEngine, RunSpec, SourceRecord
    from streams.replay.report import ReportPaths, write_report
    from streams.replay.result import BucketPoint, ReplayCounts, ReplayResult, RunResult
    from streams.replay.run import ReplayOptions, run_replay
    from streams.replay.source import NoMentions, ReplayError, ReplayOptionError

_EXPORTS = {
    "ReplayEngine": "engine",
    "RunSpec": "engine",
    "SourceRecord": "engine",
    "ReportPaths": "report",
    "write_report": "report",
    "BucketPoint": "result",
    "ReplayCounts": "result",
    "ReplayResult": "result",
    "RunResult": "result",
    "ReplayOptions": "run",
    "run_replay": "run",
    "NoMentions": "source",
    "ReplayError": "source",
    "ReplayOptionError": "source",
}

__all__ = [
    "BucketPoint",
    "NoMentions",
    "ReplayCounts",
    "ReplayEngine",
    "ReplayError",
    "ReplayOptionError",
    "ReplayOptions",
    "ReplayResult",
    "ReportPaths",
    "RunResult",
    "RunSpec",
    "SourceRecord",
    "run_replay",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streams.replay' has no attribute {name!r}")
    return getattr(importlib.import_module(f"streams.replay.{module}"), name)
