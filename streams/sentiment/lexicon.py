"""The fast lexicon backend: asent's VADER-style lexicons for en, da, nb/nn and sv, without torch.

Each language gets a blank spaCy pipeline (tokenizer + ``sentencizer``) with asent's component
(``asent_en_v1``, ``asent_da_v1``, ``asent_no_v1`` for Bokmål and Nynorsk, ``asent_sv_v1``), built
on first use and reused. Texts in other languages or without a language go to English: the emoji
lexicon, merged into every language's, still counts.

Only the first ``max_chars`` (5,000) characters of a text are scored: asent handles about 20,000
tokens a second, so a 64 kB spam mention would otherwise hold a worker for most of a second.
Mentions are far shorter (the Swedish reviews, the longest texts in the shared data, stay under
5,000).

From compound score to probabilities: asent's ``compound`` c in [-1, 1] is turned into three logits
with a neutral band t (VADER's customary 0.05) and a temperature k:

    z_pos = k * (c - t)      z_neg = k * (-c - t)      z_neu = k * (t - |c|)

and the probabilities are their softmax. So the most likely label is exactly VADER's rule
(positive when c > t, negative when c < -t, neutral in between), positive and negative compare
like the sign of c (what binary evaluation uses), and a text without any sentiment word (c = 0) is
neutral with probability 1 / (1 + 2 exp(-2kt)) = 0.62 at the default k = 12. With t = 0.05 this
reproduces the published asent baselines on the shared data: macro-F1 0.50 on the airline tweets'
dev split, 0.46 on NoReC dev (three classes) and 0.74 on the Swedish reviews (binary).

asent's lexicons have a few words with the wrong sign (machine translation from English:
Norwegian "forferdelig", terrible, is +4, so "Forferdelig dårlig kundeservice" came out positive)
and lack common ones (Norwegian and Danish "bra", good; "kjempebra", "jättebra", "urdålig") and
some emoji (😡, 🤬, 👎 and 💩 are 0 in its emoji lexicon, and its Swedish component never merges
the emoji lexicon at all). :data:`LEXICON_FIXES` corrects and completes asent's loaded lexicons,
before any pipeline scores.

asent keeps its lexicon lookups as *process-global* spaCy token extensions: the component created
last decides which lexicon every pipeline uses. So before each language's texts are run, that
language's component is created again (cheap, under a millisecond), and all asent work in this
module happens under one lock.
"""

from __future__ import annotations

import importlib.metadata
import math
import threading
import warnings
from collections.abc import Sequence

import spacy
from spacy.language import Language
from spacy.tokens import Doc

with warnings.catch_warnings():
    # asent 0.8 declares pydantic models the v1 way; the deprecation is theirs to fix.
    warnings.filterwarnings("ignore", "Support for class-based `config`", DeprecationWarning)
    import asent  # noqa: F401  (registers the asent_*_v1 spaCy factories)

from streams.log_setup import get_logger
from streams.sentiment.base import Sentiment

log = get_logger(__name__)

#: language code -> (spaCy blank language, asent component factory)
PIPELINES: dict[str, tuple[str, str]] = {
    "en": ("en", "asent_en_v1"),
    "da": ("da", "asent_da_v1"),
    "nb": ("nb", "asent_no_v1"),
    "nn": ("nb", "asent_no_v1"),
    "no": ("nb", "asent_no_v1"),
    "sv": ("sv", "asent_sv_v1"),
}
DEFAULT_LANG = "en"

#: Valences (asent's -4..4 scale) that replace or add to asent's, per asent lexicon name. Checked
#: against the words' meaning; the related entries asent has right are the model (fryktelig -3,
#: Swedish bra +3.1, Danish elendig -3, dårlig -3). Every added word was absent (scored 0).
LEXICON_FIXES: dict[str, dict[str, float]] = {
    "lexicon_no_v1": {
        "forferdelig": -3.0,  # terrible; asent +4
        "forferdelige": -3.0,  # absent in asent
        "forferdeligste": -3.0,  # absent in asent
        "illevarslende": -2.0,  # ominous; asent +3
        "dumdristig": -2.0,  # foolhardy; asent +3
        "helt": 0.0,  # completely (helt håpløst: hopeless); asent +2, as if always "hero"
        "bra": 2.0,  # good
        "kjempebra": 3.0,  # great
        "elendige": -3.0,  # plural of elendig (-3)
        "håpløst": -2.0,  # hopeless (håpløs -2)
        "usel": -2.0,  # lousy
        "uselt": -2.0,
        "dårleg": -2.0,  # Nynorsk dårlig (-2)
    },
    "lexicon_sv_v1": {
        "jättebra": 3.0,  # great (bra +3.1)
        "urdålig": -3.0,  # awful (dålig -2.5)
        "urdåligt": -3.0,
        "jättedålig": -3.0,
        "jättedåligt": -3.0,
        "uselt": -2.0,  # usel -2
    },
    "lexicon_da_v1": {
        "bra": 2.0,  # good
        "forfærdelig": -3.0,  # terrible
        "forfærdeligt": -3.0,
        "forfærdelige": -3.0,
    },
    # Emoji with valence 0 in asent's emoji lexicon, merged into each language's (below).
    "emoji_v1": {
        "😡": -3.0,  # pouting face
        "🤬": -3.5,  # symbols over mouth
        "👎": -2.0,  # thumbs down
        "💩": -2.0,  # pile of poo
        "🤮": -2.5,  # vomiting
        "👍": 2.0,  # thumbs up
    },
}


def _fix_lexicons() -> None:
    """Apply :data:`LEXICON_FIXES` to the dicts asent's components read (idempotent).

    asent's no, da and en components merge the emoji lexicon into theirs each time they are
    created; its Swedish one merges its lexicon with itself instead, so Swedish texts never
    counted an emoji: it gets the emoji here (its own words win).
    """
    from asent.utils import lexicons

    emoji = lexicons.get("emoji_v1")
    emoji.update(LEXICON_FIXES["emoji_v1"])
    swedish = lexicons.get("lexicon_sv_v1")
    swedish.update({k: v for k, v in emoji.items() if k not in swedish})
    for name, fixes in LEXICON_FIXES.items():
        lexicons.get(name).update(fixes)


_fix_lexicons()

# asent's spaCy extensions are global to the process, so is this lock.
_ASENT_LOCK = threading.Lock()

#: Longest run of tokens treated as one sentence; see :func:`_cap_sentences`.
MAX_SENTENCE_TOKENS = 64


@Language.component("stormvarsel_cap_sentences")
def _cap_sentences(doc: Doc) -> Doc:
    """Start a new sentence every MAX_SENTENCE_TOKENS tokens inside longer ones.

    asent looks up ``token.sent`` for every token, which costs the sentence's length, so one long
    unpunctuated text is quadratic (50 kB took 3 s); capped, it is linear. VADER scores sentences
    of a few words, so cutting a run-on text every 64 tokens barely changes the compound.
    """
    run = 0
    for token in doc:
        if token.is_sent_start:
            run = 0
        elif run >= MAX_SENTENCE_TOKENS:
            token.is_sent_start = True
            run = 0
        run += 1
    return doc


def asent_version() -> str:
    try:
        return importlib.metadata.version("asent")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - asent imported above
        return "unknown"


def compound_to_probs(
    compound: float, neutral_band: float = 0.05, temperature: float = 12.0
) -> Sentiment:
    """Softmax over the three logits described in the module docstring."""
    c = max(-1.0, min(1.0, float(compound)))
    z_neg = temperature * (-c - neutral_band)
    z_neu = temperature * (neutral_band - abs(c))
    z_pos = temperature * (c - neutral_band)
    top = max(z_neg, z_neu, z_pos)
    e_neg, e_neu, e_pos = (math.exp(z - top) for z in (z_neg, z_neu, z_pos))
    total = e_neg + e_neu + e_pos
    return Sentiment(negative=e_neg / total, neutral=e_neu / total, positive=e_pos / total)


#: spaCy interns every distinct token it meets in the pipeline's vocabulary and never forgets
#: it, so a stream of new words (hashtags, handles, typos, a flood of random ones) would grow the
#: worker's memory without bound. Past this many strings a pipeline is rebuilt from scratch
#: (about 60 ms; at most once per ~20,000 mentions full of new words); the asent lexicons
#: themselves are at most a few thousand strings, and 100,000 strings take about 40 MB.
MAX_VOCAB_STRINGS = 100_000


class LexiconScorer:
    """Scores texts with asent; implements :class:`streams.sentiment.base.Scorer`."""

    def __init__(
        self,
        batch_size: int = 256,
        neutral_band: float = 0.05,
        temperature: float = 12.0,
        max_chars: int = 5_000,
        max_vocab_strings: int = MAX_VOCAB_STRINGS,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.neutral_band = neutral_band
        self.temperature = temperature
        self.max_chars = max_chars
        self.version = f"lexicon:asent-{asent_version()}"
        self.max_vocab_strings = max_vocab_strings
        self._pipelines: dict[tuple[str, str], Language] = {}

    def _pipeline(self, key: tuple[str, str]) -> Language:
        nlp = self._pipelines.get(key)
        if nlp is None:
            spacy_lang, factory = key
            nlp = spacy.blank(spacy_lang)
            nlp.add_pipe("sentencizer")
            nlp.add_pipe("stormvarsel_cap_sentences")
            nlp.add_pipe(factory)
            self._pipelines[key] = nlp
            log.debug("sentiment.lexicon.pipeline", spacy_lang=spacy_lang, component=factory)
        return nlp

    @staticmethod
    def pipeline_key(lang: str | None) -> tuple[str, str]:
        """Which (spaCy language, asent component) scores texts in ``lang``."""
        code = (lang or "").strip().lower()
        return PIPELINES.get(code, PIPELINES[DEFAULT_LANG])

    def compounds(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[float]:
        """asent's compound score per text, in [-1, 1]."""
        if len(langs) != len(texts):
            raise ValueError(f"langs has {len(langs)} entries for {len(texts)} texts")
        groups: dict[tuple[str, str], list[int]] = {}
        for i, lang in enumerate(langs):
            groups.setdefault(self.pipeline_key(lang), []).append(i)
        out = [0.0] * len(texts)
        with _ASENT_LOCK:
            for key, indices in groups.items():
                nlp = self._pipeline(key)
                nlp.create_pipe(key[1])  # make this language's lexicon the active one
                docs = nlp.pipe(
                    (texts[i][: self.max_chars] for i in indices), batch_size=self.batch_size
                )
                for i, doc in zip(indices, docs, strict=True):
                    polarity = doc._._polarity
                    out[i] = float(polarity["compound"]) if polarity else 0.0
                strings = len(nlp.vocab.strings)
                if strings > self.max_vocab_strings:
                    del self._pipelines[key]  # rebuilt with a fresh vocabulary on next use
                    log.debug("sentiment.lexicon.vocab_reset", spacy_lang=key[0], strings=strings)
        return out

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        return [
            compound_to_probs(c, self.neutral_band, self.temperature)
            for c in self.compounds(texts, langs)
        ]
