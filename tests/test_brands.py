from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.brands import BrandsFileError, load_brands, slugify
from streams.cli import main
from tests.conftest import REPO

VALID = """
brands:
  - name: Fjellbrød AS
    aliases: [Fjellbrød, Fjellbrod]
    handles: [fjellbrod, "@FjellbrodNO"]
    hashtags: [fjellbrød]
    languages: [nb, nn]
    tone: playful
    oncall: {team: comms-food}
  - name: Sjøbris
    id: sjobris-se
    languages: [sv]
    oncall: {team: comms-se, escalation: head-of-comms}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "brands.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads_with_derived_ids_and_normalised_tags(tmp_path: Path) -> None:
    brands = load_brands(write(tmp_path, VALID))
    first, second = brands.brands
    assert first.id == "fjellbrod-as"
    assert first.handles == ("@fjellbrod", "@FjellbrodNO")
    assert first.hashtags == ("#fjellbrød",)
    assert first.tone == "playful"
    assert second.id == "sjobris-se"
    assert second.tone == "neutral"
    assert second.oncall.escalation == "head-of-comms"
    assert brands.by_id("sjobris-se") is second


def test_repository_example_brands_file_is_valid() -> None:
    brands = load_brands(REPO / "deploy" / "brands.yaml")
    assert len(brands.brands) >= 1


@pytest.mark.parametrize(
    ("replace", "with_", "expected"),
    [
        ("tone: playful", "tone: grumpy", "brands[0].tone: expected one of 'formal'"),
        ("languages: [sv]", "languages: [de]", "brands[1].languages[0]: expected one of 'nb'"),
        ("languages: [sv]", "languages: []", "brands[1].languages: expected at least one of"),
        (
            "oncall: {team: comms-se, escalation: head-of-comms}",
            "",
            "brands[1].oncall: expected a value (the key is required)",
        ),
        ("tone: playful", "tone: playful\n    colour: blue", "brands[0].colour: unknown key"),
        ("id: sjobris-se", "id: fjellbrod-as", "brands.id: expected unique brand ids"),
        ("id: sjobris-se", "id: Sjøbris SE", "brands[1].id: expected lower-case letters"),
        ("tone: playful", "timezone: Europe/Bergen", "brands[0].timezone: 'Europe/Bergen' is not"),
    ],
)
def test_invalid_brand_gives_one_line_naming_key(
    tmp_path: Path, replace: str, with_: str, expected: str
) -> None:
    assert replace in VALID
    path = write(tmp_path, VALID.replace(replace, with_))
    with pytest.raises(BrandsFileError) as info:
        load_brands(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {expected}"), message


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "brands:\n  - name: [unclosed\n")
    with pytest.raises(BrandsFileError, match=r"invalid YAML at line \d+, column \d+"):
        load_brands(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(BrandsFileError, match="expected a mapping with a 'brands' list"):
        load_brands(write(tmp_path, "- just a list\n"))


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(BrandsFileError, match=r"file not found.*STORMVARSEL_BRANDS_FILE"):
        load_brands(tmp_path / "nope.yaml")


def test_config_show_fails_cleanly_on_a_bad_brands_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, VALID.replace("tone: playful", "tone: 5"))
    monkeypatch.setenv("STORMVARSEL_BRANDS_FILE", str(path))
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: brands[0].tone: expected one of")


def test_config_show_lists_brands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMVARSEL_BRANDS_FILE", str(write(tmp_path, VALID)))
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "brand fjellbrod-as: 'Fjellbrød AS', languages nb,nn, tone playful" in result.output


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Fjellbrød AS", "fjellbrod-as"), ("Ærlig Øl", "aerlig-ol"), ("Café Åsa", "cafe-asa")],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_brand_time_zones_reach_the_detector_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.app import load_detector_config
    from streams.settings import Settings

    text = VALID.replace("languages: [sv]", "languages: [sv]\n    timezone: America/New_York")
    path = write(tmp_path, text)
    assert load_brands(path).timezones() == {"sjobris-se": "America/New_York"}
    detector_yaml = tmp_path / "detector.yaml"
    detector_yaml.write_text("baseline:\n  timezone: Europe/Oslo\n")
    monkeypatch.setenv("STORMVARSEL_BRANDS_FILE", str(path))
    monkeypatch.setenv("STORMVARSEL_DETECTOR_CONFIG", str(detector_yaml))
    config = load_detector_config(Settings())
    assert config.for_brand("sjobris-se").baseline.timezone == "America/New_York"
    assert config.for_brand("fjellbrod-as").baseline.timezone == "Europe/Oslo"
