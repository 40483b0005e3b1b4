"""What the brands file refuses beyond one brand's fields: a key given twice (PyYAML kept the last
one silently, dropping every brand or alias before it), nesting too deep to read (a
RecursionError traceback), and a name, alias or id that two brands share once folded as the
matcher folds them (a mention naming it went to the first brand only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.brand_matching import BrandMatcher
from streams.brands import BrandsFileError, load_brands
from streams.cli import main


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "brands.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    """The one-line error of loading ``path``, which ``config show`` prints with exit 2."""
    with pytest.raises(BrandsFileError) as info:
        load_brands(path)
    message = str(info.value)
    assert "\n" not in message
    result = CliRunner().invoke(
        main, ["config", "show"], env={"STORMVARSEL_BRANDS_FILE": str(path)}
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {message}"
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # a second brands block dropped every brand of the first
            "brands:\n  - name: A\n    oncall: {team: t}\nbrands: []\n",
            "invalid YAML at line 4, column 1: key 'brands' appears twice in one mapping "
            "(first at line 1)",
        ),
        (  # a second aliases key dropped the aliases of the first
            "brands:\n  - name: A\n    aliases: [Nordlys]\n    aliases: []\n"
            "    oncall: {team: t}\n",
            "invalid YAML at line 4, column 5: key 'aliases' appears twice in one mapping "
            "(first at line 3)",
        ),
        (
            "brands:\n  - {name: A, oncall: {team: t}, name: B}\n",
            "invalid YAML at line 2, column 34: key 'name' appears twice in one mapping "
            "(first at line 2)",
        ),
    ],
)
def test_a_key_given_twice_is_refused_naming_it_and_its_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert refusal(path) == f"{path}: {expected}; keep one"


def test_a_merged_key_may_still_be_overridden(tmp_path: Path) -> None:
    """``<<: *a`` then ``name:`` is YAML's way to override a key, not a key given twice."""
    text = (
        "brands:\n  - &a {name: A, oncall: {team: t}, tone: warm}\n"
        "  - <<: *a\n    name: B\n    tone: formal\n"
    )
    _first, second = load_brands(write(tmp_path, text)).brands
    assert (second.name, second.tone, second.oncall.team) == ("B", "formal", "t")
    twice = write(tmp_path, text + "    tone: playful\n")
    assert refusal(twice).endswith(
        "key 'tone' appears twice in one mapping (first at line 5); keep one"
    )


@pytest.mark.parametrize("depth", [600, 5000])
def test_nesting_too_deep_is_refused_like_invalid_yaml(tmp_path: Path, depth: int) -> None:
    path = write(
        tmp_path,
        "brands:\n  - name: A\n    oncall: {team: t}\n    aliases: "
        + "[" * depth
        + "x"
        + "]" * depth
        + "\n",
    )
    message = refusal(path)
    assert message.startswith(f"{path}: invalid YAML at line 4, column "), message
    assert "nested more than 100 levels deep" in message


SHARED = [
    # (brands, the text both name, the first brand's and the second brand's descriptions)
    (
        "  - {name: Nordlys Group, aliases: [Nordlys Energi], oncall: {team: group}}\n"
        "  - {name: Nordlys Energi, oncall: {team: energi}}\n",
        "the name 'Nordlys Energi' of brand 'nordlys-energi' is the alias 'Nordlys Energi' of "
        "brand 'nordlys-group'",
    ),
    (  # case, accents and spaces aside, as the matcher reads them
        "  - {name: Fjellbrød, oncall: {team: t}}\n"
        "  - {name: Bakeriet, aliases: ['FJELLBROD'], oncall: {team: t}}\n",
        "the alias 'FJELLBROD' of brand 'bakeriet' is the name 'Fjellbrød' of brand 'fjellbrod'",
    ),
    (
        "  - {name: Sjøbris AS, aliases: [Sjø  Bris], oncall: {team: t}}\n"
        "  - {name: Havbris, aliases: [sjo bris], oncall: {team: t}}\n",
        "the alias 'sjo bris' of brand 'havbris' is the alias 'Sjø  Bris' of brand 'sjobris-as'",
    ),
    (  # a collector may name a brand by its id
        "  - {name: Telia Company, id: telia, oncall: {team: t}}\n"
        "  - {name: Telia Norge, aliases: [Telia], oncall: {team: t}}\n",
        "the alias 'Telia' of brand 'telia-norge' is the id 'telia' of brand 'telia'",
    ),
]


@pytest.mark.parametrize(("brands", "said"), SHARED)
def test_a_name_two_brands_share_is_refused_naming_both(
    tmp_path: Path, brands: str, said: str
) -> None:
    path = write(tmp_path, f"brands:\n{brands}")
    message = refusal(path)
    assert message.startswith(f"{path}: brands."), message
    assert said in message, message
    assert "keep it in one brand" in message


def test_a_brand_may_repeat_its_own_name_as_an_alias(tmp_path: Path) -> None:
    """Only two brands sharing one is refused; the matcher then finds the right one."""
    path = write(
        tmp_path,
        "brands:\n"
        "  - {name: Nordlys Group, aliases: [Nordlys], oncall: {team: group}}\n"
        "  - {name: Nordlys Energi, aliases: [NORDLYS ENERGI, nordlys-energi], "
        "oncall: {team: energi}}\n",
    )
    matcher = BrandMatcher.from_file(load_brands(path))
    assert matcher.resolve("Nordlys Energi") == "nordlys-energi"
    assert matcher.match("Nordlys Energi trakk meg dobbelt") == ["nordlys-energi"]
    shared = write(tmp_path, path.read_text().replace("[Nordlys]", "[Nordlys, Nordlys Energi]"))
    assert "brand 'nordlys-group'" in refusal(shared)
