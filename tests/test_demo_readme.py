"""The README's quick start tells the demo's story; its figures must be the story's own.

It said the recovery lasted seven hours of story time after the scenario had been lengthened
to nine (seven left the live demo too little room to resolve the storm)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from streams.demo_scenario import generate

README = Path(__file__).resolve().parents[1] / "README.md"
WORDS = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11}


def test_readme_recovery_hours_are_the_scenario_s() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    bullet = text.split("**The recovery.**", 1)[1].split("At the end", 1)[0]
    said = [WORDS[w] for w in re.findall(r"[a-z]+", bullet) if w in WORDS]
    end = int(datetime(2026, 11, 25, 15, 30, tzinfo=UTC).timestamp() * 1000)
    scenario = generate(end)
    hours = (scenario.end_ms - scenario.storm_end_ms) / 3_600_000
    assert said == [round(hours)], (bullet, hours)


def test_readme_demo_drivers_are_words_of_the_storm_s_complaints() -> None:
    """The drivers are terms of the storm's negative posts; the README quoted 'double charged',
    which only a neutral news line says, while the page shows 'double charge'."""
    from streams.demo_scenario import STORM

    text = " ".join(README.read_text(encoding="utf-8").split())
    bullet = text.split("prints the page exactly as Alertmanager delivered it", 1)[1]
    quoted = re.findall(r'"([^"]+)"', bullet.split("holding-statement drafts", 1)[0])
    assert len(quoted) >= 2, bullet
    complaints = [t.lower() for lang in STORM.values() for t in lang["negative"]]
    for term in quoted:
        words = re.compile(rf"\b{re.escape(term.lower())}\b")
        assert sum(bool(words.search(t)) for t in complaints) >= 3, term
