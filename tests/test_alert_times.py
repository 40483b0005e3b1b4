"""The times a page shows are the brand's team's local times, with UTC beside them."""

from __future__ import annotations

from datetime import UTC, datetime

from detectors.alerting import build_alert
from detectors.alerting.summary import description
from detectors.alerting.voice import BrandVoice, default_voice
from detectors.episodes import iso
from streams.brands import Brand

WINTER = int(datetime(2026, 3, 10, 13, 5, tzinfo=UTC).timestamp() * 1000)
SUMMER = int(datetime(2026, 7, 10, 13, 5, tzinfo=UTC).timestamp() * 1000)


def _description(voice: BrandVoice, at_ms: int) -> str:
    episode = {"episode_id": "e1", "kind": "storm", "severity": "warning"}
    episode |= {"start": iso(at_ms - 600_000), "peak": iso(at_ms), "peak_severity": "warning"}
    event = {"type": "escalated", "at": iso(at_ms), "at_ms": at_ms, "episode": episode}
    return description(build_alert(event, voice))


def _brand(**extra: object) -> Brand:
    return Brand.model_validate({"name": "Nordlys Energi", "oncall": {"team": "comms"}, **extra})


def test_an_oslo_brands_page_reads_in_oslo_time_summer_and_winter() -> None:
    """Pages said "13:05 UTC" only, while the team in Oslo read 14:05 on its clock (15:05 in
    summer) and the brands file and the detectors already knew the zone."""
    voice = _brand(timezone="Europe/Oslo").voice()
    winter = _description(voice, WINTER)
    assert "at 2026-03-10 14:05 CET (13:05 UTC)" in winter, winter
    assert "Started 2026-03-10 13:55 CET (12:55 UTC)" in winter, winter
    summer = _description(voice, SUMMER)
    assert "at 2026-07-10 15:05 CEST (13:05 UTC)" in summer, summer


def test_a_brand_without_its_own_zone_reads_in_the_detectors_zone() -> None:
    """The zone the brand's daily rhythm is kept in (detector.yaml's ``timezone``)."""
    voice = _brand().voice(default_timezone="Europe/Stockholm")
    assert "14:05 CET (13:05 UTC)" in _description(voice, WINTER)
    own = _brand(timezone="America/New_York").voice(default_timezone="Europe/Stockholm")
    assert "08:05 EDT (12:05 UTC)" in _description(own, WINTER - 3_600_000)


def test_without_a_zone_times_stay_utc() -> None:
    for voice in (default_voice("acme"), BrandVoice("acme", "Acme", timezone="Mars/Olympus")):
        text = _description(voice, WINTER)
        assert "at 2026-03-10 13:05 UTC." in text and "CET" not in text, text
