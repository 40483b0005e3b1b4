"""Holding-statement drafts: every built-in draft passes the lint, crafted bad ones fail it, the
issue is named from the drivers in plain words, and the alert record carries it all."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from detectors.alerting import (
    BrandVoice,
    Statement,
    build_alert,
    holding_statements,
    lint_statement,
)
from detectors.alerting.issue_naming import GENERIC_ISSUE, name_issue
from detectors.alerting.statement_texts import TEXTS
from detectors.alerting.statements import render
from detectors.alerting.summary import safe_text
from detectors.alerting.voice import LANGUAGES, SEVERITIES, TONES
from streams.brands import Brand, BrandsFileError, parse_brands

DRIVERS: dict[str, Any] = {
    "phrases": [
        {"term": "forsinket refusjon", "lang": "nb", "score": 4.1, "count": 40},
        {"term": "fucking scam", "lang": "en", "score": 5.0, "count": 30},
        {"term": "nordlys energi", "lang": "en", "score": 4.5, "count": 30},
        {"term": "delayed refund", "lang": "en", "score": 3.2, "count": 25},
    ],
    "words": [{"term": "refusjon", "lang": "nb", "score": 4.0, "count": 50}],
    "hashtags": [{"term": "#nordlysfail", "lang": "nb", "score": 3.0, "count": 9}],
    "top_posts_by_reach": [
        {
            "id": "1",
            "author": "kari_nordmann",
            "text": "Tredje uka med forsinket refusjon fra Nordlys Energi, dette er ikke greit",
            "reach": 20000,
            "url": "https://x.example/1",
        },
    ],
    "top_posts_by_engagement": [],
    "top_authors": [{"author": "kari_nordmann", "reach": 20000}],
    "languages": {"en": 0.3, "nb": 0.6, "sv": 0.1},
    "platforms": {"x": 1.0},
}
VOICE = BrandVoice(brand_id="nordlys-energi", name="Nordlys Energi", languages=LANGUAGES)


APP_CONTACT = {
    "en": "a message in our app",
    "nb": "en melding i appen",
    "nn": "ei melding i appen",
    "sv": "ett meddelande i appen",
    "da": "en besked i appen",
}


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    "contact", [None, "https://nordlys.example/hjelp", "https://x.example/kontakt_oss", APP_CONTACT]
)
def test_every_built_in_draft_passes_the_lint(
    lang: str, severity: str, tone: str, contact: str | dict[str, str] | None
) -> None:
    for minutes in (5, 30, 45, 60, 90, 120, 24 * 60):
        voice = replace(VOICE, tone=tone, contact=contact, next_update_minutes=minutes)  # type: ignore[arg-type]
        for issue, named in (("delayed deliveries", True), (GENERIC_ISSUE[lang], False)):
            draft = render(voice, lang, severity, issue, named)
            assert lint_statement(draft, voice, DRIVERS) == [], draft.text
            assert draft.draft and draft.label.startswith(("DRAFT", "UTKAST", "UDKAST"))
            assert issue in draft.text and draft.contact in draft.text


def bad(text: str, lang: str = "en", severity: str = "warning", **changes: Any) -> set[str]:
    good = render(VOICE, lang, severity, "delayed refunds", True)
    draft = replace(good, text=text, **changes)
    return {v.rule for v in lint_statement(draft, VOICE, DRIVERS)}


TAIL_EN = " We will post an update here within an hour. Please send us a direct message."


@pytest.mark.parametrize(
    ("text", "lang", "rule"),
    [
        ("About delayed refunds: it is probably a bank glitch." + TAIL_EN, "en", "speculation"),
        (
            "Om delayed refunds: det skyldes kanskje banken. Vi legger ut en oppdatering her "
            "innen en time. Send oss en direktemelding.",
            "nb",
            "speculation",
        ),
        (
            "delayed refunds beror troligen på banken. Vi publicerar en uppdatering här inom en "
            "timme. Skicka oss ett direktmeddelande.",
            "sv",
            "speculation",
        ),
        (
            "delayed refunds skyldes vores leverandør. Vi offentliggør en opdatering her inden "
            "for en time. Send os en direkte besked.",
            "da",
            "blame",
        ),
        ("delayed refunds are the fault of our payment partner." + TAIL_EN, "en", "blame"),
        ("Everyone gets a full refund for delayed refunds." + TAIL_EN, "en", "promise"),
        (
            "Vi gir kompensasjon for delayed refunds. Vi legger ut en oppdatering her innen en "
            "time. Send oss en direktemelding.",
            "nb",
            "promise",
        ),
        ("delayed refunds will be fixed by tomorrow." + TAIL_EN, "en", "promise"),
        ("delayed refunds: fixed in 2 hours." + TAIL_EN, "en", "promise"),
        ("Thanks @kari_nordmann for raising delayed refunds." + TAIL_EN, "en", "names"),
        ("Thanks kari_nordmann, delayed refunds noted." + TAIL_EN, "en", "names"),
        ('Someone wrote "delayed refunds" here.' + TAIL_EN, "en", "quotes"),
        (
            "Tredje uka med forsinket refusjon fra Nordlys Energi, delayed refunds." + TAIL_EN,
            "en",
            "quotes",
        ),
        ("See https://evil.example about delayed refunds." + TAIL_EN, "en", "links"),
        ("<b>delayed refunds</b> are known." + TAIL_EN, "en", "unescaped"),
        ("delayed refunds **now**." + TAIL_EN, "en", "unescaped"),
        ("Shit happens: delayed refunds." + TAIL_EN, "en", "tone"),
        ("We know about delayed refunds. Please send us a direct message.", "en", "next-update"),
        (
            "We know about delayed refunds. We will post an update here within an hour.",
            "en",
            "contact",
        ),
        ("We know about something." + TAIL_EN, "en", "issue"),
        ("delayed refunds " + "and more " * 60 + TAIL_EN, "en", "length"),
    ],
)
def test_crafted_bad_statements_fail_the_lint(text: str, lang: str, rule: str) -> None:
    assert rule in bad(text, lang)


#: The tail each language's crafted statement ends with: the next update and the contact.
TAIL = {
    "en": TAIL_EN,
    "nb": " Vi legger ut en oppdatering her innen en time. Send oss en direktemelding.",
    "nn": " Vi legg ut ei oppdatering her innan ein time. Send oss ei direktemelding.",
    "sv": " Vi publicerar en uppdatering här inom en timme. Skicka oss ett direktmeddelande.",
    "da": " Vi offentliggør en opdatering her inden for en time. Send os en direkte besked.",
}


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("en", "Everything will be working again by 18:00."),
        ("en", "Service returns at 18.00."),
        ("en", "It will be sorted in an hour."),
        ("en", "We expect news within two hours."),
        ("en", "We will have more in the coming days."),
        ("en", "We will post more before Friday."),
        ("en", "Expect news by 6 pm."),
        ("en", "It's fixed now."),
        ("en", "Your orders will be fixed."),
        ("en", "We'll fix it for everyone."),
        ("nb", "Alt er i orden igjen i løpet av kvelden."),
        ("nb", "Det er fikset om en time."),
        ("nb", "Vi har mer informasjon før fredag."),
        ("nb", "Vi har mer informasjon klokka 18."),
        ("nb", "Vi har mer informasjon i løpet av dagen."),
        ("nb", "Feilen er løst."),
        ("nb", "Appen fungerer igjen."),
        ("nn", "Feilen er løyst."),
        ("nn", "Vi kjem attende om ein time."),
        ("nn", "Vi kjem attende før fredag."),
        ("nn", "Vi kjem attende i løpet av kvelden."),
        ("sv", "Felet är åtgärdat före fredag."),
        ("sv", "Vi återkommer om en timme."),
        ("sv", "Vi återkommer inom två timmar."),
        ("sv", "Allt fungerar igen."),
        ("sv", "Vi har löst felet."),
        ("sv", "Vi återkommer kl 18."),
        ("da", "Fejlen er løst."),
        ("da", "Vi vender tilbage inden fredag."),
        ("da", "Vi vender tilbage om en time."),
        ("da", "Vi vender tilbage i løbet af aftenen."),
        ("da", "Alt virker igen."),
    ],
)
def test_times_and_outcomes_are_refused_in_every_language(lang: str, sentence: str) -> None:
    assert "promise" in bad(f"Om delayed refunds: {sentence}" + TAIL[lang], lang)


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("en", "We will keep you posted until this is resolved."),
        ("en", "We will tell you as we learn more, and when it is fixed."),
        ("en", "We are sorry it is not fixed yet."),
        ("en", "Some of you have waited for two weeks."),
        ("en", "We have read every post since Friday."),
        ("en", "Our team is working on a fix right now."),
        ("en", "Our team is working on it, and we hear you."),
        ("nb", "Vi holder dere oppdatert til saken er løst."),
        ("nb", "Feilen er ikke løst ennå."),
        ("nb", "Vi har lest innleggene siden fredag."),
        ("nb", "Takk til alle som har sagt fra."),
        ("nb", "Vi jobber med å løse det, og vi gir beskjed når alt er i orden igjen."),
        ("nn", "Vi held dykk oppdaterte til feilen er løyst."),
        ("nn", "Vi har lese innlegga sidan fredag."),
        ("sv", "Vi återkommer när felet är åtgärdat."),
        ("sv", "Felet är inte åtgärdat ännu."),
        ("sv", "Vi har läst inläggen sedan i fredags."),
        ("sv", "Vi har sett många inlägg om problemen."),
        ("da", "Vi opdaterer jer, indtil fejlen er løst."),
        ("da", "Vi har læst opslagene siden fredag."),
        ("da", "Fejlen er ikke løst endnu."),
    ],
)
def test_ordinary_wording_is_not_taken_for_a_promise(lang: str, sentence: str) -> None:
    assert bad(f"Om delayed refunds: {sentence}" + TAIL[lang], lang) == set()


def test_a_draft_must_be_labelled_as_a_draft() -> None:
    good = render(VOICE, "en", "warning", "delayed refunds", True)
    assert lint_statement(good, VOICE) == []
    assert {v.rule for v in lint_statement(replace(good, draft=False), VOICE)} == {"draft-label"}
    assert "draft-label" in {v.rule for v in lint_statement(replace(good, label=""), VOICE)}


def test_what_the_brand_may_promise_is_allowed() -> None:
    text = "Refunds are on their way for delayed refunds." + TAIL_EN
    draft = replace(render(VOICE, "en", "warning", "delayed refunds", True), text=text)
    assert "promise" in {v.rule for v in lint_statement(draft, VOICE)}
    assert lint_statement(draft, replace(VOICE, may_promise=("refund",))) == []


def test_the_issue_is_named_in_plain_words_from_the_drivers() -> None:
    assert name_issue(DRIVERS, "nb", VOICE) == "forsinket refusjon"
    # Profanity and the brand's own name never name the issue; the next phrase does.
    assert name_issue(DRIVERS, "en", VOICE) == "delayed refund"
    assert name_issue(DRIVERS, "sv", VOICE) is None  # no Swedish phrase: the neutral wording
    handle = {"phrases": [{"term": "kari_nordmann refusjon", "lang": "nb", "score": 9.0}]}
    assert name_issue(handle, "nb", VOICE) is None
    markup = {"phrases": [{"term": "<script> refusjon", "lang": "nb", "score": 9.0}]}
    assert name_issue(markup, "nb", VOICE) is None


def test_the_brands_other_names_never_name_the_issue() -> None:
    """Only the name and id were blocked: an alias, a handle or a hashtag from the brands file
    became the issue of the brand's own draft ("the posts about sas app")."""
    brand = Brand.model_validate(
        {
            "name": "Scandinavian Airlines",
            "id": "sas",
            "aliases": ["Scandi"],
            "handles": ["@FlySAS"],
            "hashtags": ["#sasfail"],
            "languages": ["en"],
            "oncall": {"team": "comms-nordic"},
        }
    )
    voice = brand.voice()
    for own in ("scandi app", "flysas app", "sasfail app"):
        drivers = {"phrases": [{"term": own, "lang": "en", "score": 9.0}]}
        assert name_issue(drivers, "en", voice) is None, own
    plain = {"phrases": [{"term": "lost luggage", "lang": "en", "score": 9.0}]}
    assert name_issue(plain, "en", voice) == "lost luggage"


def test_drafts_follow_the_language_mix_and_the_tone() -> None:
    drafts = holding_statements(replace(VOICE, tone="playful"), "critical", DRIVERS)
    assert [d.lang for d in drafts][:3] == ["nb", "en", "sv"]
    assert {d.tone for d in drafts} == {"warm"}  # no jokes in a critical storm
    assert "forsinket refusjon" in drafts[0].text
    assert drafts[2].issue == GENERIC_ISSUE["sv"] and not drafts[2].issue_named
    warning = holding_statements(replace(VOICE, tone="playful"), "warning", DRIVERS)
    assert {d.tone for d in warning} == {"playful"}
    # Severity scales the text: a watch draft is the shortest and has no update promise.
    watch = holding_statements(VOICE, "watch", DRIVERS)[0]
    assert len(watch.text) < len(warning[0].text) < len(drafts[0].text)
    assert watch.next_update not in watch.text


def test_brand_overrides_are_used_and_linted_at_load() -> None:
    base = {"name": "Nordlys Energi", "languages": ["nb"], "oncall": {"team": "comms"}}
    ok = {
        "templates": {
            "nb": {
                "warning": "Vi vet om {issue}. Ny oppdatering {next_update}. Send oss {contact}."
            }
        }
    }
    brands = parse_brands({"brands": [base | {"statements": ok}]})
    draft = holding_statements(brands.brands[0].voice(), "warning", DRIVERS)[0]
    assert draft.source == "brand override"
    assert draft.text == (
        "Vi vet om forsinket refusjon. Ny oppdatering innen en time. Send oss en direktemelding."
    )
    blame = {"templates": {"nb": {"warning": "{issue} skyldes banken. {next_update} {contact}"}}}
    with pytest.raises(BrandsFileError, match=r"templates\.nb\.warning: blame"):
        parse_brands({"brands": [base | {"statements": blame}]}, source="brands.yaml")
    typo = {"templates": {"nb": {"warning": "{isue}"}}}
    with pytest.raises(BrandsFileError, match="unknown placeholder"):
        parse_brands({"brands": [base | {"statements": typo}]})


CONTACT_BRAND: dict[str, Any] = {
    "name": "Nordlys Energi",
    "languages": ["nb", "sv", "en"],
    "oncall": {"team": "comms"},
}


def test_a_contact_phrase_is_written_in_each_language_of_the_brand() -> None:
    phrase = {"statements": {"contact": "a direct message to our customer service"}}
    with pytest.raises(BrandsFileError, match=r"statements\.contact: a phrase would appear") as e:
        parse_brands({"brands": [CONTACT_BRAND | phrase]}, source="brands.yaml")
    assert "{nb: ..., sv: ..., en: ...}" in str(e.value) and "\n" not in str(e.value)
    partial = {"statements": {"contact": {"nb": "en melding i appen", "sv": "ett meddelande"}}}
    with pytest.raises(BrandsFileError, match=r"statements\.contact: .*missing en"):
        parse_brands({"brands": [CONTACT_BRAND | partial]})
    stray = {"statements": {"contact": {"nb": "x", "sv": "y", "en": "z", "da": "æ"}}}
    with pytest.raises(BrandsFileError, match=r"statements\.contact\.da: not one of"):
        parse_brands({"brands": [CONTACT_BRAND | stray]})

    per_language = {
        "nb": "en melding i appen",
        "sv": "https://nordlys.example/kundtjanst",
        "en": "a message in our app",
    }
    brands = parse_brands({"brands": [CONTACT_BRAND | {"statements": {"contact": per_language}}]})
    voice = brands.brands[0].voice()
    drafts = {d.lang: d for d in holding_statements(voice, "warning", DRIVERS)}
    assert "send oss en melding i appen," in drafts["nb"].text
    assert "ett meddelande på https://nordlys.example/kundtjanst" in drafts["sv"].text
    assert "send us a message in our app so" in drafts["en"].text
    assert "app" not in drafts["sv"].text and "message" not in drafts["nb"].text
    assert all(lint_statement(d, voice, DRIVERS) == [] for d in drafts.values())

    # One URL serves every language; a phrase is fine for a brand with one language.
    url = {"statements": {"contact": "https://nordlys.example/hjelp"}}
    assert parse_brands({"brands": [CONTACT_BRAND | url]}).brands[0].voice().contact_for("sv")
    one = CONTACT_BRAND | {"languages": ["nb"], "statements": {"contact": "en melding i appen"}}
    voice = parse_brands({"brands": [one]}).brands[0].voice()
    assert "en melding i appen" in holding_statements(voice, "watch", DRIVERS)[0].text


def brand_with(contact: Any, languages: tuple[str, ...] = ("en",), **statements: Any) -> Any:
    entry = {"name": "Acme", "languages": list(languages), "oncall": {"team": "comms"}}
    entry["statements"] = {"contact": contact, **statements}
    return parse_brands({"brands": [entry]}, source="brands.yaml").brands[0]


@pytest.mark.parametrize(
    ("contact", "languages", "expected"),
    [
        (
            "a DM to our team (we can probably refund you)",
            ("en",),
            r"brands\[0\]\.statements\.contact: speculation: .*'probably' \(brand 'Acme'\)",
        ),
        ("a message, and we refund you", ("en",), r"statements\.contact: promise: .*'refund'"),
        ("a message before tomorrow", ("en",), r"statements\.contact: promise: .*'tomorrow'"),
        ("a message to @acme_support", ("en",), r"statements\.contact: names: .*@handle"),
        ("a message at www.acme.example", ("en",), r"statements\.contact: links: "),
        ("a message (*urgent*)", ("en",), r"statements\.contact: unescaped: "),
        (
            {"nb": "en melding, så refunderer vi", "en": "a message"},
            ("nb", "en"),
            r"statements\.contact\.nb: promise: .*'refunderer'",
        ),
        (
            {"nb": "en melding", "en": "a message, which is due to our supplier"},
            ("nb", "en"),
            r"statements\.contact\.en: blame: ",
        ),
        (
            "a message to our customer service team, who read every message and answer each of "
            "you in turn, every day of the week, so please include your order number",
            ("en",),
            r"statements\.contact: the built-in en\.watch draft \(neutral tone\) with this "
            r"contact fails length: ",
        ),
    ],
)
def test_contact_phrases_are_linted_at_load(
    contact: Any, languages: tuple[str, ...], expected: str
) -> None:
    with pytest.raises(BrandsFileError, match=expected) as refused:
        brand_with(contact, languages)
    assert "\n" not in str(refused.value)


def test_a_contact_phrase_is_linted_inside_the_draft_and_may_carry_allowed_promises() -> None:
    voice = BrandVoice("acme", "Acme", contact="a DM (we can probably refund you)")
    draft = render(voice, "en", "warning", "delayed refunds", True)
    assert {"speculation", "promise"} <= {v.rule for v in lint_statement(draft, voice)}
    allowed = brand_with("a message, and we refund you", may_promise=["refund"]).voice()
    assert lint_statement(render(allowed, "en", "watch", "delayed refunds", True), allowed) == []


def test_the_built_in_drafts_a_brand_gets_are_linted_at_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sorry = TEXTS["sv"]["warm"]["sorry"] + " Det beror troligen på banken."
    monkeypatch.setitem(TEXTS["sv"]["warm"], "sorry", sorry)
    entry = {"name": "Acme", "languages": ["nb", "sv"], "oncall": {"team": "comms"}}
    # A playful brand speaks warmly at critical severity: it gets the warm critical draft.
    with pytest.raises(
        BrandsFileError,
        match=r"brands\[0\]\.statements: the built-in sv\.critical draft \(warm tone\) fails "
        r"speculation: .*'troligen' \(brand 'Acme'\)",
    ):
        parse_brands({"brands": [entry | {"tone": "playful"}]})
    # Only the drafts the brand can get are linted: not another tone's, not an overridden one.
    parse_brands({"brands": [entry | {"tone": "neutral"}]})
    override = "Vi vet om {issue}. Ny uppdatering {next_update}. Skicka oss {contact}."
    statements = {"templates": {"sv": {"critical": override}}}
    parse_brands({"brands": [entry | {"tone": "playful", "statements": statements}]})


def brand_named(name: str, watch: str) -> Any:
    entry = {"name": name, "id": "acme", "languages": ["en"], "oncall": {"team": "comms"}}
    entry["statements"] = {"templates": {"en": {"watch": watch}}}
    return parse_brands({"brands": [entry]}, source="brands.yaml").brands[0]


@pytest.mark.parametrize("name", ["H&M", "Marks & Spencer", "Probably Coffee", "So"])
def test_the_brand_name_is_a_slot_value_not_wording_to_lint(name: str) -> None:
    voice = brand_named(
        name, "{brand} has seen the posts about {issue}. Send us {contact}."
    ).voice()
    draft = holding_statements(voice, "watch", DRIVERS)[0]
    assert draft.text.startswith(f"{name} has seen") and lint_statement(draft, voice) == []
    # The brand's own wording around the name is still linted.
    for words, rule in (
        ("{brand} is probably at fault", "speculation"),
        ("{brand} <3 you", "unescaped"),
        ("{brand} is on it. Soon all is well", "promise"),  # "So" masks So, not So-on
    ):
        with pytest.raises(BrandsFileError, match=rf"templates\.en\.watch: {rule}: "):
            brand_named(name, words + ". About {issue}: send us {contact}.")


def episode_event(change: str, severity: str, kind: str = "storm") -> dict[str, Any]:
    return {
        "type": change,
        "at_ms": 1_772_500_000_000,
        "at": "2026-03-03T01:06:40.000Z",
        "episode": {
            "episode_id": "abc123",
            "brand": "nordlys-energi",
            "kind": kind,
            "severity": severity,
            "peak_severity": severity,
            "start_ms": 1_772_499_000_000,
            "start": "2026-03-03T00:50:00.000Z",
            "figures": {
                "volume": {"now": 420, "baseline": 30.5},
                "negative_share": {"now": 0.81, "baseline": 0.15},
                "window_minutes": 60,
            },
            "drivers": DRIVERS,
        },
    }


def test_the_alert_record_carries_figures_drivers_actions_and_drafts() -> None:
    voice = replace(VOICE, languages=("nb", "en"), escalation="head-of-comms")
    alert = build_alert(episode_event("escalated", "critical"), voice)
    assert alert["alert_id"] == "abc123" and alert["status"] == "firing"
    assert [s["lang"] for s in alert["statements"]] == ["nb", "en"]
    assert alert["drivers"]["top_posts"][0]["url"] == "https://x.example/1"
    assert alert["actions"][0] == "Escalate to head-of-comms now."
    joined = " ".join(alert["actions"])
    for practice in (
        "Acknowledge publicly",
        "private messages",
        "constructive critics together",
        "Hide (do not delete)",
        "supporters",
    ):
        assert practice in joined
    # Deterministic: the same event gives byte-identical records (replay equals live).
    again = build_alert(episode_event("escalated", "critical"), voice)
    assert json.dumps(alert, sort_keys=True) == json.dumps(again, sort_keys=True)
    resolved = build_alert(episode_event("resolved", "critical"), voice)
    assert resolved["status"] == "resolved" and resolved["statements"] == []
    buzz = build_alert(episode_event("opened", "warning", kind="buzz"), voice)
    assert buzz["statements"] == [] and "not a storm" in buzz["actions"][0]


def test_post_texts_in_notifications_cannot_ping_or_break_markup() -> None:
    assert safe_text("hey <!channel> `rm`\n\x07next") == "hey \u2039!channel\u203a 'rm' next"
    assert len(safe_text("x" * 500, 160)) == 160
    # Slack and HTML decode character references: the text must not turn into markup there.
    assert (
        safe_text("&lt;!channel&gt; &#60;b&#x3E;")
        == "\uff06lt;!channel\uff06gt; \uff06#60;b\uff06#x3E;"
    )
    assert safe_text("H&M and AT&T & co") == "H&M and AT&T & co"


def test_statement_is_a_plain_dataclass() -> None:
    draft = render(VOICE, "da", "critical", "forsinket levering", True)
    assert Statement(**draft.to_dict()) == draft


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_neutral_issue_ends_its_clause_in_every_built_in_draft(
    lang: str, severity: str, tone: str
) -> None:
    """The neutral issue ends in a relative clause in every language ("the problems you are
    experiencing", "de problemer, I oplever"): a verb after it joins that clause, and
    "... opslagene om de problemer, I oplever og undersøger sagen" said that the customers
    investigate the matter. Punctuation must close the clause."""
    voice = replace(VOICE, tone=tone)  # type: ignore[arg-type]
    draft = render(voice, lang, severity, GENERIC_ISSUE[lang], False)
    after = draft.text.split(GENERIC_ISSUE[lang], 1)[1]
    assert after[:1] in {".", "!", ","}, draft.text


#: The singular "you" of each Nordic language: the neutral issue addresses the crowd in the
#: plural ("problemene dere opplever", "problemen ni upplever", "de problemer, I oplever").
SINGULAR_YOU = {"nb": ("du", "deg"), "nn": ("du", "deg"), "sv": ("du", "dig"), "da": ("du", "dig")}


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("lang", sorted(SINGULAR_YOU))
def test_the_sentence_naming_the_issue_addresses_the_crowd_in_one_number(
    lang: str, severity: str, tone: str
) -> None:
    """The warm watch draft thanked one reader for the problems the many experience ("Takk for
    at du sier fra om problemene dere opplever"): a public post speaks to everyone in the
    sentence that names the issue; only the invitation to write privately says "du"."""
    voice = replace(VOICE, tone=tone)  # type: ignore[arg-type]
    text = render(voice, lang, severity, GENERIC_ISSUE[lang], False).text
    sentence = next(s for s in re.split(r"(?<=[.!?])\s+", text) if GENERIC_ISSUE[lang] in s)
    words = set(re.findall(r"\w+", sentence.lower()))
    assert not words & set(SINGULAR_YOU[lang]), sentence
