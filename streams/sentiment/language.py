"""Language identification per mention: Bokmål, Nynorsk, Swedish, Danish or English (or German
or Finnish, named so as not to be taken for one of them).

Built on lingua-language-detector, whose n-gram models ship inside the wheel: nothing is downloaded
at run time. The detector knows the five languages the brands are monitored in, and German and
Finnish, the neighbouring languages a Nordic brand's feed carries most: a German or Finnish post
is ``de`` or ``fi`` (restricted to the five, lingua called German posts Nynorsk and Finnish ones
Swedish, confidently). A text in another Latin-script language may still come out as one of the
seven, usually with low confidence (None); other scripts come out None. Each further language
costs memory (German and Finnish about 75 MB) and load time, so no more are asked about.

Rules, in order:

1. a language given by the collector wins (normalised: ``no``/``nob``/``nor`` -> ``nb``,
   ``nno`` -> ``nn``, ``swe`` -> ``sv``, ``dan`` -> ``da``, ``eng`` -> ``en``, region tags
   dropped (``en-US`` -> ``en``), other codes kept lower-cased; blank, ``und`` and the codes
   for no or several languages (``zxx``, ``mis``, ``mul``, Twitter's ``qme``/``qht``/``qam``/
   ``qct``/``qst``) count as not given);
2. otherwise the text is cleaned (URLs, @handles and emoji removed, ``#`` dropped from hashtags
   so the word still counts) and detected on its first ``max_chars`` characters;
3. fewer than ``min_letters`` letters left -> None;
4. Bokmål and Nynorsk pooled: when their sum is at least ``min_confidence`` and above every other
   language, and Danish leads the likelier of the two by less than ``danish_margin`` (0.05), the
   text is Norwegian (clearly Norwegian but could be either written standard, even when Danish
   alone is a little likelier than either): Bokmål, unless Nynorsk leads it by more than
   ``nynorsk_margin`` (0.02). A clear Danish lead is not outvoted by the pooled pair (lingua gave
   da 0.45, nb 0.32, nn 0.19 to "Nordea-appen har været nede hele lønningsdagen");
5. otherwise the likeliest language if its confidence is at least ``min_confidence``, else None.

Danish and Bokmål share most of their short words (``det er ikke``, ``jeg``, ``og``), so on very
short texts the two are often ambiguous: lingua then gives both similar confidence and the result
is None (or occasionally the wrong one of the two). For sentiment this matters little, because the
Danish and Norwegian lexicons overlap heavily, but do not use this module to tell Danish from
Norwegian users apart on one-line mentions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from lingua import ConfidenceValue, Language, LanguageDetector, LanguageDetectorBuilder

from streams.sentiment.handles import HANDLE, URL

SUPPORTED: tuple[str, ...] = ("nb", "nn", "sv", "da", "en")

_LINGUA: dict[Language, str] = {
    Language.BOKMAL: "nb",
    Language.NYNORSK: "nn",
    Language.SWEDISH: "sv",
    Language.DANISH: "da",
    Language.ENGLISH: "en",
    # Not product languages: asked about so that their posts are named, not taken for one.
    Language.GERMAN: "de",
    Language.FINNISH: "fi",
}
_ALIASES: dict[str, str] = {
    "no": "nb",
    "nob": "nb",
    "nor": "nb",
    "nno": "nn",
    "swe": "sv",
    "dan": "da",
    "eng": "en",
}
#: Blank, undetermined, "no linguistic content" (zxx), uncoded (mis), several (mul), and
#: Twitter's media-only / hashtags-only / emoji-only / cashtags-only / short codes.
_NOT_GIVEN = frozenset(
    {"", "und", "unk", "unknown", "none", "null", "xx", "zxx", "mis", "mul"}
    | {"qme", "qht", "qam", "qct", "qst"}
)

_HASHTAG = re.compile(r"(?<!\w)#(\w)")
# Pictographs, dingbats, symbols, flags (regional indicators), skin tones, joiners and selectors.
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"
    "\U00002600-\U000027bf"
    "\U00002300-\U000023ff"
    "\U00002b00-\U00002bff"
    "\U0000fe00-\U0000fe0f"
    "\U0000200d"
    "\U000020e3"
    "\U000e0020-\U000e007f"
    "]+"
)
_SPACES = re.compile(r"\s+")


def normalise_lang(code: object) -> str | None:
    """A collector's language code in our form (``nb``, ``nn``, ``sv``, ``da``, ``en``, ...).

    None for blank or undetermined (``und``) codes, which then get detected, and for a value
    that is not a string (a producer's ``"lang": 5`` must not fail the whole batch).
    """
    if not isinstance(code, str):
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    if primary in _NOT_GIVEN:
        return None
    return _ALIASES.get(primary, primary)


def clean_for_detection(text: str) -> str:
    """The text without URLs, @handles, emoji and hashtag signs, spaces collapsed."""
    text = URL.sub(" ", text)
    text = HANDLE.sub(" ", text)
    text = _HASHTAG.sub(r"\1", text)
    text = _EMOJI.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


@functools.cache
def _detector() -> LanguageDetector:
    """One detector per process; its models are loaded up front (1 to 3 s, shared by all).

    One language at a time: lingua holds the GIL while it loads models, so loading all of them
    in one call stopped the worker's event loop (web server, Kafka heartbeats) for the whole
    load, though it runs on the scoring thread. Loaded models stay in lingua's cache for the
    process, where the detector of all the languages, built last, finds them."""
    for language in _LINGUA:
        LanguageDetectorBuilder.from_languages(language).with_preloaded_language_models().build()
    return LanguageDetectorBuilder.from_languages(*_LINGUA).with_preloaded_language_models().build()


class LanguageIdentifier:
    """Picks a language per text; see the module docstring for the rules."""

    def __init__(
        self,
        min_confidence: float = 0.5,
        min_letters: int = 3,
        max_chars: int = 2000,
        danish_margin: float = 0.05,
        nynorsk_margin: float = 0.02,
    ) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be between 0 and 1")
        self.min_confidence = min_confidence
        self.danish_margin = danish_margin
        self.nynorsk_margin = nynorsk_margin
        self.min_letters = min_letters
        self.max_chars = max_chars
        self._lingua = _detector()

    def _decide(self, values: list[ConfidenceValue]) -> str | None:
        if not values:
            return None
        scores = {_LINGUA[v.language]: v.value for v in values}
        bokmal, nynorsk = scores.get("nb", 0.0), scores.get("nn", 0.0)
        norwegian = bokmal + nynorsk
        others = [value for code, value in scores.items() if code not in ("nb", "nn")]
        danish_lead = scores.get("da", 0.0) - max(bokmal, nynorsk)
        if (
            norwegian >= self.min_confidence
            and norwegian > max(others, default=0.0)
            and danish_lead < self.danish_margin
        ):
            return "nn" if nynorsk - bokmal > self.nynorsk_margin else "nb"
        best = max(scores, key=lambda code: scores[code])
        return best if scores[best] >= self.min_confidence else None

    def detect(
        self, texts: Sequence[str], given_langs: Sequence[object] | None = None
    ) -> list[str | None]:
        """One language code (or None) per text; ``given_langs`` (same length) win when set."""
        if given_langs is not None and len(given_langs) != len(texts):
            raise ValueError(f"given_langs has {len(given_langs)} entries for {len(texts)} texts")
        result: list[str | None] = [None] * len(texts)
        todo_index: list[int] = []
        todo_text: list[str] = []
        for i, text in enumerate(texts):
            given = normalise_lang(given_langs[i]) if given_langs is not None else None
            if given is not None:
                result[i] = given
                continue
            cleaned = clean_for_detection(text[: self.max_chars * 2])[: self.max_chars]
            if sum(ch.isalpha() for ch in cleaned) < self.min_letters:
                continue
            todo_index.append(i)
            todo_text.append(cleaned)
        if todo_text:
            confidences = self._lingua.compute_language_confidence_values_in_parallel(todo_text)
            for i, values in zip(todo_index, confidences, strict=True):
                result[i] = self._decide(values)
        return result

    def detect_one(self, text: str, given_lang: str | None = None) -> str | None:
        return self.detect([text], [given_lang])[0]
