"""Detector configuration: one fixed default, loadable from a dict or YAML, validated by key."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from detectors.timeslots import TimeZoneError, load_zone


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class BaselineConfig:
    """Seasonal baseline of the mention rate (see detectors.baseline)."""

    level_half_life_hours: float = 24.0
    day_half_life_days: float = 7.0
    week_half_life_weeks: float = 4.0
    day_prior_days: float = 1.0
    week_prior_weeks: float = 1.0
    clip_ratio: float = 3.0
    clip_floor_per_hour: float = 6.0
    warmup_hours: float = 24.0
    utc_offset_minutes: int = 0
    #: IANA zone of the brand's clock (e.g. "Europe/Oslo"); follows summer time. Empty: use
    #: the fixed ``utc_offset_minutes``.
    timezone: str = ""
    #: (brand id, IANA zone) pairs: brands whose clock differs from ``timezone``. Usually
    #: filled from the brands file's ``timezone`` keys; see ``DetectorConfig.for_brand``.
    brand_timezones: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SpikeConfig:
    """Brand-relative spike and build-up scores (see detectors.spikes)."""

    windows_minutes: tuple[float, ...] = (5.0, 60.0)
    pseudo_count: float = 2.0
    anchor_quantile: float = 0.9
    tail_quantile: float = 0.995
    tail_half_life_days: float = 14.0
    prior_sd: float = 0.5
    prior_weight_hours: float = 24.0
    min_tail_spread: float = 0.1
    spike_tails: float = 2.5
    cusum_drift: float = 0.0
    cusum_limit: float = 8.0
    cusum_cap: float = 3.0
    #: While a window's count is at or below its baseline, its CUSUM falls by at least
    #: ``cusum_limit`` per this many minutes; 0: only by u, as a plain CUSUM does.
    cusum_drain_minutes: float = 120.0
    learn_guard: float = 3.0
    gate_minutes: float = 60.0
    min_volume: float = 20.0
    cold_start_factor: float = 1.0


@dataclass(frozen=True)
class StateConfig:
    """Thresholds (score units: 1.0 = watch) and timing of the alert state machine.

    See detectors.states.
    """

    watch_enter: float = 1.0
    warning_enter: float = 1.5
    critical_enter: float = 3.0
    watch_exit: float = 0.5
    warning_exit: float = 1.0
    critical_exit: float = 2.0
    min_duration_minutes: float = 0.0
    cool_down_minutes: float = 120.0


@dataclass(frozen=True)
class StormConfig:
    """How sentiment turns volume evidence into storms and buzz (see detectors.brand)."""

    share_half_life_days: float = 7.0
    share_prior: float = 0.3
    share_prior_mentions: float = 50.0
    share_window_minutes: float = 60.0
    share_z: float = 3.5
    share_min_volume: float = 20.0
    min_negative: float = 10.0
    share_drop_z: float = 2.0
    share_clip_z: float = 2.0
    buzz_share_z: float = 1.0
    reach_half_life_days: float = 7.0
    figures_window_minutes: float = 60.0
    sustained_window_minutes: float = 360.0
    sustained_prior_phi: float = 0.05
    sustained_prior_windows: float = 4.0
    sustained_min_ratio: float = 1.5
    sustained_z: float = 5.0


@dataclass(frozen=True)
class DriversConfig:
    """What explains an episode, and how much memory that may take (see detectors.drivers)."""

    sample_per_minute: float = 4.0
    background_per_minute: float = 2.0
    top_k: int = 5
    top_terms: int = 10
    counter_capacity: int = 300
    background_half_life_days: float = 7.0
    recent_half_life_minutes: float = 60.0
    min_term_count: float = 3.0
    prior_rate: float = 0.01
    prior_strength: float = 10.0
    max_languages: int = 8


@dataclass(frozen=True)
class DetectorConfig:
    """Everything a brand's detector needs; the defaults are the one fixed configuration."""

    bucket_minutes: float = 1.0
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    spikes: SpikeConfig = field(default_factory=SpikeConfig)
    states: StateConfig = field(default_factory=StateConfig)
    storm: StormConfig = field(default_factory=StormConfig)
    drivers: DriversConfig = field(default_factory=DriversConfig)

    def replace(self, **changes: Any) -> DetectorConfig:
        return dataclasses.replace(self, **changes)

    def for_brand(self, brand: str) -> DetectorConfig:
        """The configuration of one brand's detector: its own zone from
        ``baseline.brand_timezones`` if it has one, and without the other brands' zones (so a
        brand's saved state does not depend on another brand's entry)."""
        b = self.baseline
        if not b.brand_timezones:
            return self
        zone = dict(b.brand_timezones).get(brand)
        if zone is None:
            return self.replace(baseline=dataclasses.replace(b, brand_timezones=()))
        own = dataclasses.replace(b, timezone=zone, utc_offset_minutes=0, brand_timezones=())
        return self.replace(baseline=own)

    def with_brand_timezones(self, zones: dict[str, str]) -> DetectorConfig:
        """This configuration with ``{brand id: zone}`` added to ``baseline.brand_timezones``
        (replacing a brand's entry if it had one)."""
        pairs = tuple(sorted((dict(self.baseline.brand_timezones) | zones).items()))
        config = self.replace(baseline=dataclasses.replace(self.baseline, brand_timezones=pairs))
        _validate(config)
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        """Build from a (possibly partial) dict; unknown keys and bad values name their key."""
        config = _build(cls, data, "")
        _validate(config)
        return config

    @classmethod
    def from_yaml(cls, path: Path) -> DetectorConfig:
        """The configuration in a YAML file. OSError when it cannot be opened; ConfigError, whose
        message the caller puts after the file's name, when it is not a valid configuration."""
        import yaml

        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 text (byte {exc.start})") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot read it as YAML: {' '.join(str(exc).split())}") from exc
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping at the top level")
        return cls.from_dict(data)


T = TypeVar("T")


def _build(cls: type[T], data: Any, prefix: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key")
    defaults = cls()
    values: dict[str, Any] = {}
    for name in known:
        key = f"{prefix}{name}"
        default = getattr(defaults, name)
        if name not in data:
            continue
        raw = data[name]
        if name == "brand_timezones":
            values[name] = _brand_zones(key, raw)
        elif dataclasses.is_dataclass(default):
            values[name] = _build(type(default), raw, f"{key}.")
        elif isinstance(default, bool):
            if not isinstance(raw, bool):
                raise ConfigError(f"{key}: expected true or false, got {raw!r}")
            values[name] = raw
        elif isinstance(default, int):
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ConfigError(f"{key}: expected an integer, got {raw!r}")
            values[name] = raw
        elif isinstance(default, float):
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
                raise ConfigError(f"{key}: expected a number, got {raw!r}")
            values[name] = float(raw)
        elif isinstance(default, str):
            if not isinstance(raw, str):
                raise ConfigError(f"{key}: expected a string, got {raw!r}")
            values[name] = raw
        elif isinstance(default, tuple):
            if not isinstance(raw, list | tuple) or not raw:
                raise ConfigError(f"{key}: expected a non-empty list, got {raw!r}")
            values[name] = tuple(_coerce_item(key, item, default[0]) for item in raw)
        else:
            values[name] = raw
    return cls(**values)


def _brand_zones(key: str, raw: Any) -> tuple[tuple[str, str], ...]:
    """``{brand: zone}`` (as written in YAML) or ``[[brand, zone], ...]`` (as ``to_dict`` gives)."""
    if isinstance(raw, dict):
        pairs: Any = list(raw.items())
    elif isinstance(raw, list | tuple):
        pairs = raw
    else:
        raise ConfigError(f"{key}: expected a mapping of brand ids to time zones, got {raw!r}")
    out: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ConfigError(f"{key}: expected a mapping of brand ids to time zones, got {raw!r}")
        brand, zone = pair
        if not isinstance(brand, str) or not isinstance(zone, str) or not brand:
            raise ConfigError(f"{key}: expected brand ids and zone names, got {pair!r}")
        out[brand] = zone
    return tuple(sorted(out.items()))


def _coerce_item(key: str, item: Any, like: Any) -> Any:
    if isinstance(item, bool) or not isinstance(item, int | float):
        raise ConfigError(f"{key}: expected numbers, got {item!r}")
    if isinstance(like, int) and not float(item).is_integer():
        raise ConfigError(f"{key}: expected integers, got {item!r}")
    return type(like)(item)


def _validate(config: DetectorConfig) -> None:
    def positive(key: str, value: float) -> None:
        if not value > 0:
            raise ConfigError(f"{key}: must be > 0, got {value!r}")

    def non_negative(key: str, value: float) -> None:
        if value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value!r}")

    positive("bucket_minutes", config.bucket_minutes)
    seconds = config.bucket_minutes * 60.0
    if seconds < 1.0 - 1e-9 or abs(seconds - round(seconds)) > 1e-6 * seconds:
        raise ConfigError(
            "bucket_minutes: must be a whole number of seconds (at least 1 s, e.g. 0.5 for "
            f"30 s), got {config.bucket_minutes!r} ({seconds:g} s)"
        )
    b = config.baseline
    for name in ("level_half_life_hours", "day_half_life_days", "week_half_life_weeks"):
        positive(f"baseline.{name}", getattr(b, name))
    # The priors weigh the coarser profile while a slot has no data: at 0 it is 0 / 0.
    for name in ("day_prior_days", "week_prior_weeks"):
        positive(f"baseline.{name}", getattr(b, name))
    for name in ("clip_floor_per_hour", "warmup_hours"):
        non_negative(f"baseline.{name}", getattr(b, name))
    if b.clip_ratio < 1:
        raise ConfigError(f"baseline.clip_ratio: must be >= 1, got {b.clip_ratio!r}")
    if b.timezone:
        try:
            load_zone(b.timezone)
        except TimeZoneError as exc:
            raise ConfigError(f"baseline.timezone: {exc}") from None
        if b.utc_offset_minutes:
            raise ConfigError(
                "baseline.utc_offset_minutes: give either it or baseline.timezone, not both"
            )
    for brand, zone in b.brand_timezones:
        try:
            load_zone(zone)
        except TimeZoneError as exc:
            raise ConfigError(f"baseline.brand_timezones: {brand}: {exc}") from None
    if not -1440 < b.utc_offset_minutes < 1440:
        offset = b.utc_offset_minutes
        raise ConfigError(f"baseline.utc_offset_minutes: must be under a day, got {offset!r}")
    s = config.spikes
    for window in s.windows_minutes:
        positive("spikes.windows_minutes", window)
    for name in (
        "gate_minutes",
        "pseudo_count",
        "tail_half_life_days",
        "prior_sd",
        "min_tail_spread",
        "spike_tails",
        "cusum_limit",
        "cusum_cap",
    ):
        positive(f"spikes.{name}", getattr(s, name))
    for name in (
        "prior_weight_hours",
        "cusum_drift",
        "cusum_drain_minutes",
        "min_volume",
        "cold_start_factor",
        "learn_guard",
    ):
        non_negative(f"spikes.{name}", getattr(s, name))
    if not 0.0 < s.anchor_quantile < s.tail_quantile < 1.0:
        raise ConfigError(
            "spikes.tail_quantile: must satisfy 0 < anchor_quantile < tail_quantile < 1, got "
            f"{s.anchor_quantile!r} and {s.tail_quantile!r}"
        )
    st = config.states
    for level in ("watch", "warning", "critical"):
        enter, exit_ = getattr(st, f"{level}_enter"), getattr(st, f"{level}_exit")
        # Scores are never negative: an exit threshold of 0 is never undershot (an episode
        # could not resolve) and an enter threshold of 0 is always reached (paging at once).
        positive(f"states.{level}_enter", enter)
        positive(f"states.{level}_exit", exit_)
        if exit_ > enter:
            raise ConfigError(f"states.{level}_exit: must be <= states.{level}_enter")
    if not st.watch_enter <= st.warning_enter <= st.critical_enter:
        raise ConfigError(
            "states.warning_enter: enter thresholds must rise watch<=warning<=critical"
        )
    non_negative("states.min_duration_minutes", st.min_duration_minutes)
    non_negative("states.cool_down_minutes", st.cool_down_minutes)
    sc = config.storm
    for name in (
        "share_half_life_days",
        "share_window_minutes",
        "share_z",
        "reach_half_life_days",
        "figures_window_minutes",
        "sustained_window_minutes",
        "sustained_z",
        # Weights of priors that are divided by when there is no data yet.
        "share_prior_mentions",
        "sustained_prior_windows",
    ):
        positive(f"storm.{name}", getattr(sc, name))
    for name in ("sustained_prior_phi", "sustained_min_ratio"):
        non_negative(f"storm.{name}", getattr(sc, name))
    for name in (
        "share_min_volume",
        "min_negative",
        "share_drop_z",
        "share_clip_z",
    ):
        non_negative(f"storm.{name}", getattr(sc, name))
    if not 0.0 < sc.share_prior < 1.0:
        raise ConfigError(f"storm.share_prior: must be in (0, 1), got {sc.share_prior!r}")
    d = config.drivers
    for name in (
        "sample_per_minute",
        "background_per_minute",
        "top_k",
        "top_terms",
        "counter_capacity",
        "background_half_life_days",
        "recent_half_life_minutes",
        "prior_rate",
        "prior_strength",
        "max_languages",
    ):
        positive(f"drivers.{name}", getattr(d, name))
    non_negative("drivers.min_term_count", d.min_term_count)
    # A half-life shorter than a bucket forgets more than half of everything at each bucket:
    # meaningless, and under a few seconds the lazily decayed counters overflow.
    for key, minutes in (
        ("baseline.level_half_life_hours", b.level_half_life_hours * 60.0),
        ("baseline.day_half_life_days", b.day_half_life_days * 1440.0),
        ("baseline.week_half_life_weeks", b.week_half_life_weeks * 10080.0),
        ("spikes.tail_half_life_days", s.tail_half_life_days * 1440.0),
        ("storm.share_half_life_days", sc.share_half_life_days * 1440.0),
        ("storm.reach_half_life_days", sc.reach_half_life_days * 1440.0),
        ("drivers.background_half_life_days", d.background_half_life_days * 1440.0),
        ("drivers.recent_half_life_minutes", d.recent_half_life_minutes),
    ):
        if minutes < config.bucket_minutes:
            raise ConfigError(
                f"{key}: must be at least one bucket ({config.bucket_minutes:g} minutes), "
                f"got {minutes:g} minutes"
            )
