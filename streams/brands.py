"""The brands file: which brands Stormvarsel watches and how each one speaks.

A YAML document with a top-level ``brands`` list. Brand ids are the only brand values ever used as
metric labels, which keeps label cardinality bounded by configuration.
"""

from __future__ import annotations

import re
import string
import unicodedata
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detectors.alerting.statements import is_contact_url
from detectors.alerting.voice import PLACEHOLDERS, BrandVoice
from detectors.alerting.voice_check import lint_voice
from detectors.timeslots import load_zone
from streams.errors import ConfigError

Language = Literal["nb", "nn", "sv", "da", "en"]
Tone = Literal["formal", "warm", "playful", "neutral"]
Severity = Literal["watch", "warning", "critical"]

_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_CONTACT_MAX = 200


class BrandsFileError(ConfigError):
    """The brands file is missing or invalid; the message is one line naming file and key."""


def slugify(name: str) -> str:
    """ASCII slug for a brand name: 'Fjellbrød AS' -> 'fjellbrod-as'."""
    folded = name.replace("ø", "o").replace("Ø", "O").replace("æ", "ae").replace("Æ", "AE")
    ascii_name = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63]


class OnCall(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str = Field(
        min_length=1, description="On-call team: the `team` label of its storm alerts, to route on."
    )
    escalation: str | None = Field(None, description="Who to escalate to when nobody answers.")


class Statements(BaseModel):
    """What the brand's holding-statement drafts may say (see docs/alerts.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    next_update_minutes: int = Field(
        60, ge=5, le=24 * 60, description="When the next public update comes, in minutes."
    )
    contact: str | dict[str, str] | None = Field(
        None,
        description="Private channel: a URL, a short phrase (a brand with one language), or "
        "a URL or phrase per language; default: a direct message.",
    )
    may_promise: tuple[str, ...] = Field(
        (), description="Words the brand has decided it may promise, e.g. refund."
    )
    templates: dict[Language, dict[Severity, str]] = Field(
        default_factory=dict,
        description="Overrides per language and severity, with {issue}, {next_update}, "
        "{contact} and {brand}.",
    )

    @field_validator("contact", mode="before")
    @classmethod
    def _contact_shape(cls, value: Any) -> Any:
        if value is None:
            return None
        per_language = isinstance(value, dict)
        for lang, text in value.items() if per_language else [("", value)]:
            where = f"{lang}: " if per_language else ""
            if per_language and lang not in get_args(Language):
                raise ValueError(f"{lang}: expected one of {', '.join(get_args(Language))}")
            if not isinstance(text, str) or (per_language and not text.strip()):
                raise ValueError(
                    f"{where}expected a URL or a phrase"
                    + ("" if per_language else ", or one per language ({nb: ..., en: ...})")
                )
            if len(text) > _CONTACT_MAX:
                raise ValueError(f"{where}expected at most {_CONTACT_MAX} characters")
        return value

    @field_validator("templates")
    @classmethod
    def _placeholders(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for lang, by_severity in value.items():
            for severity, template in by_severity.items():
                for _, name, _, _ in string.Formatter().parse(template):
                    if name is not None and name not in PLACEHOLDERS:
                        raise ValueError(
                            f"{lang}.{severity}: unknown placeholder {{{name}}} (expected "
                            + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                            + ")"
                        )
        return value


class Brand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=120)
    id: str = Field("", pattern=r"^$|" + _ID_PATTERN)
    aliases: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    languages: tuple[Language, ...] = ("en",)
    tone: Tone = "neutral"
    #: IANA zone of the brand's audience, for its daily rhythm (default: the detectors').
    timezone: str | None = None
    oncall: OnCall
    statements: Statements = Statements()

    @field_validator("handles")
    @classmethod
    def _handles(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v if v.startswith("@") else f"@{v}" for v in (s.strip() for s in values) if v)

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v if v.startswith("#") else f"#{v}" for v in (s.strip() for s in values) if v)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            load_zone(value)  # TimeZoneError is a ValueError: reported with the key
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError("expected at least one of nb, nn, sv, da, en")
        return values

    @model_validator(mode="after")
    def _derive_id(self) -> Brand:
        if not self.id:
            slug = slugify(self.name)
            if not slug:
                raise ValueError("id: expected a brand id (the name has no letters to derive one)")
            object.__setattr__(self, "id", slug)
        return self

    @model_validator(mode="after")
    def _contact_languages(self) -> Brand:
        contact, langs = self.statements.contact, list(dict.fromkeys(self.languages))
        per_language = "{" + ", ".join(f"{lang}: ..." for lang in langs) + "}"
        if isinstance(contact, str) and not is_contact_url(contact) and len(langs) > 1:
            raise ValueError(
                "statements.contact: a phrase would appear unchanged in the drafts of every "
                f"language ({', '.join(langs)}); give a URL or one phrase per language, "
                f"e.g. contact: {per_language}"
            )
        if isinstance(contact, dict):
            missing = [lang for lang in langs if lang not in contact]
            if missing:
                raise ValueError(
                    f"statements.contact: expected an entry for every language of the brand "
                    f"({per_language}), missing {', '.join(missing)}"
                )
            extra = [lang for lang in contact if lang not in langs]
            if extra:
                raise ValueError(
                    f"statements.contact.{extra[0]}: not one of the brand's languages "
                    f"({', '.join(langs)})"
                )
        return self

    @model_validator(mode="after")
    def _lint_statements(self) -> Brand:
        problem = lint_voice(self.voice())
        if problem:
            raise ValueError(f"{problem} (brand {self.name!r})")
        return self

    def voice(self, default_timezone: str = "") -> BrandVoice:
        """What the holding-statement drafts of this brand depend on; times are shown in its
        ``timezone``, else in ``default_timezone`` (the detectors' zone, which its rhythm uses
        too)."""
        return BrandVoice(
            brand_id=self.id,
            name=self.name,
            languages=self.languages,
            tone=self.tone,
            next_update_minutes=self.statements.next_update_minutes,
            contact=(
                dict(self.statements.contact)
                if isinstance(self.statements.contact, dict)
                else self.statements.contact
            ),
            may_promise=self.statements.may_promise,
            templates={
                lang: {str(sev): text for sev, text in by_severity.items()}
                for lang, by_severity in self.statements.templates.items()
            },
            team=self.oncall.team,
            escalation=self.oncall.escalation,
            aliases=(*self.aliases, *self.handles, *self.hashtags),
            timezone=self.timezone or default_timezone,
        )


class BrandsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    brands: tuple[Brand, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> BrandsFile:
        seen: set[str] = set()
        for brand in self.brands:
            if brand.id in seen:
                raise ValueError(f"id: expected unique brand ids, {brand.id!r} appears twice")
            seen.add(brand.id)
        return self

    @model_validator(mode="after")
    def _names_name_one_brand(self) -> BrandsFile:
        """Refuse a name, alias or id that two brands share once folded as the matcher folds
        them (case, accents, spaces): it looks one up for the first brand only, so a mention
        naming the second went to the first."""
        from streams.brand_matching import lookup_form  # it imports this module

        seen: dict[str, tuple[str, str, str]] = {}  # folded -> (what, spelling, brand id)
        for brand in self.brands:
            keys = [("name", brand.name), *(("alias", a) for a in brand.aliases), ("id", brand.id)]
            for what, spelling in keys:
                folded = lookup_form(spelling)
                first = seen.setdefault(folded, (what, spelling, brand.id))
                if folded and first[2] != brand.id:
                    key = "aliases" if what == "alias" else what
                    raise ValueError(
                        f"{key}: the {what} {spelling!r} of brand {brand.id!r} is the {first[0]} "
                        f"{first[1]!r} of brand {first[2]!r} once case, accents and spaces are "
                        "ignored, so mentions naming it would all go to one of them; keep it in "
                        "one brand"
                    )
        return self

    def by_id(self, brand_id: str) -> Brand | None:
        return next((b for b in self.brands if b.id == brand_id), None)

    def voices(self, default_timezone: str = "") -> dict[str, BrandVoice]:
        return {brand.id: brand.voice(default_timezone) for brand in self.brands}

    def timezones(self) -> dict[str, str]:
        """Brand id -> IANA zone, for the brands that name one."""
        return {brand.id: brand.timezone for brand in self.brands if brand.timezone}


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed validation
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _one_line(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = _location(tuple(err.get("loc", ())))
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    kind = err.get("type", "")
    if kind == "literal_error":
        msg = f"expected one of {(err.get('ctx') or {}).get('expected', '?')}"
    elif kind == "missing":
        msg = "expected a value (the key is required)"
    elif kind == "extra_forbidden":
        msg = "unknown key (check its spelling)"
    elif kind == "string_pattern_mismatch" and where.endswith("id"):
        msg = "expected lower-case letters, digits, '-' or '_' (at most 63)"
    given = err.get("input")
    if kind not in {"missing", "extra_forbidden"} and isinstance(given, str | int | float):
        msg = f"{msg}, got {given!r}"
    if where and ":" in msg.split(",")[0] and not msg.startswith("expected"):
        # A model validator's message already names the key: "id: expected ...".
        key, _, rest = msg.partition(": ")
        return f"{where}.{key}: {rest}"
    if not where:
        key, _, rest = msg.partition(": ")
        return f"brands.{key}: {rest}" if rest else msg
    return f"{where}: {msg}"


def parse_brands(data: Any, *, source: str = "<brands>") -> BrandsFile:
    if data is None:
        return BrandsFile()
    if not isinstance(data, dict):
        raise BrandsFileError(f"{source}: expected a mapping with a 'brands' list at the top level")
    try:
        return BrandsFile.model_validate(data)
    except ValidationError as exc:
        raise BrandsFileError(f"{source}: {_one_line(exc)}") from None


#: Deeper nesting is refused: PyYAML's composer recurses once per level, and a file of a few
#: hundred ``[`` ended in a RecursionError. A brands file nests about six levels.
_MAX_DEPTH = 100


class _BrandsLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also refuses what it let through silently or as a traceback: a
    key given twice in one mapping (the last one won, so a second ``brands:`` dropped every brand
    and a second ``aliases:`` the aliases), and nesting deeper than ``_MAX_DEPTH``."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {_MAX_DEPTH} levels deep", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *base`` then ``key:`` overrides a merged key, as YAML means
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: the base class refuses it
            if earlier is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping "
                    f"(first at line {earlier.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def load_brands(path: Path) -> BrandsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BrandsFileError(f"{path}: file not found (set STORMVARSEL_BRANDS_FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BrandsFileError(f"{path}: cannot read the file ({exc})") from None
    try:
        data = yaml.load(text, Loader=_BrandsLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise BrandsFileError(f"{path}: invalid YAML{where}: {problem}") from None
    return parse_brands(data, source=str(path))
