"""Texts every sentiment backend must score without error (shared by the backend tests)."""

from __future__ import annotations

EDGE_TEXTS = [
    "",
    "   \n\t  ",
    "😀🔥👍🏽🇳🇴",
    "the flight was awful " * 2500,  # ~50 kB
    "The service was great, men maten var kald och förseningen var lång. Tak!",
    "Flyet ble kansellert igjen 😡 and nobody at @SAS answers, fy fan vad dåligt",
    "\u202etxet desrever\u202c <script>alert(1)</script>",
]
#: One language per edge text (collector-given codes, and None for "unknown").
EDGE_LANGS: list[str | None] = ["nb", None, None, "en", "sv", "nn", "da"]
