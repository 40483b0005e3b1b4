"""Dollar signs in a mention's text stay text in the Markdown summary: GitHub renders what lies
between two unescaped "$" (or "$$") as a math formula (no Kafka)."""

from __future__ import annotations

import re

import pytest

from streams.replay.escape import md


@pytest.mark.parametrize(
    "text",
    [
        "@AmericanAir charged me $200 to change and a $75 bag fee",
        "$$ x^2 $$ in a post",
        "refund of $5",
    ],
)
def test_dollar_signs_are_escaped_in_the_markdown(text: str) -> None:
    out = md(text)
    assert not re.search(r"(?<!\\)\$", out), out
    # Read back as a renderer resolves escapes: the text as it was (an invisible word joiner
    # before "@" aside).
    assert re.sub(r"\\(.)", r"\1", out).replace("\u2060", "") == text
