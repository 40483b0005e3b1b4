"""Per-brand series: the last closed bucket as gauges, and only for brands of the brands file."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from annotated_types import Le
from prometheus_client import REGISTRY

from streams import metrics
from streams.forwarding import FORWARD_REJECTION_REASONS
from streams.settings import Settings


def bucket(brand: str, volume: int, negative: int, level: str = "warning") -> dict[str, object]:
    return {
        "brand": brand,
        "volume": volume,
        "negative": negative,
        "expected_volume": 3.5,
        "negative_share_baseline": 0.2,
        "volume_score": 1.7,
        "negative_score": 2.4,
        "storm_level": level,
        "buzz_level": "normal",
        "end_ms": 1_700_000_060_000,
    }


def value(name: str, brand: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"brand": brand})


@pytest.fixture
def configured() -> Iterator[None]:
    saved = set(metrics._CONFIGURED)
    metrics.initialise(["nordlys-energi"], 60)
    yield
    metrics._CONFIGURED.clear()
    metrics._CONFIGURED.update(saved)
    metrics.forget_brands(saved)


def test_a_closed_bucket_sets_the_brand_gauges(configured: None) -> None:
    metrics.record_bucket(bucket("nordlys-energi", 20, 5))
    assert value("stormvarsel_brand_bucket_mentions", "nordlys-energi") == 20
    assert value("stormvarsel_brand_bucket_expected_mentions", "nordlys-energi") == 3.5
    assert value("stormvarsel_brand_negative_ratio", "nordlys-energi") == 0.25
    assert value("stormvarsel_brand_storm_level", "nordlys-energi") == 2
    assert value("stormvarsel_brand_bucket_end_timestamp_seconds", "nordlys-energi") == 1.70000006e9
    metrics.record_bucket(bucket("nordlys-energi", 0, 0, "critical"))
    assert math.isnan(value("stormvarsel_brand_negative_ratio", "nordlys-energi") or 0.0)
    assert value("stormvarsel_brand_storm_level", "nordlys-energi") == 3


def test_every_field_of_a_closed_bucket_reaches_its_own_gauge(configured: None) -> None:
    """Each gauge shows its own field of the bucket: with every field distinct (buzz at watch,
    storm at warning, distinct scores and baselines), a gauge fed from a neighbouring field (the
    buzz level from the storm level, the negative score from the volume score) reads wrong."""
    summary = {
        "brand": "nordlys-energi",
        "volume": 40,
        "negative": 10,
        "expected_volume": 7.5,
        "negative_share_baseline": 0.125,
        "volume_score": 1.25,
        "negative_score": 2.75,
        "storm_level": "warning",
        "buzz_level": "watch",
        "end_ms": 1_700_000_120_000,
    }
    metrics.record_bucket(summary)
    expected = {
        "stormvarsel_brand_bucket_mentions": 40,
        "stormvarsel_brand_bucket_expected_mentions": 7.5,
        "stormvarsel_brand_negative_ratio": 0.25,
        "stormvarsel_brand_negative_baseline_ratio": 0.125,
        "stormvarsel_brand_volume_score": 1.25,
        "stormvarsel_brand_negative_score": 2.75,
        "stormvarsel_brand_storm_level": 2,
        "stormvarsel_brand_buzz_level": 1,
        "stormvarsel_brand_bucket_end_timestamp_seconds": 1_700_000_120,
    }
    assert {name: value(name, "nordlys-energi") for name in expected} == expected


def test_brands_outside_the_brands_file_get_no_series(configured: None) -> None:
    for i in range(50):
        metrics.record_bucket(bucket(f"intruder-{i}", 9, 9))
        metrics.set_brand_gauge(metrics.BRAND_COUNTED, f"intruder-{i}", 9)
    labels = {
        sample.labels.get("brand")
        for family in REGISTRY.collect()
        for sample in family.samples
        if family.name.startswith("stormvarsel_brand_")
    }
    assert not any(str(label).startswith("intruder-") for label in labels)
    assert metrics.brand_label("intruder-1") is None
    assert metrics.brand_label("nordlys-energi") == "nordlys-energi"


def test_a_rebalance_drops_the_brands_this_worker_no_longer_owns(configured: None) -> None:
    metrics.record_bucket(bucket("nordlys-energi", 20, 5))
    metrics.forget_brands(keep=[])
    assert value("stormvarsel_brand_bucket_mentions", "nordlys-energi") is None


def test_every_alertmanager_post_result_starts_at_zero(configured: None) -> None:
    # increase() over a series that appears at 1 reads 0: the first refused post would be missed.
    for result in ("ok", "rejected", "error"):
        sample = REGISTRY.get_sample_value(
            "stormvarsel_alertmanager_posts_total", {"result": result}
        )
        assert sample is not None, result


def rejection_reasons(module: Path) -> set[str]:
    """The reasons a module's code dead-letters records for: ``Rejection("<reason>", ...)``."""
    return {
        node.args[0].value
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Rejection"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_the_later_stages_dead_letter_series_start_at_zero(configured: None) -> None:
    """StormvarselStageDeadLetters alerts on increase(): a reason's series that appeared at 1 with
    the first refused record would read as no increase, and the first fault would page nobody.
    So every reason the score and detect stages can give exists at 0 from the start."""
    agents = Path(metrics.__file__).parent / "agents"
    for stage in ("score", "detect"):
        reasons = rejection_reasons(agents / f"{stage}.py")
        assert reasons, stage
        if stage == "score":  # it forwards what it scored (streams/forwarding.py)
            reasons |= set(FORWARD_REJECTION_REASONS)
        assert reasons <= set(metrics.STAGE_REJECTION_REASONS[stage]), (stage, reasons)
        for reason in reasons:
            sample = REGISTRY.get_sample_value(
                "stormvarsel_mentions_rejected_total", {"stage": stage, "reason": reason}
            )
            assert sample is not None, (stage, reason)


def test_accepted_mentions_and_skipped_alert_records_start_at_zero(configured: None) -> None:
    assert (
        REGISTRY.get_sample_value(
            "stormvarsel_mentions_accepted_total", {"brand": "nordlys-energi"}
        )
        is not None
    )
    for reason in ("buzz", "stale", "unreadable", "superseded"):
        sample = REGISTRY.get_sample_value("stormvarsel_notify_skipped_total", {"reason": reason})
        assert sample is not None, reason


def test_the_batch_size_histogram_reaches_the_largest_batch_the_settings_allow() -> None:
    """Batches of the largest allowed size fell in ``+Inf`` only (the buckets stopped at 512),
    so the dashboards could not show how full they were."""
    field = Settings.model_fields["sentiment_batch_size"]
    largest = next(m.le for m in field.metadata if isinstance(m, Le))
    bounds = metrics.SCORING_BATCH_SIZE._upper_bounds
    assert largest in bounds, (largest, bounds)
