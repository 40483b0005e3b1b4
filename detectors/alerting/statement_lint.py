"""The rules every holding-statement draft must pass, built-in or a brand's own override.

A holding statement acknowledges, says what is being done and when the next update comes, and
invites affected people to a private channel. It never speculates about causes, assigns blame,
promises what the brand has not decided to promise, names or quotes individuals, or carries user
text that could be read as markup. Rules run on the text with its slot values masked, so an
issue named by the crowd ("delayed refunds") is not mistaken for a promise of refunds; the issue
slot is checked on its own. Profanity is the one list the issue naming refuses too
(``detectors.alerting.wording``), swear-word compounds included ("dritdårlig", "skitdålig").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from detectors.alerting.issue_naming import GENERIC_ISSUE, plain_phrase
from detectors.alerting.statement_texts import DRAFT_LABEL
from detectors.alerting.statements import Statement, is_contact_url
from detectors.alerting.voice import BrandVoice
from detectors.alerting.wording import has_profanity

MAX_LENGTH = {"watch": 280, "warning": 400, "critical": 600}


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(patterns) + r")(?!\w)", re.IGNORECASE)


SPECULATION = {
    "en": _words(
        "probably",
        "likely",
        "unlikely",
        "might",
        "may have",
        "maybe",
        "perhaps",
        "possibly",
        "presumably",
        "seems?",
        "appears? to",
        "we think",
        "we believe",
        "we suspect",
        "could be",
        "rumou?rs?",
    ),
    "nb": _words(
        "sannsynligvis",
        "trolig",
        "kanskje",
        "antakelig(?:vis)?",
        "muligens",
        "visstnok",
        "ser ut til",
        "vi tror",
        "vi mistenker",
        "kan skyldes",
    ),
    "nn": _words(
        "sannsynlegvis",
        "truleg",
        "kanskje",
        "visstnok",
        "ser ut til",
        "vi trur",
        "vi mistenkjer",
    ),
    "sv": _words(
        "troligen",
        "troligtvis",
        "sannolikt",
        "kanske",
        "förmodligen",
        "möjligen",
        "antagligen",
        "verkar",
        "vi tror",
        "vi misstänker",
    ),
    "da": _words(
        "sandsynligvis",
        "formentlig",
        "måske",
        "muligvis",
        "antageligt",
        "vistnok",
        "ser ud til",
        "vi tror",
        "vi mistænker",
    ),
}
BLAME = {
    "en": _words(
        "fault",
        "blame[sd]?",
        "caused by",
        "because of",
        "due to",
        "responsible",
        "suppliers?",
        "vendors?",
        "partners?",
        "contractors?",
        "hackers?",
        "user error",
    ),
    "nb": _words(
        "skyld",
        "skyldes",
        "på grunn av",
        "forårsaket",
        "ansvarlig(?:e)?",
        "(?:under)?leverandør(?:en|er|ene)?",
        "samarbeidspartner\\w*",
        "hackere?",
    ),
    "nn": _words(
        "skuld",
        "skuldast",
        "på grunn av",
        "årsaka av",
        "ansvarleg(?:e)?",
        "(?:under)?leverandør(?:en|ar|ane)?",
        "hackarar?",
    ),
    "sv": _words(
        "skuld",
        "beror på",
        "på grund av",
        "orsakad(?:es)?",
        "ansvarig(?:a)?",
        "(?:under)?leverantör(?:en|er|erna)?",
        "hackare",
    ),
    "da": _words(
        "skyld",
        "skyldes",
        "på grund af",
        "forårsaget",
        "ansvarlig(?:e)?",
        "(?:under)?leverandør(?:en|er|erne)?",
        "hackere?",
    ),
}
PROMISE = {
    "en": _words(
        r"refund\w*",
        r"compensat\w*",
        r"reimburs\w*",
        r"guarantee\w*",
        r"promise\w*",
        "free of charge",
        r"discount\w*",
        r"vouchers?",
        "will be (?:fixed|resolved|solved|restored|back)",
        r"fixed (?:soon|shortly)",
        "full service",
    ),
    "nb": _words(
        r"refusjon\w*",
        r"refunder\w*",
        r"kompensasjon\w*",
        r"kompenser\w*",
        r"erstatning\w*",
        r"garanti\w*",
        "lover",
        "gratis",
        r"rabatt\w*",
        r"blir (?:løst|fikset|rettet)",
        "vil være løst",
    ),
    "nn": _words(
        r"refusjon\w*",
        r"kompensasjon\w*",
        r"kompenser\w*",
        r"erstatning\w*",
        r"garanti\w*",
        "lovar",
        "gratis",
        r"rabatt\w*",
        r"blir (?:løyst|fiksa|retta)",
    ),
    "sv": _words(
        r"återbetal\w*",
        r"kompensation\w*",
        r"kompenser\w*",
        r"ersättning\w*",
        r"garanti\w*",
        "lovar",
        "gratis",
        r"rabatt\w*",
        "kommer att (?:lösas|vara löst|åtgärdas)",
    ),
    "da": _words(
        r"refusion\w*",
        r"refunder\w*",
        r"kompensation\w*",
        r"kompenser\w*",
        r"erstatning\w*",
        r"garanti\w*",
        "lover",
        "gratis",
        r"rabat\w*",
        r"bliver (?:løst|rettet)",
        "vil være løst",
    ),
}
#: Times the statement may not commit to in any language: only the configured next update.
_ANY_TIME = (
    r"\d+\s*(?:min\w*|h|hours?|hrs?|tim\w*|days?|dag\w*|weeks?|uker?|veck\w*|uger?|veker?)",
    # A clock time (18:00, 18.00), not a date (10.03.2026) or a number (2.000).
    r"(?<![\d.:])(?:[01]?\d|2[0-3])[:.][0-5]\d(?![.:]?\d)",
    r"(?:kl\.?|klokka|klokken|klockan|kloka)\s*\d{1,2}",
    r"\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)",
    "tomorrow",
    "tonight",
    "today",
    "this (?:morning|afternoon|evening|week)",
    "i morgen",
    "imorgen",
    "i morgon",
    "imorgon",
    "i kveld",
    "i kväll",
    "ikväll",
    "i aften",
    "i dag",
    "idag",
    "innen kort",
    "snart",
    "soon",
    "shortly",
    "straks",
    "strax",
    "om lidt",
    "end of (?:the )?day",
    "within (?:an? |the )?(?:hour|day|week)s?",
)
_EN_COUNT = (
    r"(?:an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|"
    r"forty[- ]five|\d+|several|a few|a couple of|couple of|half an?)"
)
_EN_DAYS = "(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_NB_DAYS = "(?:mandag|tirsdag|tysdag|onsdag|torsdag|fredag|lørdag|laurdag|søndag|sundag)(?:en)?"
_SV_DAYS = "(?:måndag|tisdag|onsdag|torsdag|fredag|lördag|söndag)(?:en)?"
_DA_DAYS = "(?:mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag)(?:en)?"
_NB_COUNT = r"(?:en|ei|et|én|ein|eitt?|to|tre|fire|fem|seks|ti|\d+|noen|nokre|et par|eit par|få)"
_SV_COUNT = r"(?:en|ett|två|tre|fyra|fem|sex|tio|\d+|några|ett par|par|en halv|halvannan)"
_DA_COUNT = r"(?:en|et|én|to|tre|fire|fem|seks|ti|\d+|nogle|et par|få|en halv|halvanden)"
_NB_UNIT = (
    r"(?:minutt\w*|timer?|timen|timene|timar|timane|døgn\w*|dag(?:er|en|ene|ar|ane)?|uke\w*|uka|"
    r"veke\w*|veka)"
)
_SV_UNIT = r"(?:minut\w*|timm(?:e|ar|en|arna)|dag(?:ar|en|arna)?|dygn\w*|veck(?:a|or|an|orna))"
_DA_UNIT = r"(?:minut\w*|timer?|timen|timerne|døgn\w*|dag(?:e|en|ene)?|uge[nr]?|ugerne)"
_NB_PARTS = (
    r"(?:kvelden|kvelden i dag|dagen|natta|natten|morgendagen|ettermiddagen|formiddagen|"
    r"morgenen|morgonen|helga|helgen|kort tid|(?:de|dei) (?:neste|nærmeste|nærmaste|kommende|"
    r"komande) \w+)"
)
TIME = {
    "en": _words(
        *_ANY_TIME,
        rf"(?:in|within|under|inside)\s+(?:(?:the\s+)?(?:next|coming)\s+)?(?:{_EN_COUNT}\s+)?"
        r"(?:minutes?|hours?|days?|weeks?)",
        rf"(?:by|before|until|till|this|next) {_EN_DAYS}",
        r"(?:by|before|until|over|this|next) (?:the )?weekend",
        "next week",
        "later (?:today|tonight|this \\w+)",
        "(?:by|before|until) (?:midnight|noon|the end of \\w+)",
        "end of (?:the )?(?:week|weekend|month)",
    ),
    "nb": _words(
        *_ANY_TIME,
        rf"om\s+{_NB_COUNT}\s+{_NB_UNIT}",
        rf"(?:innen|innenfor|i løpet av)\s+(?:(?:de\s+)?(?:neste|nærmeste)\s+)?(?:{_NB_COUNT}\s+)?"
        rf"{_NB_UNIT}",
        rf"i løpet av {_NB_PARTS}",
        rf"(?:før|innen|til|fram til|frem til|neste|senest|seinast) {_NB_DAYS}",
        "(?:før|innen|til|i) helg(?:a|en)",
        "(?:neste|denne) (?:uke|uka|uken)",
        "i (?:natt|ettermiddag|formiddag)",
        "senere i dag",
    ),
    "nn": _words(
        *_ANY_TIME,
        rf"om\s+{_NB_COUNT}\s+{_NB_UNIT}",
        rf"(?:innan|i løpet av)\s+(?:(?:dei\s+)?(?:neste|nærmaste)\s+)?(?:{_NB_COUNT}\s+)?"
        rf"{_NB_UNIT}",
        rf"i løpet av {_NB_PARTS}",
        rf"(?:før|innan|til|fram til|neste|seinast) {_NB_DAYS}",
        "(?:før|innan|til|i) helga",
        "(?:neste|denne) veka?",
        "i (?:natt|ettermiddag|formiddag)",
        "seinare i dag",
    ),
    "sv": _words(
        *_ANY_TIME,
        rf"om\s+{_SV_COUNT}\s+{_SV_UNIT}",
        rf"(?:inom|i loppet av)\s+(?:(?:de\s+)?(?:närmaste|kommande)\s+)?(?:{_SV_COUNT}\s+)?"
        rf"{_SV_UNIT}",
        "under (?:kvällen|eftermiddagen|förmiddagen|morgondagen)",
        rf"(?:före|innan|till|tills|senast|nästa|på|fram till) {_SV_DAYS}",
        "(?:före|innan|till|i|under) helgen",
        "(?:nästa|denna|den här) vecka",
        "i (?:natt|eftermiddag|förmiddag)",
        "inatt",
        "senare (?:i dag|idag)",
    ),
    "da": _words(
        *_ANY_TIME,
        rf"om\s+{_DA_COUNT}\s+{_DA_UNIT}",
        rf"(?:inden for|inden|i løbet af)\s+(?:(?:de\s+)?(?:næste|kommende)\s+)?"
        rf"(?:{_DA_COUNT}\s+)?{_DA_UNIT}",
        "i løbet af (?:aftenen|natten|eftermiddagen|formiddagen|weekenden|morgendagen|kort tid)",
        rf"(?:før|inden|indtil|til|senest|næste|på) {_DA_DAYS}",
        "(?:før|inden|til|i|i løbet af|hen over) weekenden",
        "(?:næste|denne) uge",
        "i (?:nat|eftermiddag|formiddag)",
        "senere i dag",
    ),
}
#: Outcomes the statement may not promise ("will be fixed", "er løst"), unless it only says what
#: happens once they come about ("until it is fixed", "til det er løst"): see
#: :data:`CONDITIONAL`.
OUTCOME = {
    "en": _words(
        "will be (?:working(?: again)?|fixed|resolved|solved|restored|sorted(?: out)?|back to "
        "normal|up and running|running again|fine|ok|okay|over)",
        "will (?:work|run) (?:again|normally)",
        "(?:is|are|has been|have been|\\w+['\u2019](?:s|re))(?: now)? (?:fixed|resolved|solved|"
        "sorted|restored|working again|back to normal|up and running)",
        "(?:we(?: will|['\u2019]ll)|we are going to) (?:fix|resolve|solve|sort|restore)",
        "back to normal",
    ),
    "nb": _words(
        "(?:er|blir|vil være|skal være|vil bli|skal bli)(?: nå| snart| helt)? (?:fikset|løst|"
        "rettet|ordnet|reparert|gjenopprettet|i orden(?: igjen)?|oppe igjen|som normalt)",
        "(?:fungerer|virker|vil fungere|skal fungere|vil virke) (?:igjen|som normalt)",
        "i orden igjen",
    ),
    "nn": _words(
        "(?:er|blir|vert|vil vere|skal vere|vil bli|skal bli)(?: no| snart| heilt)? (?:fiksa|"
        "løyst|retta|ordna|reparert|i orden(?: att| igjen)?|oppe att|oppe igjen|som normalt)",
        "(?:fungerer|verkar|vil fungere|skal fungere) (?:att|igjen|som normalt)",
        "i orden att",
    ),
    "sv": _words(
        "(?:är|blir|har|kommer att vara|kommer att bli|ska vara|ska bli)(?: nu| snart| helt)? "
        "(?:åtgärdat|åtgärdad|åtgärdade|åtgärdats|löst|lösts|lösta|fixat|fixats|fixad|lagat|"
        "lagats|rättat|rättats|återställt|återställd|återställts|i ordning|igång igen)",
        "(?:fungerar|kommer att fungera|ska fungera) (?:igen|som vanligt)",
    ),
    "da": _words(
        "(?:er|bliver|vil være|skal være|vil blive|er blevet)(?: nu| snart| helt)? (?:fikset|"
        "løst|rettet|ordnet|repareret|udbedret|genoprettet|i orden(?: igen)?|oppe igen)",
        "(?:fungerer|virker|vil fungere|vil virke) (?:igen|normalt)",
        "i orden igen",
    ),
}
#: Words that make an outcome a condition, not a promise: "we will update you until it is fixed".
CONDITIONAL = {
    "en": _words("until", "till", "when", "once", "as soon as", "if", "whether", "after"),
    "nb": _words("til", "inntil", "når", "så snart", "før", "om", "hvis", "dersom", "etter at"),
    "nn": _words("til", "inntil", "når", "så snart", "før", "om", "viss", "dersom", "etter at"),
    "sv": _words("tills", "till dess", "när", "så snart", "innan", "om", "ifall", "efter att"),
    "da": _words("til", "indtil", "når", "så snart", "før", "hvis", "om", "efter at"),
}


def _promised_outcome(masked: str, lang: str) -> str | None:
    """The first outcome ``masked`` promises, skipping those its clause only makes a condition."""
    for hit in OUTCOME[lang].finditer(masked):
        clause = re.split(r"[.!?;:,\u2026]", masked[: hit.start()])[-1]
        lead = " ".join(re.findall(r"\w+", clause)[-3:])
        if not CONDITIONAL[lang].search(lead):
            return hit.group(0)
    return None


_HANDLE = re.compile(r"(?<![\w.])@\w+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_QUOTES = re.compile('["\u201c\u201d\u201e\u00ab\u00bb\u2018\u201a\u2039\u203a]')
_MARKUP = re.compile(r"[<>&`*_\[\]{}|\\~]")


def _mask(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` (slot values, the brand's name) blanked out where it
    stands as a whole word, so a brand called "So" does not hide the "soon" of a promise."""
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        before = r"(?<!\w)" if re.match(r"\w", value) else ""
        after = r"(?!\w)" if re.match(r"\w", value[-1]) else ""
        text = re.sub(before + re.escape(value) + after, " \u2026 ", text)
    return text


def _normalised_words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _quotes_a_post(text: str, posts: Iterable[str], run: int = 5) -> bool:
    """True if ``text`` repeats ``run`` consecutive words of any post."""
    words = _normalised_words(text)
    grams = {tuple(words[i : i + run]) for i in range(len(words) - run + 1)}
    for post in posts:
        post_words = _normalised_words(post)
        for i in range(len(post_words) - run + 1):
            if tuple(post_words[i : i + run]) in grams:
                return True
    return False


def _evidence_names(evidence: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    posts = list(evidence.get("top_posts_by_reach", [])) + list(
        evidence.get("top_posts_by_engagement", [])
    )
    for item in posts + list(evidence.get("top_authors", [])):
        for key in ("author", "handle", "name"):
            value = item.get(key) if isinstance(item, dict) else None
            if isinstance(value, str) and len(value.strip("@")) >= 3:
                names.add(value.strip("@").lower())
    return names


def _wording(masked: str, lang: str, voice: BrandVoice) -> list[Violation]:
    """Speculation, blame, promises and times in ``masked`` (slot values already masked)."""
    out: list[Violation] = []
    for rule, table, what in (
        ("speculation", SPECULATION, "speculates about causes"),
        ("blame", BLAME, "assigns blame"),
    ):
        hit = table[lang].search(masked)
        if hit:
            out.append(Violation(rule, f"{what}: {hit.group(0)!r}"))
    allowed = tuple(p.lower()[:6] for p in voice.may_promise if p)
    for hit in PROMISE[lang].finditer(masked):
        if not hit.group(0).lower().startswith(allowed or ("\0",)):
            message = f"promises what the brand has not configured: {hit.group(0)!r}"
            out.append(Violation("promise", message))
            break
    outcome = _promised_outcome(masked, lang)
    if outcome:
        out.append(Violation("promise", f"promises an outcome: {outcome!r}"))
    hit = TIME[lang].search(masked)
    if hit:
        message = f"commits to a time other than the next update: {hit.group(0)!r}"
        out.append(Violation("promise", message))
    return out


def _invisible(text: str) -> bool:
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Co", "Cs"} for ch in text)


def lint_contact(contact: str, lang: str, voice: BrandVoice) -> list[Violation]:
    """Every rule a configured contact phrase breaks on its own, read as ``lang``.

    A URL passes: the drafts wrap it in their own wording. A phrase becomes part of every
    ``lang`` draft, so it is held to the rules of the draft text.
    """
    if is_contact_url(contact):
        return []
    if lang not in DRAFT_LABEL:
        return [Violation("language", f"no rules for language {lang!r}")]
    masked = _mask(contact, [voice.name])
    out = _wording(masked, lang, voice)
    if has_profanity(contact):
        out.append(Violation("tone", "contains profanity"))
    if _HANDLE.search(contact):
        out.append(Violation("names", "names an account (@handle)"))
    if _QUOTES.search(contact):
        out.append(Violation("quotes", "contains quotation marks"))
    if _URL.search(contact):
        out.append(Violation("links", "a link inside a phrase: give the URL alone as contact"))
    if _invisible(contact) or _MARKUP.search(masked):
        out.append(Violation("unescaped", "characters that read as markup (<>&`*_[]{}|\\~)"))
    return out


def lint_statement(
    statement: Statement, voice: BrandVoice, evidence: dict[str, Any] | None = None
) -> list[Violation]:
    """Every rule the draft breaks (empty: it may be shown to a person for approval).

    ``evidence`` is the episode's drivers: the statement must not repeat its authors' names or
    five consecutive words of its posts.
    """
    evidence = evidence or {}
    out: list[Violation] = []
    lang, text = statement.lang, statement.text

    def fail(rule: str, message: str) -> None:
        out.append(Violation(rule, message))

    if not statement.draft or statement.label != DRAFT_LABEL.get(lang):
        fail("draft-label", "a statement must be labelled as a draft for a person to approve")
    if lang not in DRAFT_LABEL:
        fail("language", f"no rules for language {lang!r}")
        return out
    if not text.strip():
        fail("empty", "the statement is empty")
        return out
    limit = MAX_LENGTH.get(statement.severity, 280)
    if len(text) > limit:
        fail("length", f"{len(text)} characters, at most {limit} at {statement.severity}")
    if _invisible(text):
        fail("unescaped", "control or invisible characters")

    issue_ok = statement.issue == GENERIC_ISSUE.get(lang) or (
        plain_phrase(statement.issue, set()) is not None
    )
    if not issue_ok:
        fail("issue", f"the issue must be plain words, got {statement.issue!r}")
    if statement.issue and statement.issue not in text:
        fail("issue", "the statement does not name the issue")

    configured = voice.contact_for(lang)
    contact_url = configured if configured and is_contact_url(configured) else None
    # A contact phrase is the brand's own wording: checked here like the rest of the text.
    masked = _mask(text, [statement.issue, statement.next_update, contact_url or "", voice.name])
    out.extend(_wording(masked, lang, voice))
    if has_profanity(text):
        fail("tone", "contains profanity")
    if _HANDLE.search(text):
        fail("names", "names an account (@handle)")
    lowered = f" {text.lower()} "
    for name in sorted(_evidence_names(evidence)):
        if re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", lowered):
            fail("names", "names a person seen in the evidence")
            break
    if _QUOTES.search(text):
        fail("quotes", "contains quotation marks: statements never quote posts")
    posts = [
        str(p.get("text") or "")
        for p in list(evidence.get("top_posts_by_reach", []))
        + list(evidence.get("top_posts_by_engagement", []))
        if isinstance(p, dict)
    ]
    if _quotes_a_post(text, posts):
        fail("quotes", "repeats the words of a post")
    for url in _URL.findall(text):
        if url.rstrip(".,;:!?") != contact_url:
            fail("links", f"links somewhere the brand did not configure: {url!r}")
            break
    if _MARKUP.search(_mask(text, [contact_url or "", voice.name])):
        fail("unescaped", "characters that read as markup (<>&`*_[]{}|\\~)")
    if statement.contact not in text:
        fail("contact", "does not invite affected people to a private channel")
    if statement.severity != "watch" and statement.next_update not in text:
        fail("next-update", "does not say when the next update comes")
    return out
