"""Turning a post into the terms, hashtags and phrases its drivers are counted from."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from detectors.stopwords import stop_words

_URL = re.compile(r"https?://\S+|www\.\S+")
#: Characters that are not there to the reader but would split a word in two: the soft hyphen
#: (U+00AD, also written ``&shy;``), zero-width space, non-joiner and joiner, word joiner and
#: the byte order mark (zero-width no-break space). They are removed before tokenising.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
#: Words: letters (any script, including æøå), digits and inner apostrophes; a hyphen between
#: two letters joins the parts into one word ("wi-fi", "in-flight", "e-posten", "sl-appen"),
#: but not after a digit ("24-hour" is "24" and "hour"). Hashtags and handles keep their sigil
#: so they can be told apart, and end at a hyphen, as the platforms' own do.
_CURLY_APOSTROPHE = "\u2019"
_WORD = r"[#@][^\W_][\w'\u2019]*|[^\W_][\w'\u2019]*(?:(?<=[^\W\d_])-[^\W\d_][\w'\u2019]*)*"
#: What ends a phrase: sentence and clause punctuation, dashes (a hyphen standing apart from
#: words too), brackets, quotation marks and line breaks (a removed URL is replaced by a line
#: break). Two words on either side of one are
#: not a phrase ("flight cancelled. refund please" has no "cancelled refund").
_BREAKS = '\n.!?;:,\u2026\u2013\u2014()"\u201c\u201d\u201e\u00ab\u00bb'
#: A token (group 1) or a break (no group: an empty match of the group).
_TOKEN_OR_BREAK = re.compile(f"({_WORD})|[{re.escape(_BREAKS)}]|(?<!\\w)-+(?!\\w)", re.UNICODE)
MIN_TERM_LENGTH = 3
#: The longest word (or hashtag, without its ``#``) counted; a phrase is two words, so at most
#: ``2 * MAX_TERM_LENGTH + 1`` characters. No driver word is longer ("kundeserviceavdelingen"
#: is 22); what is, is a run without spaces (a base64 blob, a URL without its scheme, a run of
#: Chinese or Japanese), and each would otherwise stay for a week in the brand's saved state,
#: whose every key is saved with it (a mention may be 64 KiB).
MAX_TERM_LENGTH = 40


@dataclass(frozen=True, slots=True)
class Terms:
    """What one post contributes to driver counts (each item counted once per post)."""

    words: tuple[str, ...]
    hashtags: tuple[str, ...]
    phrases: tuple[str, ...]


def _tokens_and_breaks(text: str) -> list[str]:
    """``_TOKEN_OR_BREAK.findall(text)``, faster: a space-separated chunk of letters only is one
    token, and only the other chunks go through the expression. A space is neither a token's
    character nor a break, and the dash rule's look-arounds see no word character in it, so the
    chunks' matches are the whole text's."""
    found: list[str] = []
    for chunk in text.split(" "):
        if chunk.isalpha():
            found.append(chunk)
        elif chunk:
            found.extend(_TOKEN_OR_BREAK.findall(chunk))
    return found


def extract(text: str, lang: str | None) -> Terms:
    """Lower-cased words without stop words, handles, numbers or runs over
    :data:`MAX_TERM_LENGTH` characters; hashtags; two-word phrases.

    Phrases are pairs of adjacent content words (stop words, handles, numbers, removed URLs
    and punctuation break a phrase), so "on hold for 2 hours" gives no phrase but "cancelled
    flight" does, and "flight cancelled. refund please" has no "cancelled refund".
    """
    stops = stop_words(lang)
    if "&" in text:
        # Entities as some exports write them ("&quot;worst airline&quot;", "&amp;", "&shy;"):
        # read them, or "quot" and "amp" become words.
        text = html.unescape(text)
    if not text.isascii():
        # Decomposed letters (NFD: "a" + combining ring, as macOS and some keyboards write
        # "å") are not word characters to the tokeniser, and split "håpløs" in two: compose
        # them first (checking is cheaper than normalising). A soft hyphen or zero-width
        # character inside a word splits it too ("strøm\u00adbruddet"): remove them. ASCII
        # text needs neither.
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        text = _INVISIBLE.sub("", text)
    text = text.lower()
    if "http" in text or "www." in text:
        text = _URL.sub("\n", text)
    if _CURLY_APOSTROPHE in text:
        text = text.replace(_CURLY_APOSTROPHE, "'")
    quoted = "'" in text  # only then can a token carry an apostrophe to strip
    words: list[str] = []
    hashtags: list[str] = []
    phrases: list[str] = []
    previous: str | None = None
    for raw in _tokens_and_breaks(text):
        if not raw:
            previous = None
            continue
        first = raw[0]
        if first == "#":
            tag = raw.rstrip("'")
            if tag.endswith("'s"):  # "#united's" is "#united"
                tag = tag[:-2]
            if 2 < len(tag) <= MAX_TERM_LENGTH + 1:
                hashtags.append(tag)
            previous = None
            continue
        token = raw.strip("'") if quoted else raw
        # A token starting with a digit is a number, time or count ("2hrs", "10am", "3rd").
        if (
            first == "@"
            or first.isdigit()
            or not MIN_TERM_LENGTH <= len(token) <= MAX_TERM_LENGTH
            or token in stops
        ):
            previous = None
            continue
        words.append(token)
        if previous is not None:
            phrases.append(previous + " " + token)
        previous = token
    return Terms(
        tuple(dict.fromkeys(words)), tuple(dict.fromkeys(hashtags)), tuple(dict.fromkeys(phrases))
    )
