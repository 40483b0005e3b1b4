"""Configuration loading and validation, and the mention record adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.config import ConfigError, DetectorConfig
from detectors.events import MentionEvent
from detectors.replay import Replayer, replay
from tests.detector_support import T0, stream


def test_defaults_round_trip_through_a_dict() -> None:
    config = DetectorConfig()
    assert DetectorConfig.from_dict(config.to_dict()) == config
    assert DetectorConfig.from_dict({}) == config


def test_brand_time_zones_round_trip_and_resolve_per_brand() -> None:
    config = DetectorConfig.from_dict(
        {"baseline": {"timezone": "Europe/Oslo", "brand_timezones": {"acme": "America/Chicago"}}}
    )
    assert DetectorConfig.from_dict(config.to_dict()) == config
    acme, other = config.for_brand("acme").baseline, config.for_brand("globex").baseline
    assert (acme.timezone, acme.brand_timezones) == ("America/Chicago", ())
    assert (other.timezone, other.brand_timezones) == ("Europe/Oslo", ())
    merged = config.with_brand_timezones({"globex": "Europe/London"})
    assert dict(merged.baseline.brand_timezones) == {
        "acme": "America/Chicago",
        "globex": "Europe/London",
    }


def test_partial_yaml(tmp_path: Path) -> None:
    path = tmp_path / "detector.yaml"
    path.write_text(
        "bucket_minutes: 5\nstates:\n  watch_enter: 1.2\nspikes:\n  windows_minutes: [5, 30]\n"
    )
    config = DetectorConfig.from_yaml(path)
    assert config.bucket_minutes == 5.0
    assert config.states.watch_enter == 1.2
    assert config.spikes.windows_minutes == (5.0, 30.0)
    assert config.states.warning_enter == DetectorConfig().states.warning_enter


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"bucket_minutes": 0}, "bucket_minutes"),
        ({"states": {"watch_exit": 5.0}}, "states.watch_exit"),
        ({"spikes": {"tail_quantile": 0.2}}, "spikes.tail_quantile"),
        ({"spikes": {"nonsense": 1}}, "spikes.nonsense"),
        ({"baseline": {"clip_ratio": "high"}}, "baseline.clip_ratio"),
        ({"storm": {"share_prior": 1.5}}, "storm.share_prior"),
        ({"drivers": {"top_k": 0}}, "drivers.top_k"),
        ({"states": 3}, "states"),
        ({"baseline": {"timezone": "Europe/Atlantis"}}, "baseline.timezone"),
        ({"baseline": {"timezone": 1}}, "baseline.timezone"),
        ({"baseline": {"timezone": "Europe/Oslo", "utc_offset_minutes": 60}}, "baseline.utc"),
        ({"baseline": {"utc_offset_minutes": 1500}}, "baseline.utc_offset_minutes"),
        ({"baseline": {"brand_timezones": {"acme": "Mars/Base"}}}, "baseline.brand_timezones"),
        ({"baseline": {"brand_timezones": ["acme"]}}, "baseline.brand_timezones"),
        ({"baseline": {"brand_timezones": "acme"}}, "baseline.brand_timezones"),
        # Accepted once, then every detector crashed (division by zero, modulo by zero, overflow)
        ({"storm": {"share_prior_mentions": 0}}, "storm.share_prior_mentions"),
        ({"storm": {"sustained_prior_windows": 0}}, "storm.sustained_prior_windows"),
        ({"bucket_minutes": 0.000001}, "bucket_minutes"),  # rounded to a bucket of 0 ms
        ({"bucket_minutes": 0.01}, "bucket_minutes"),  # 0.6 s: not a whole number of seconds
        ({"baseline": {"day_prior_days": 0}}, "baseline.day_prior_days"),
        ({"baseline": {"week_prior_weeks": 0}}, "baseline.week_prior_weeks"),
        ({"drivers": {"recent_half_life_minutes": 0.5}}, "drivers.recent_half_life_minutes"),
        ({"spikes": {"tail_half_life_days": 1e-9}}, "spikes.tail_half_life_days"),
        # Accepted once: an exit threshold of 0 is never undershot (episodes never resolved),
        # an enter threshold of 0 always reached (every brand paged at once).
        ({"states": {"watch_exit": 0}}, "states.watch_exit"),
        ({"states": {"watch_enter": 0, "watch_exit": 0}}, "states.watch_enter"),
        ({"states": {"critical_exit": -1}}, "states.critical_exit"),
    ],
)
def test_validation_names_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        DetectorConfig.from_dict(data)
    assert str(info.value).startswith(key), str(info.value)


def _edge_configs() -> list[dict[str, dict[str, float]]]:
    out = []
    for section, values in DetectorConfig().to_dict().items():
        if isinstance(values, dict):
            for key, default in values.items():
                if isinstance(default, int | float) and not isinstance(default, bool):
                    out += [{section: {key: edge}} for edge in (0, 1e-9)]
    return out


def test_every_configuration_validation_accepts_runs() -> None:
    """Validation is the only guard: a value it lets through must give a working detector
    (it once let through values that crashed every detector on its first bucket)."""
    events = list(stream("acme", T0, 30, lambda t: 2.0))
    ran = 0
    for data in [*_edge_configs(), {"bucket_minutes": 0.5}, {"bucket_minutes": 1 / 60}]:
        try:
            config = DetectorConfig.from_dict(data)
        except ConfigError:
            continue
        assert list(replay(events, config)), data
        ran += 1
    assert ran > 20


def test_bucket_lengths_are_whole_seconds() -> None:
    assert Replayer(DetectorConfig.from_dict({"bucket_minutes": 1 / 60})).bucket_ms == 1000
    assert Replayer(DetectorConfig.from_dict({"bucket_minutes": 0.1})).bucket_ms == 6000
    with pytest.raises(ConfigError, match="whole number of seconds"):
        DetectorConfig.from_dict({"bucket_minutes": 1 / 120})


def test_mention_event_from_a_scored_record() -> None:
    record = {
        "id": "p1",
        "text": "Kundeservice svarer ikke",
        "created_at_ms": 1_772_000_000_000,
        "brand": "acme",
        "platform": "x",
        "lang": "nb",
        "author": {"id": "u1", "handle": "@kari", "followers": 1200},
        "url": "https://x.example/p1",
        "engagement": {"likes": 3, "shares": 1, "replies": 2},
        "is_brand_reply": False,
        "sentiment": {"label": "negative", "negative": 0.9, "neutral": 0.08, "positive": 0.02},
    }
    event = MentionEvent.from_record(record)
    assert (event.brand, event.sentiment, event.followers, event.author) == (
        "acme",
        "negative",
        1200,
        "u1",
    )
    assert event.engagement == 6 and event.lang == "nb" and event.event_ms == 1_772_000_000_000
    with pytest.raises(ValueError, match=r"sentiment\.label"):
        MentionEvent.from_record({**record, "sentiment": {"label": "angry"}})
    with pytest.raises(ValueError, match="created_at_ms"):
        MentionEvent.from_record({k: v for k, v in record.items() if k != "created_at_ms"})
    # Times a detector cannot use: not finite (JSON's Infinity, NaN), or far outside the years
    # 2000-2100 (a detector would close every bucket up to such a time, one by one).
    for created in (float("inf"), float("nan"), 1e30, -1.0, 4_102_444_800_000):
        with pytest.raises(ValueError, match="created_at_ms"):
            MentionEvent.from_record({**record, "created_at_ms": created})
    with pytest.raises(ValueError, match=r"author\.followers"):
        MentionEvent.from_record({**record, "author": {"followers": float("inf")}})


def test_a_detector_file_that_cannot_be_read_is_named_once(tmp_path: Path) -> None:
    """The file's name came twice, and a missing file read "cannot read it as YAML":
    ``error: --config: /nope.yaml: /nope.yaml: cannot read it as YAML: [Errno 2] ...``."""
    from streams.app import load_detector_config
    from streams.errors import ConfigError as SettingError
    from streams.replay.command import load_candidate
    from streams.settings import Settings

    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError):
        DetectorConfig.from_yaml(missing)
    with pytest.raises(SettingError) as replay:
        load_candidate(missing)
    assert str(replay.value) == f"--config: cannot read {missing} (No such file or directory)"
    with pytest.raises(SettingError) as worker:
        load_detector_config(Settings(detector_config=missing))
    assert str(worker.value) == (
        f"STORMVARSEL_DETECTOR_CONFIG: cannot read {missing} (No such file or directory)"
    )

    broken = tmp_path / "broken.yaml"
    broken.write_text("spikes: [\n", encoding="utf-8")
    with pytest.raises(SettingError) as caught:
        load_candidate(broken)
    assert str(caught.value).startswith(f"--config: {broken}: cannot read it as YAML: ")
    assert str(caught.value).count(str(broken)) == 1
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"# bl\xe5\n")
    with pytest.raises(SettingError, match=r"latin\.yaml: not UTF-8 text \(byte 4\)$"):
        load_candidate(latin)
