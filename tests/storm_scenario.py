"""A brand storm as ``mentions.scored`` records, for the alerting tests (no tests here).

Nordlys Energi has a quiet day (a few posts a minute, a fifth of them negative), then a wave of
Norwegian and English complaints about delayed refunds that builds up to a critical storm, then
calm again until the storm resolves. Times are fixed (a Monday in 2026), so the detector's
outcome is the same in every run; the records are ordered by time and keyed by brand.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

BRAND = "nordlys-energi"
T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000

CALM = [
    ("nb", "Byttet til Nordlys Energi i går, det gikk greit"),
    ("en", "Does Nordlys Energi have a student plan?"),
    ("sv", "Nordlys Energi har bra kundtjänst"),
    ("nb", "Fikk god hjelp fra Nordlys Energi på chatten"),
]
COMPLAINTS = [
    ("nb", "Forsinket refusjon fra Nordlys Energi igjen, skuffende"),
    ("nb", "Tredje uka med forsinket refusjon fra Nordlys Energi"),
    ("en", "Still waiting on my delayed refund from Nordlys Energi"),
    ("en", "Nordlys Energi delayed refund for a month now, ridiculous"),
    ("nb", "Hvor blir pengene av? Forsinket refusjon, ingen svar"),
]


def _record(
    n: int, t_ms: int, lang: str, text: str, label: str, rng: random.Random
) -> dict[str, Any]:
    return {
        "id": f"storm-{n}",
        "text": text,
        "created_at_ms": t_ms,
        "brand": BRAND,
        "platform": "x",
        "lang": lang,
        "url": f"https://x.example/status/{n}",
        "author": {
            "id": f"user{rng.randrange(5000)}",
            "handle": None,
            "followers": rng.randrange(50, 3000),
        },
        "engagement": {"likes": rng.randrange(10), "shares": rng.randrange(3), "replies": 0},
        "is_brand_reply": False,
        "sentiment": {"label": label, "model": "scenario"},
    }


def phases() -> dict[str, list[dict[str, Any]]]:
    """``calm`` (the day before), ``onset`` (the storm opens), ``escalation`` (it turns
    critical), ``aftermath`` (calm again, long enough for the storm to resolve)."""
    rng = random.Random(7)
    out: dict[str, list[dict[str, Any]]] = {}
    n = 0

    def minutes(name: str, start: int, count: int, per_minute: int, negative: float) -> None:
        nonlocal n
        records = out.setdefault(name, [])
        for m in range(start, start + count):
            for _ in range(per_minute):
                n += 1
                t = T0 + m * MINUTE + rng.randrange(MINUTE)
                if rng.random() < negative:
                    lang, text = rng.choice(COMPLAINTS)
                    label = "negative"
                else:
                    lang, text = rng.choice(CALM)
                    label = rng.choice(["neutral", "positive"])
                records.append(_record(n, t, lang, text, label, rng))
        records.sort(key=lambda r: (r["created_at_ms"], r["id"]))

    day = 24 * 60
    minutes("calm", 0, day, 3, 0.15)
    minutes("onset", day, 20, 12, 0.5)
    minutes("escalation", day + 20, 30, 40, 0.85)
    minutes("aftermath", day + 50, 240, 3, 0.15)
    return out
