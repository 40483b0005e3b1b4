"""The ingest options: field mapping (``--map``, ``--set``), time conversion, input format."""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from streams.ingest.errors import OptionError
from streams.mention import Mention

Format = Literal["jsonl", "csv"]
KeyBy = Literal["id", "brand"]
FORMATS_BY_SUFFIX: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}


_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


# --- the schema's fields, as mapping targets ---
def _schema_fields() -> dict[str, Any]:
    """Every mention field and sub-field (``author.handle``) with its type annotation."""
    fields: dict[str, Any] = {}
    for name, info in Mention.model_fields.items():
        fields[name] = info.annotation
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            for sub, sub_info in nested.model_fields.items():
                fields[f"{name}.{sub}"] = sub_info.annotation
    return fields


SCHEMA_FIELDS: dict[str, Any] = _schema_fields()
INT_FIELDS = frozenset(name for name, kind in SCHEMA_FIELDS.items() if kind is int)
BOOL_FIELDS = frozenset(name for name, kind in SCHEMA_FIELDS.items() if kind is bool)


def typed_text(field_name: str, text: str) -> Any:
    """A text value (a CSV cell, a ``--set`` value) as the type the schema expects, when it fits.

    Digit strings become ints for the count fields and true/false become booleans; anything else
    (a digit string too long for Python to convert, too) stays text, so the validator reports it
    with its usual reason instead of this code guessing.
    """
    stripped = text.strip()
    if field_name in INT_FIELDS and stripped.isascii() and stripped.isdigit():
        try:
            return int(stripped)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits())
            return text
    if field_name in BOOL_FIELDS and stripped.lower() in _TRUE | _FALSE:
        return stripped.lower() in _TRUE
    return text


# --- options ---
@dataclass(frozen=True)
class Transform:
    """How one input record becomes a mention object."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # schema field -> column or key
    constants: Mapping[str, Any] = field(default_factory=dict)  # schema field -> value (--set)
    time_format: str | None = None
    timezone: ZoneInfo | None = None  # given explicitly; naive times get it (UTC with a format)


def _split_assignment(option: str, spec: str, right: str) -> tuple[str, str]:
    target, sep, value = spec.partition("=")
    target = target.strip()
    if not sep or not target or not value.strip():
        raise OptionError(option, f"expected FIELD={right}, got {spec!r}")
    if target not in SCHEMA_FIELDS:
        raise OptionError(
            option,
            f"{target!r} is not a mention field; expected one of {', '.join(SCHEMA_FIELDS)}",
        )
    return target, value


def parse_maps(specs: Sequence[str]) -> dict[str, str]:
    """``--map FIELD=COLUMN`` options as {field: column}."""
    mapping: dict[str, str] = {}
    for spec in specs:
        target, source = _split_assignment("--map", spec, "COLUMN")
        if target in mapping:
            raise OptionError("--map", f"{target!r} is mapped twice")
        mapping[target] = source.strip()
    return mapping


def parse_sets(specs: Sequence[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` options as {field: typed value}."""
    constants: dict[str, Any] = {}
    for spec in specs:
        target, value = _split_assignment("--set", spec, "VALUE")
        if target in constants:
            raise OptionError("--set", f"{target!r} is set twice")
        constants[target] = typed_text(target, value)
    return constants


def parse_time_format(fmt: str) -> str:
    """Check a ``--time-format`` once, so a typo fails at start-up rather than on every record."""
    if "%" not in fmt:
        raise OptionError(
            "--time-format", f"expected strptime directives (e.g. %m/%d/%Y %H:%M), got {fmt!r}"
        )
    if not any(code in fmt for code in ("%Y", "%y", "%G")):
        raise OptionError(
            "--time-format", f"{fmt!r} has no year (%Y or %y); every mention would be in 1900"
        )
    sample = datetime(2015, 2, 24, 11, 35, 52, tzinfo=UTC)
    try:
        datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise OptionError(
            "--time-format", f"{fmt!r} is not a usable strptime format ({exc})"
        ) from None
    return fmt


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise OptionError(
            "--timezone", f"{name!r} is not an IANA time zone (e.g. UTC, Europe/Oslo)"
        ) from None


UTF8 = "utf-8"


def parse_encoding(name: str) -> str:
    """An ``--encoding`` as Python's name for the codec (``cp1252``, ``iso8859-1``); a name
    Python does not know, or a codec that does not turn bytes into text (``base64``), is refused
    here, before anything is read."""
    try:
        info = codecs.lookup(name.strip())
    except (LookupError, ValueError):
        raise OptionError(
            "--encoding",
            f"{name!r} is not a text encoding Python knows (e.g. utf-8, cp1252, latin-1)",
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise OptionError("--encoding", f"{name!r} is not a text encoding (bytes to text)")
    return info.name


def build_transform(
    maps: Sequence[str] = (),
    sets: Sequence[str] = (),
    time_format: str | None = None,
    timezone: str | None = None,
) -> Transform:
    mapping = parse_maps(maps)
    constants = parse_sets(sets)
    both = sorted(set(mapping) & set(constants))
    if both:
        raise OptionError("--set", f"{both[0]!r} is given by both --map and --set")
    return Transform(
        mapping=mapping,
        constants=constants,
        time_format=parse_time_format(time_format) if time_format is not None else None,
        timezone=parse_timezone(timezone) if timezone is not None else None,
    )


def detect_format(source: Path | None, given: str) -> Format:
    """The input format: as given, or from the file's extension (stdin: JSON Lines)."""
    if given == "jsonl":
        return "jsonl"
    if given == "csv":
        return "csv"
    if given != "auto":
        raise OptionError("--format", f"expected auto, jsonl or csv, got {given!r}")
    if source is None:
        return "jsonl"
    found = FORMATS_BY_SUFFIX.get(source.suffix.lower())
    if found is None:
        raise OptionError(
            "--format",
            f"cannot tell the format of {source.name!r} from its extension; "
            "pass --format jsonl or --format csv",
        )
    return found


@dataclass(frozen=True)
class IngestOptions:
    source: Path | None  # None: standard input
    format: Format
    transform: Transform
    topic: str | None = None  # None: the settings' mentions topic
    rate: float | None = None
    speedup: float | None = None
    sort: bool = False
    limit: int | None = None
    rejects: Path | None = None
    wait_for_kafka_s: float = 10.0
    #: The Kafka key: "id" spreads a brand's mentions over the partitions, "brand" keeps them
    #: in order on one (see :class:`streams.ingest.mapping.Preparer`); None: brand with --sort.
    key: KeyBy | None = None
    #: The input's encoding when no byte-order mark names one (Python's codec name).
    encoding: str = UTF8
    #: ``--allow-rejects``: with UTF-8 input, bytes that are not UTF-8 reject their rows (as
    #: ``not_utf8``) instead of stopping the run before anything is sent.
    allow_rejects: bool = False

    @property
    def key_by(self) -> KeyBy:
        if self.key is not None:
            return self.key
        return "brand" if self.sort else "id"

    def __post_init__(self) -> None:
        if self.rate is not None and self.speedup is not None:
            raise OptionError("--rate", "--rate and --speedup cannot be used together")
        if _same_file(self.rejects, self.source):
            raise OptionError("--rejects", "is the input file; it would be overwritten")

    @property
    def source_label(self) -> str:
        return "standard input" if self.source is None else str(self.source)


def _same_file(first: Path | None, second: Path | None) -> bool:
    return first is not None and second is not None and first.resolve() == second.resolve()
