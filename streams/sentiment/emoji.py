"""Posts that are only emoji are scored from the emoji, not by the model.

The shipped model reads emoji-only posts badly and with confidence: "🤬" and "💩" came out
neutral at 1.00, "😡" neutral at 0.80, "😡😡😡" and "👎" negative at only about 0.57. A storm's
angry replies are often nothing but emoji, and the detector counts negative posts, so they were
missed.

A post is *emoji-only* when, after removing URLs, @handles and hashtags, no letter or digit is left
and at least one emoji is. Such a post is scored from :data:`POLARITY`, a short table of the
common emoji whose meaning in a reply to a company is clear:

- all its known emoji lean one way: that label, with the strongest emoji's confidence (repeats do
  not add to it); emoji outside the table beside them carry no signal;
- known emoji that disagree (😂😡), or none known: neutral at :data:`UNSURE_NEUTRAL`, never a
  confident label.

An emoji is read by its base character: skin-tone modifiers, variation selectors, keycaps and tag
characters are dropped, and in a ZWJ sequence (🤦‍♂️, ❤️‍🔥) the parts after the first joiner are
too. Every other post goes to the model, in one batch as before. The sentiment of an emoji-only
post names :data:`EMOJI_RULE` as its ``model``, so a scored record says which of the two decided.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from streams.sentiment.base import Scorer, Sentiment

#: The ``model`` a scored record names when this rule decided its sentiment.
EMOJI_RULE = "rule:emoji-1"

#: Probabilities of a post whose emoji say nothing clear: neutral, but barely.
UNSURE_NEUTRAL = Sentiment(negative=0.3, neutral=0.4, positive=0.3, decided_by=EMOJI_RULE)

#: Emoji (base character) -> signed confidence: the sign is the label (negative < 0 < positive),
#: the size the probability given to it. The project's reading of each emoji's usual meaning in a
#: reply to a company (see docs/sentiment.md); emoji used both ways (😭, 🔥, 🙏, 😱) are left out.
POLARITY: dict[str, float] = {
    # anger, disgust, contempt
    "🤬": -0.9,  # face with symbols on mouth
    "🖕": -0.9,  # middle finger
    "😡": -0.85,  # pouting face
    "😠": -0.8,  # angry face
    "👎": -0.8,  # thumbs down
    "🤮": -0.8,  # face vomiting
    "💩": -0.75,  # pile of poo
    "🤢": -0.7,  # nauseated face
    "😤": -0.7,  # face with steam from nose
    "😾": -0.7,  # pouting cat
    "😒": -0.7,  # unamused face
    "🙄": -0.7,  # face with rolling eyes
    "🤦": -0.7,  # face palm
    "🤡": -0.6,  # clown face (mockery)
    # disappointment, sadness, frustration
    "💔": -0.75,  # broken heart
    "😞": -0.7,  # disappointed face
    "😩": -0.7,  # weary face
    "😫": -0.7,  # tired face
    "😖": -0.7,  # confounded face
    "☹": -0.7,  # frowning face
    "😢": -0.65,  # crying face
    "😔": -0.65,  # pensive face
    "😟": -0.65,  # worried face
    "😣": -0.65,  # persevering face
    "🙁": -0.65,  # slightly frowning face
    "😑": -0.6,  # expressionless face
    "😕": -0.6,  # confused face
    "😓": -0.6,  # downcast face with sweat
    # approval, joy, affection
    "❤": 0.85,  # red heart
    "😍": 0.85,  # smiling face with heart-eyes
    "🥰": 0.85,  # smiling face with hearts
    "👍": 0.8,  # thumbs up
    "♥": 0.8,  # heart suit
    "💕": 0.8,  # two hearts
    "💖": 0.8,  # sparkling heart
    "💙": 0.8,  # blue heart
    "💚": 0.8,  # green heart
    "💛": 0.8,  # yellow heart
    "💜": 0.8,  # purple heart
    "🧡": 0.8,  # orange heart
    "😊": 0.8,  # smiling face with smiling eyes
    "☺": 0.8,  # smiling face
    "😘": 0.8,  # face blowing a kiss
    "🤩": 0.8,  # star-struck
    "🥳": 0.8,  # partying face
    "👏": 0.75,  # clapping hands
    "🙌": 0.75,  # raising hands
    "🤗": 0.75,  # hugging face
    "🎉": 0.75,  # party popper
    "😀": 0.75,  # grinning face
    "😃": 0.75,  # grinning face with big eyes
    "😄": 0.75,  # grinning face with smiling eyes
    "😁": 0.7,  # beaming face with smiling eyes
    "👌": 0.7,  # OK hand
    "💯": 0.7,  # hundred points
    "😇": 0.7,  # smiling face with halo
    "😎": 0.7,  # smiling face with sunglasses
    "🙂": 0.65,  # slightly smiling face
    "😆": 0.65,  # grinning squinting face
    "💪": 0.65,  # flexed biceps
    "😂": 0.55,  # face with tears of joy (often mockery in a storm: weak)
    "🤣": 0.55,  # rolling on the floor laughing
}

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")
_HASHTAG = re.compile(r"(?<!\w)#\w+")

_ZWJ = "\u200d"


def _is_modifier(cp: int) -> bool:
    """Characters that change how the emoji before them looks, not what it means: variation
    selectors, skin tones, the keycap, tag characters (subdivision flags)."""
    return (
        0xFE00 <= cp <= 0xFE0F
        or 0x1F3FB <= cp <= 0x1F3FF
        or cp == 0x20E3
        or 0xE0020 <= cp <= 0xE007F
    )


def _is_pictograph(cp: int) -> bool:
    """Emoji base characters: pictographs, emoticons, dingbats, symbols, regional indicators."""
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or 0x2300 <= cp <= 0x23FF
        or 0x2B00 <= cp <= 0x2BFF
        or cp in (0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D, 0x3297, 0x3299)
    )


def emoji_only(text: str) -> list[str] | None:
    """The base emoji of an emoji-only post, in order (one per emoji, ZWJ sequences as their
    first part), or None when the post has a letter or a digit outside URLs, handles and
    hashtags, or no emoji at all."""
    if text.isascii():  # most posts: no emoji can be in them
        return None
    rest = _HASHTAG.sub(" ", _HANDLE.sub(" ", _URL.sub(" ", text)))
    found: list[str] = []
    joined = False
    for char in rest:
        if char.isalnum():
            return None
        cp = ord(char)
        if char == _ZWJ:
            joined = bool(found)
        elif _is_modifier(cp):
            continue
        elif _is_pictograph(cp):
            if not joined:
                found.append(char)
            joined = False
        else:
            joined = False  # spaces, punctuation: a ZWJ before them joined nothing
    return found or None


def emoji_sentiment(emoji: Sequence[str]) -> Sentiment:
    """The sentiment of a post made of ``emoji`` (base characters); see the module docstring."""
    known = [POLARITY[e] for e in emoji if e in POLARITY]
    negative = [-p for p in known if p < 0]
    positive = [p for p in known if p > 0]
    if bool(negative) == bool(positive):  # none known, or both ways
        return UNSURE_NEUTRAL
    sure = max(negative or positive)
    other = 1.0 - sure
    # The rest mostly to neutral: one emoji is rarely the opposite of what it shows.
    lean = (sure, other * 2 / 3, other / 3)
    neg, neu, pos = lean if negative else (lean[2], lean[1], lean[0])
    return Sentiment(negative=neg, neutral=neu, positive=pos, decided_by=EMOJI_RULE)


class EmojiRuleScorer:
    """Wraps any backend: emoji-only posts get :func:`emoji_sentiment`, the rest the backend's
    score (one call per batch, in the batch's order). Implements
    :class:`streams.sentiment.base.Scorer`; ``version`` is the backend's."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.version = inner.version

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        if len(langs) != len(texts):
            raise ValueError(f"langs has {len(langs)} entries for {len(texts)} texts")
        out: list[Sentiment | None] = [None] * len(texts)
        to_model: list[int] = []
        for i, text in enumerate(texts):
            emoji = emoji_only(text)
            if emoji is None:
                to_model.append(i)
            else:
                out[i] = emoji_sentiment(emoji)
        if to_model:
            scored = self.inner.score([texts[i] for i in to_model], [langs[i] for i in to_model])
            if len(scored) != len(to_model):
                raise ValueError(
                    f"scorer {self.version} returned {len(scored)} results for "
                    f"{len(to_model)} texts"
                )
            for i, sentiment in zip(to_model, scored, strict=True):
                out[i] = sentiment
        return [s for s in out if s is not None]
