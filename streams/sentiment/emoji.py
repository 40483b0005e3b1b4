"""Posts that are only emoji or emoticons are scored from them, not by the model.

The shipped model reads emoji-only posts badly and with confidence: "🤬" and "💩" came out
neutral at 1.00, "😡" neutral at 0.80, "😡😡😡" and "👎" negative at only about 0.57. A storm's
angry replies are often nothing but emoji, and the detector counts negative posts, so they were
missed.

A post is *emoji-only* when, after removing URLs, @handles and hashtags, what is left is emoji,
text emoticons (:data:`EMOTICONS`) and punctuation, with at least one emoji or emoticon. The text
is read in *pieces*: runs of characters between whitespace and emoji. A piece that is one or more
emoticons, with only ``! ? . , …`` around them (``:(``, ``:'(!!``, ``xD``, ``<3<3``), adds each
emoticon as the emoji it draws (``:(`` is 🙁, ``<3`` ❤, ``xD`` 😆, ``;)`` 😉); any other piece with
a letter or a digit (``10:30``, ``C:/``, ``xd``, a word) makes the post not emoji-only; other
pieces are punctuation and carry nothing. So a post with a word in it goes to the model whatever
emoticons it has.

Such a post is scored from :data:`POLARITY`, a short table of the common emoji whose meaning in a
reply to a company is clear. Each emoji in the table is a vote of its weight (the size of its
polarity; repeats vote again), and the two sides' weights are summed:

- all its known emoji lean one way: that label, with the strongest emoji's confidence (repeats do
  not add to it); emoji outside the table beside them carry no signal;
- a clear majority, one side's weight at least twice the other's (😡😡👍: 1.7 against 0.8): the
  majority's label, its one-sided probabilities moved towards :data:`UNSURE_NEUTRAL` by the
  opposing share of the weight (other / majority, at most 1/2), so the opposing emoji lower its
  confidence (😡😡👍 negative 0.59, not 0.85);
- no clear majority (😂😡, 😡👍👍, an even split), or no known emoji: neutral at
  :data:`UNSURE_NEUTRAL`, never a confident label.

At the threshold the majority keeps the largest probability for any emoji of confidence above
0.46; every one in the table is 0.55 or more.

An emoji is read by its base character: skin-tone modifiers, variation selectors, keycaps and tag
characters are dropped, and in a ZWJ sequence (🤦‍♂️, ❤️‍🔥) the parts after the first joiner are
too. Every other post goes to the model, in one batch as before. The sentiment of an emoji-only
post names :data:`EMOJI_RULE` as its ``model``, so a scored record says which of the two decided.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from streams.sentiment.base import Scorer, Sentiment
from streams.sentiment.handles import HANDLE, URL

#: The ``model`` a scored record names when this rule decided its sentiment.
EMOJI_RULE = "rule:emoji-2"

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


#: Text emoticon -> the emoji it draws, which :data:`POLARITY` then reads like any emoji. The
#: mouth may be repeated (``:(((``, ``<333``, ``xDDD``). Left out: ``(:`` and ``):``, which read
#: either way round inside brackets, and lower-case ``xd`` and ``:d``, which are word pieces too.
EMOTICONS: dict[str, str] = {
    ":(": "🙁",
    ":-(": "🙁",
    "=(": "🙁",
    ":[": "🙁",
    ":'(": "😢",
    ":'-(": "😢",
    ">:(": "😠",
    ">:-(": "😠",
    "D:": "☹",  # dismay: a frowning face with its mouth open
    ":/": "😕",
    ":-/": "😕",
    ":\\": "😕",
    ":-\\": "😕",
    "=/": "😕",
    "</3": "💔",
    ":)": "🙂",
    ":-)": "🙂",
    "=)": "🙂",
    ":]": "🙂",
    ":D": "😃",
    ":-D": "😃",
    "=D": "😃",
    "xD": "😆",
    "XD": "😆",
    "<3": "❤",
    ":*": "😘",
    ":-*": "😘",
    # Drawn, but not in the table (used both ways): they make a post emoji-only, no signal.
    ";)": "😉",
    ";-)": "😉",
    ":P": "😛",
    ":-P": "😛",
    ":p": "😛",
    ":-p": "😛",
    ";P": "😛",
    ":|": "😐",
    ":-|": "😐",
}

_EMOTICON = re.compile(
    "|".join(
        re.escape(e) + ("+" if e[-1] != ":" else "")
        for e in sorted(EMOTICONS, key=len, reverse=True)
    )
)
#: Punctuation allowed around emoticons in a piece (``:(!!!``, ``...:/``).
_AROUND = "!?.,\u2026"
#: A cheap test that an ASCII post could hold an emoticon (every one has one of these).
_EMOTICON_HINT = re.compile(r"[:;=<]|[xX]D")

#: How much more weight one side needs than the other to decide a post with both.
CLEAR_MAJORITY = 2.0


def _emoticons(piece: str) -> list[str] | None:
    """The emoji drawn by a piece that is one or more emoticons (with ``! ? . , …`` around
    them), or None when it is anything else."""
    found: list[str] = []
    pos = 0
    while pos < len(piece):
        if piece[pos] in _AROUND:
            pos += 1
            continue
        match = _EMOTICON.match(piece, pos)
        if match is None:
            return None
        drawn = match.group()
        found.append(EMOTICONS[drawn.rstrip(drawn[-1]) + drawn[-1]])  # one mouth
        pos = match.end()
    return found or None


def emoji_only(text: str) -> list[str] | None:
    """The base emoji of an emoji-only post, in order (one per emoji, ZWJ sequences as their
    first part, emoticons as the emoji they draw), or None when the post has a letter or a digit
    outside URLs, handles, hashtags and emoticons, or no emoji or emoticon at all."""
    if text.isascii() and _EMOTICON_HINT.search(text) is None:  # most posts: nothing to read
        return None
    rest = _HASHTAG.sub(" ", HANDLE.sub(" ", URL.sub(" ", text)))
    found: list[str] = []
    piece: list[str] = []  # the characters since the last space or emoji

    def end_piece() -> bool:
        if not piece:
            return True
        chars = "".join(piece)
        piece.clear()
        drawn = _emoticons(chars)
        if drawn is not None:
            found.extend(drawn)
            return True
        return not any(char.isalnum() for char in chars)  # punctuation only

    joined = False
    for char in rest:
        cp = ord(char)
        if char == _ZWJ:
            joined = bool(found)
        elif _is_modifier(cp):
            continue
        elif _is_pictograph(cp) and not char.isalnum():
            if not end_piece():
                return None
            if not joined:
                found.append(char)
            joined = False
        elif char.isspace():
            if not end_piece():
                return None
            joined = False
        else:
            piece.append(char)
            joined = False  # punctuation: a ZWJ before it joined nothing
    if not end_piece():
        return None
    return found or None


def emoji_sentiment(emoji: Sequence[str]) -> Sentiment:
    """The sentiment of a post made of ``emoji`` (base characters); see the module docstring."""
    known = [POLARITY[e] for e in emoji if e in POLARITY]
    negative = [-p for p in known if p < 0]
    positive = [p for p in known if p > 0]
    majority, minority = (
        (negative, positive) if sum(negative) > sum(positive) else (positive, negative)
    )
    if not majority or sum(minority) * CLEAR_MAJORITY > sum(majority) + 1e-9:
        return UNSURE_NEUTRAL  # none known, or no clear majority
    sure = max(majority)
    other = 1.0 - sure
    # The rest mostly to neutral: one emoji is rarely the opposite of what it shows.
    lean = (sure, other * 2 / 3, other / 3)
    # The opposing emoji move it towards unsure, by their share of the majority's weight.
    against = sum(minority) / sum(majority)
    unsure = (UNSURE_NEUTRAL.negative, UNSURE_NEUTRAL.neutral, UNSURE_NEUTRAL.positive)
    win, neu, lose = ((1 - against) * p + against * u for p, u in zip(lean, unsure, strict=True))
    neg, pos = (win, lose) if majority is negative else (lose, win)
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
