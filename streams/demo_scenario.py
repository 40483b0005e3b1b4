"""The demo's story, made here rather than taken from anyone: a day in the life of two fictional
Nordic brands, then a storm about one of them.

Nordlys Energi (an electricity supplier) has an ordinary day: a few posts a minute with a daily
rhythm, mostly neutral or happy, some grumbling. Then a billing run charges many customers
twice. Within minutes Norwegian, Swedish and English posts about the double charge pile up, the
wave peaks about 40 minutes in, and the company answers. Refunds land within the hour and the
complaints about waiting for them fade; after that Nordlys Energi is talked about as on any day,
the usual grumbling included. The recovery runs nine hours. The detector measures it against
the brand's usual negative share, which the storm barely moved, and steps down through two-hour
cool-downs, so the storm resolves about four hours after it began, or up to seven and a half
when it steps down through watch first; it must resolve inside the story at whatever time of day
the demo runs (tests/test_demo_story.py). Seven hours of recovery left too little room: the live
demo, whose worker closes buckets by event time and an idle timer, missed the resolution once in
CI and once in four local runs, with the story ending between 12:20 and 12:40 UTC.

Fjellbrød (a bakery chain) carries on as usual throughout, so the storm is visibly one brand's.

Everything is seeded: the same ``end`` and seed give the same mentions, in the mention schema
(docs/mentions.md) that collectors send. Posts name the brand in the ways collectors search for
it (name, handle, hashtag), and no field carries a brand id: the worker matches them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

MINUTE_MS = 60_000

# Slots: {n} how Nordlys Energi is named, {f} how Fjellbrød is, {kr}/{kr2} amounts, {min} minutes,
# {city} a town. Every line is written for this demo.
_NORDLYS = ("Nordlys Energi", "@Nordlys_Energi", "#nordlysenergi", "Nordlys Strøm")
_FJELL = ("Fjellbrød", "@fjellbrod", "#fjellbrød")
_CITIES = ("Tromsø", "Bodø", "Trondheim", "Bergen", "Oslo", "Luleå", "Umeå", "Alta")

CALM: dict[str, dict[str, Sequence[str]]] = {
    "nb": {
        "positive": (
            "Byttet til {n} i går, det tok fem minutter. Anbefales!",
            "Fikk raskt svar fra {n} på chatten i dag, takk for hjelpen",
            "Strømprisen hos {n} var lavere enn jeg fryktet denne måneden",
            "Hyggelig montør fra {n} som kom til {city} i dag",
        ),
        "neutral": (
            "Noen som har fastpris hos {n}? Lurer på om det lønner seg",
            "{n} sender ut nye avtalevilkår fra neste måned",
            "Hvordan melder man flytting hos {n}?",
            "Leste at {n} bygger ut vindkraft nord for {city}",
        ),
        "negative": (
            "Appen til {n} logger meg ut hele tiden, irriterende",
            "Ventet {min} minutter i telefonkø hos {n} i dag",
        ),
    },
    "sv": {
        "positive": (
            "{n} har bästa kundtjänsten jag har pratat med",
            "Smidigt att byta till {n}, allt klart på en kvart",
        ),
        "neutral": (
            "Någon som vet om {n} har rörligt pris i {city}?",
            "{n} skickar ut nya villkor nästa månad",
        ),
        "negative": ("Lång kö hos {n} kundtjänst idag, {min} minuter",),
    },
    "en": {
        "positive": (
            "Switched to {n} last week, easiest utility change ever",
            "Quick and friendly answer from {n} support today",
        ),
        "neutral": (
            "Anyone else on the {n} fixed plan? Thinking of switching.",
            "{n} announces new wind farm near {city}",
        ),
        "negative": ("The {n} app keeps logging me out, annoying",),
    },
    "da": {
        "positive": ("God oplevelse med {n} kundeservice i dag",),
        "neutral": ("Har {n} også kunder i Danmark nu?",),
        "negative": ("{n} sendte regningen to gange, hvad sker der?",),
    },
}
FJELLBROD: dict[str, dict[str, Sequence[str]]] = {
    "nb": {
        "positive": (
            "Kanelbollene fra {f} er de beste i byen",
            "Fersk grovbrød fra {f} til frokost, herlig",
        ),
        "neutral": ("Åpner {f} en ny butikk i {city}?", "Hva koster et brød hos {f} nå?"),
        "negative": ("Utsolgt for brød hos {f} allerede klokka ti",),
    },
    "da": {
        "positive": ("{f} rugbrød er overraskende godt",),
        "neutral": ("Findes {f} også i København?",),
        "negative": ("Lang kø hos {f} i morges",),
    },
}
STORM: dict[str, dict[str, Sequence[str]]] = {
    "nb": {
        "negative": (
            "{n} har trukket meg to ganger for strømregningen! Dobbelt trekk på {kr} kr",
            "Dobbelt trekk fra {n} denne måneden. Har ikke råd til dette før jul",
            "Er det flere som har fått dobbelt trekk fra {n}? Hele {kr2} kr borte fra kontoen",
            "{n} trakk regningen to ganger og kundeservice svarer ikke. Skandale",
            "Ringte {n} om dobbelt trekk, {min} minutter i kø og så brudd",
            "Takk for dobbelt trekk {n}, nå er kontoen tom. Hvem betaler gebyrene?",
            "Dobbelt trekk igjen fra {n}. Jeg bytter leverandør i dag",
        ),
        "neutral": (
            "{n} bekrefter feil i fakturering, flere kunder trukket to ganger",
            "Sjekk kontoen deres hvis dere er kunde hos {n}, mange melder om dobbelt trekk",
        ),
    },
    "sv": {
        "negative": (
            "{n} har dragit pengarna två gånger! Dubbel dragning på {kr} kr",
            "Dubbel dragning från {n}, och kundtjänst svarar inte. Skandal",
            "Fick också dubbel dragning från {n}. Hur kan det hända?",
            "Dubbel dragning igen från {n}, nu är kontot tomt",
        ),
        "neutral": ("Flera kunder hos {n} rapporterar dubbel dragning idag",),
    },
    "en": {
        "negative": (
            "{n} charged me twice this month! A double charge of {kr} kr, no answer from support",
            "Double charge from {n} and on hold for {min} minutes. Unacceptable",
            "Anyone else got the double charge from {n}? My account is empty before Christmas",
            "{n} took the payment twice. Refund the double charge now",
        ),
        "neutral": ("Reports of customers double charged by {n} in Norway and Sweden",),
    },
}
RECOVERY: dict[str, dict[str, Sequence[str]]] = {
    "nb": {
        "positive": (
            "{n} har betalt tilbake det doble trekket. Takk for rask hjelp!",
            "Fikk beklagelse og pengene tilbake fra {n}",
        ),
        "neutral": ("{n} sier alle som ble trukket to ganger får pengene tilbake i dag",),
        "negative": ("Fortsatt ikke fått tilbake pengene fra {n} etter dobbelt trekk",),
    },
    "sv": {
        "positive": ("Pengarna tillbaka från {n}, tack för snabb hjälp",),
        "neutral": ("{n} lovar återbetalning till alla som drabbades",),
        "negative": ("Väntar fortfarande på återbetalningen från {n}",),
    },
    "en": {
        "positive": ("Refund from {n} arrived, thanks for sorting it out",),
        "neutral": ("{n} says all double charges will be refunded today",),
    },
}
_PLATFORMS = ("x", "x", "facebook", "instagram", "reddit", "forum", "news")


@dataclass
class Scenario:
    """The demo's mentions by phase, in time order, with the times the story turns."""

    calm: list[dict[str, Any]] = field(default_factory=list)
    storm: list[dict[str, Any]] = field(default_factory=list)
    recovery: list[dict[str, Any]] = field(default_factory=list)
    storm_start_ms: int = 0
    storm_end_ms: int = 0
    end_ms: int = 0

    @property
    def all(self) -> list[dict[str, Any]]:
        return self.calm + self.storm + self.recovery

    def minutes(self, phase: str) -> list[list[dict[str, Any]]]:
        """A phase's mentions grouped by event-time minute, for paced playback."""
        records: list[dict[str, Any]] = getattr(self, phase)
        groups: dict[int, list[dict[str, Any]]] = {}
        for record in records:
            groups.setdefault(_ms(record) // MINUTE_MS, []).append(record)
        return [groups[k] for k in sorted(groups)]


def _ms(record: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(record["created_at"]).timestamp() * 1000)


def daily_rhythm(t_ms: int) -> float:
    """Relative activity by time of day (UTC+1), 1 on average: 0.3 at 4 a.m., 1.7 at 4 p.m."""
    hour = (t_ms / 3_600_000 + 1) % 24
    return 0.3 + 1.4 * (0.5 - 0.5 * math.cos((hour - 4) / 24 * 2 * math.pi))


def storm_rate(minute: int, length: int) -> float:
    """Posts a minute during the storm: a fast rise, a peak about 40 minutes in, a slow ebb."""
    peak = 0.55 * length
    if minute < peak:
        return 4 + 46 * (minute / peak) ** 1.6
    return 4 + 46 * math.exp(-(minute - peak) / (0.25 * length))


def recovery_negative(minute: int) -> float:
    """Share of the posts about the refunds that still complain, ``minute`` into the recovery:
    30 % at first, halving every 20 minutes as the refunds land."""
    return 0.3 * 0.5 ** (minute / 20)


class _Writer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (a seeded story, not a secret)
        self.count = 0

    def mention(
        self, t_ms: int, lang: str, text: str, *, viral: bool = False, news: bool = False
    ) -> dict[str, Any]:
        rng = self.rng
        self.count += 1
        platform = "news" if news else rng.choice(_PLATFORMS[:-1])
        followers = int(rng.lognormvariate(5.5, 1.3)) + (25_000 if viral else 0)
        record: dict[str, Any] = {
            "id": f"demo-{t_ms // 1000}-{self.count}",
            "text": text,
            "created_at": datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(
                timespec="milliseconds"
            ),
            "platform": platform,
            "author": {
                "id": f"demo-user-{rng.randrange(40_000)}",
                "handle": f"@user{rng.randrange(40_000)}",
                "followers": followers,
            },
            "url": f"https://{platform}.example/p/{t_ms // 1000}{self.count}",
            "engagement": {
                "likes": int(rng.expovariate(1 / (60 if viral else 4))),
                "shares": int(rng.expovariate(1 / (20 if viral else 1))),
                "replies": int(rng.expovariate(1 / (8 if viral else 1))),
            },
        }
        if rng.random() < 0.6:  # many collectors know the language; the rest are detected
            record["lang"] = lang
        return record

    def fill(self, template: str) -> str:
        rng = self.rng
        return template.format(
            n=rng.choice(_NORDLYS),
            f=rng.choice(_FJELL),
            kr=rng.randrange(600, 2400, 10),
            kr2=f"{rng.randrange(1200, 4800, 10):,}".replace(",", " "),
            min=rng.randrange(20, 95),
            city=rng.choice(_CITIES),
        )

    def pick(
        self, texts: dict[str, dict[str, Sequence[str]]], weights: dict[str, float], mood: str
    ) -> tuple[str, str]:
        langs = [lang for lang in weights if mood in texts.get(lang, {})]
        lang = self.rng.choices(langs, [weights[x] for x in langs])[0]
        return lang, self.fill(self.rng.choice(texts[lang][mood]))


def _mood(rng: random.Random, negative: float, positive: float) -> str:
    roll = rng.random()
    return (
        "negative" if roll < negative else "positive" if roll < negative + positive else "neutral"
    )


def generate(
    end_ms: int,
    *,
    seed: int = 2026,
    calm_hours: float = 24.0,
    storm_minutes: int = 70,
    recovery_minutes: int = 540,
    calm_per_minute: float = 3.0,
) -> Scenario:
    """The story, ending at ``end_ms``: calm, storm, recovery (times are event times)."""
    w = _Writer(seed)
    rng = w.rng
    total_minutes = int(calm_hours * 60) + storm_minutes + recovery_minutes
    start = end_ms - end_ms % MINUTE_MS - total_minutes * MINUTE_MS
    storm_start = start + int(calm_hours * 60) * MINUTE_MS
    storm_end = storm_start + storm_minutes * MINUTE_MS
    scenario = Scenario(storm_start_ms=storm_start, storm_end_ms=storm_end, end_ms=end_ms)
    calm_langs = {"nb": 0.6, "sv": 0.2, "en": 0.15, "da": 0.05}
    fjell_langs = {"nb": 0.85, "da": 0.15}
    for minute in range(total_minutes):
        t0 = start + minute * MINUTE_MS
        phase = "calm" if t0 < storm_start else "storm" if t0 < storm_end else "recovery"
        out = getattr(scenario, phase)
        rhythm = daily_rhythm(t0)
        # Nordlys Energi's ordinary talk goes on underneath everything.
        for _ in range(_poisson(rng, calm_per_minute * rhythm)):
            mood = _mood(rng, 0.12, 0.35)
            lang, text = w.pick(CALM, calm_langs, mood)
            out.append(w.mention(t0 + rng.randrange(MINUTE_MS), lang, text))
        for _ in range(_poisson(rng, 0.8 * rhythm)):
            lang, text = w.pick(FJELLBROD, fjell_langs, _mood(rng, 0.1, 0.45))
            out.append(w.mention(t0 + rng.randrange(MINUTE_MS), lang, text))
        if phase == "storm":
            m = minute - int(calm_hours * 60)
            for _ in range(_poisson(rng, storm_rate(m, storm_minutes))):
                mood = "neutral" if rng.random() < 0.08 else "negative"
                lang, text = w.pick(STORM, {"nb": 0.6, "sv": 0.22, "en": 0.18}, mood)
                viral = rng.random() < 0.03
                news = mood == "neutral" and rng.random() < 0.5
                out.append(
                    w.mention(t0 + rng.randrange(MINUTE_MS), lang, text, viral=viral, news=news)
                )
        elif phase == "recovery":
            m = minute - int(calm_hours * 60) - storm_minutes
            rate = 3.0 * math.exp(-m / 30)
            waiting = recovery_negative(m)
            for _ in range(_poisson(rng, rate)):
                mood = _mood(rng, waiting, 0.6 - waiting)
                lang, text = w.pick(RECOVERY, {"nb": 0.6, "sv": 0.2, "en": 0.2}, mood)
                out.append(w.mention(t0 + rng.randrange(MINUTE_MS), lang, text))
    for phase in ("calm", "storm", "recovery"):
        getattr(scenario, phase).sort(key=lambda r: (r["created_at"], r["id"]))
    return scenario


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw from the scenario's own seeded generator."""
    return int(np.random.default_rng(rng.getrandbits(64)).poisson(mean))
