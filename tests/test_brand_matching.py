from __future__ import annotations

import pytest

from streams.brand_matching import BrandMatcher, fold
from streams.brands import Brand, OnCall

BRANDS = [
    Brand(
        name="Nordlys Energi",
        aliases=("Nordlys Strøm",),
        handles=("@Nordlys_Energi",),
        hashtags=("#nordlysenergi",),
        oncall=OnCall(team="a"),
    ),
    Brand(
        name="Fjellbrød", aliases=("Fjellbrod",), hashtags=("#fjellbrød",), oncall=OnCall(team="b")
    ),
    Brand(name="SAS", oncall=OnCall(team="c")),
    Brand(name="Café Åsa", oncall=OnCall(team="d")),
]
MATCHER = BrandMatcher(BRANDS)


@pytest.mark.parametrize(
    ("text", "brands"),
    [
        ("Strømmen er borte, Nordlys Energi svarer ikke", ["nordlys-energi"]),  # nb
        ("NORDLYS ENERGIS kundeservice er treg", ["nordlys-energi"]),  # genitive -s
        ("Väntar på @nordlys_energi sedan i morse", ["nordlys-energi"]),  # sv, handle, any case
        ("Nordlys Energi's app is down again", ["nordlys-energi"]),  # en genitive
        ("Nordlys  Strom har sendt regningen to gange", ["nordlys-energi"]),  # da, accents folded
        ("Ny kampanje #NordlysEnergi", ["nordlys-energi"]),  # hashtag, case-insensitive
        ("Bestilte fra FJELLBRØD og Nordlys Energi", ["nordlys-energi", "fjellbrod"]),
        ("SAS:s flyg var försenat", ["sas"]),  # Swedish genitive of an abbreviation
        ("Kaffe på Cafe Asa", ["cafe-asa"]),
        ("Nordlys over Tromsø i natt", []),  # part of a name only
        ("nordlysenergi.no er nede", []),  # inside a word
        ("@Nordlys_Energi_fan er morsom", []),  # inside a longer handle
        ("#nordlysenergifan", []),  # inside a longer hashtag
        ("Fjellbrødene var gode", []),  # an inflected common noun is not the name
        ("sassy answer", []),
        ("", []),
    ],
)
def test_matching(text: str, brands: list[str]) -> None:
    assert MATCHER.match(text) == brands


def test_resolve_by_id_name_or_alias() -> None:
    assert MATCHER.resolve("nordlys-energi") == "nordlys-energi"
    assert MATCHER.resolve("NORDLYS STRØM") == "nordlys-energi"
    assert MATCHER.resolve("fjellbrød") == "fjellbrod"
    assert MATCHER.resolve("Telenor") is None


def test_fold() -> None:
    assert fold("Ærlig Øl på Café Åsa, Göteborg") == "aerlig ol pa cafe asa, goteborg"


def test_no_brands_matches_nothing() -> None:
    assert BrandMatcher([]).match("Nordlys Energi") == []
