"""What every part of the post-mortem report reads: the replay's result, its bins, charts,
episode timelines and (with a second configuration) the paired episodes."""

from __future__ import annotations

from dataclasses import dataclass

from streams.replay import charts
from streams.replay.charts import Bins, Chart
from streams.replay.compare import Pair, pair_episodes
from streams.replay.result import ReplayResult
from streams.replay.timeline import EpisodeTimeline, episodes
from streams.replay.times import parse_zone, show_time

TOP_TERMS = 10
TOP_HASHTAGS = 5
TOP_POSTS = 5
POST_CHARS = 280


@dataclass
class ReportContext:
    result: ReplayResult
    bins: Bins
    brands: list[str]
    charts: dict[str, list[Chart]]
    timelines: list[list[EpisodeTimeline]]  # per run
    pairs: list[Pair]

    def zone_time(self, ms: int | None) -> str:
        if ms is None:
            return "—"
        return show_time(ms, parse_zone(self.result.timezone))

    def episodes_of(self, run: int, brand: str) -> list[EpisodeTimeline]:
        return [e for e in self.timelines[run] if e.brand == brand]

    @property
    def only_candidate(self) -> set[str]:
        """Alert ids of the candidate's episodes the live configuration did not have."""
        return {p.candidate.alert_id for p in self.pairs if p.live is None and p.candidate}

    @property
    def open_until_ms(self) -> int:
        return self.bins.end_ms


def build_context(result: ReplayResult) -> ReportContext:
    bins = charts.bins_for(result)
    brands = sorted(result.brands(), key=lambda b: (result.brand_name(b).lower(), b))
    timelines = [episodes(run.alerts) for run in result.runs]
    open_until = bins.end_ms
    pairs = pair_episodes(timelines[0], timelines[1], open_until) if len(result.runs) > 1 else []
    return ReportContext(
        result=result,
        bins=bins,
        brands=brands,
        charts={b: charts.brand_charts(result, b, bins) for b in brands},
        timelines=timelines,
        pairs=pairs,
    )
