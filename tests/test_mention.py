from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest

from streams.mention import Limits, Mention, Rejection, json_schema, validate_record
from tests.conftest import REPO

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def check(obj: object, **kwargs: object) -> Mention | Rejection:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return validate_record(raw, now=NOW, **kwargs)  # type: ignore[arg-type]


def base(**extra: object) -> dict[str, object]:
    return {"id": "p1", "text": "Hei Nordlys", "created_at": "2026-11-24T10:15:00+01:00", **extra}


@pytest.mark.parametrize(
    ("created_at", "iso"),
    [
        ("2026-11-24T10:15:00+01:00", "2026-11-24T09:15:00Z"),
        ("2026-11-24T09:15:00Z", "2026-11-24T09:15:00Z"),
        ("2026-11-24T09:15:00.250Z", "2026-11-24T09:15:00.250000Z"),
        ("2026-11-24 10:15:00+01:00", "2026-11-24T09:15:00Z"),
        ("2026-11-24+01:00", "2026-11-23T23:00:00Z"),  # a date with an offset: its midnight
        (1795511700, "2026-11-24T09:15:00Z"),
        (1795511700000, "2026-11-24T09:15:00Z"),
        ("1795511700", "2026-11-24T09:15:00Z"),
        (1795511700.5, "2026-11-24T09:15:00.500000Z"),
    ],
)
def test_event_time_forms_normalise_to_utc(created_at: object, iso: str) -> None:
    mention = check(base(created_at=created_at))
    assert isinstance(mention, Mention), mention
    record = mention.to_record()
    assert record["created_at"] == iso
    assert record["created_at_ms"] == int(datetime.fromisoformat(iso).timestamp() * 1000)


def test_full_mention_keeps_unknown_fields_and_normalises() -> None:
    mention = check(
        base(
            id=570306133677760513,
            platform="Twitter",
            lang="NB",
            author={"id": 42, "handle": "@kari", "followers": 1200.0, "verified": True},
            url="https://x.com/kari/status/1",
            engagement={"likes": 3, "shares": 1, "replies": 0},
            in_reply_to=123,
            is_brand_reply=False,
            campaign={"source": "listening-tool", "score": 0.3},
        )
    )
    assert isinstance(mention, Mention)
    record = mention.to_record()
    assert record["id"] == "570306133677760513"
    assert record["platform"] == "x"
    assert record["lang"] == "nb"
    assert record["author"] == {"id": "42", "handle": "@kari", "followers": 1200, "verified": True}
    assert record["in_reply_to"] == "123"
    assert record["campaign"] == {"source": "listening-tool", "score": 0.3}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\xff\xfe{}", "not_utf8"),
        (b'{"id": "1", "text": "x"', "invalid_json"),
        (b'{"id": "1", "text": "x", "created_at": NaN}', "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        (b'"just text"', "bad_type:mention"),
        ({"text": "x", "created_at": 1795511700}, "missing_field:id"),
        ({"id": "1", "created_at": 1795511700}, "missing_field:text"),
        ({"id": "1", "text": "x"}, "missing_field:created_at"),
        (base(text=17), "bad_type:text"),
        (base(text="   "), "bad_value:text"),
        (base(id=["a"]), "bad_type:id"),
        (base(id=True), "bad_type:id"),
        (base(created_at="yesterday"), "bad_value:created_at"),
        (base(created_at="2026-11-24T10:15:00"), "bad_value:created_at"),
        (base(created_at=True), "bad_type:created_at"),
        (base(created_at="1999-12-31T23:59:59Z"), "timestamp_out_of_range"),
        (base(created_at="2026-11-24T15:00:00Z"), "timestamp_out_of_range"),
        (base(created_at=1e30), "timestamp_out_of_range"),
        # an integer of hundreds of digits raised OverflowError out of the validator
        (b'{"id": "1", "text": "x", "created_at": ' + b"9" * 400 + b"}", "timestamp_out_of_range"),
        (base(created_at=-(10**400)), "timestamp_out_of_range"),
        # year 1 moved past the calendar by its offset raised OverflowError out of it too
        (base(created_at="0001-01-01T00:00:00+01:00"), "timestamp_out_of_range"),
        (base(created_at="9999-12-31T23:59:59-01:00"), "timestamp_out_of_range"),
        (base(created_at="2026-11-24x10:15:00+01:00"), "bad_value:created_at"),
        (base(platform="myspace"), "bad_value:platform"),
        (base(platform=5), "bad_type:platform"),
        (base(lang="Norwegian!"), "bad_value:lang"),
        (base(lang="zh-Hant-TW-"), "bad_value:lang"),
        (base(lang="en-" + "-".join(["abc"] * 10)), "bad_value:lang"),
        (base(author="kari"), "bad_type:author"),
        (base(author={"followers": -5}), "bad_value:author.followers"),
        (base(author={"followers": "many"}), "bad_type:author.followers"),
        (base(engagement={"likes": 1.5}), "bad_type:engagement.likes"),
        (base(url="javascript:alert(1)"), "bad_value:url"),
        (base(is_brand_reply="perhaps"), "bad_type:is_brand_reply"),
        (base(text="x" * 70_000), "too_large"),
        (base(extra=json.loads("[" * 40 + "]" * 40)), "too_deep"),
        # lone surrogates where the model does not look: valid, then unencodable downstream
        (json.dumps(base(collector={"title": "hei \ud83d"})).encode(), "not_utf8"),
        (json.dumps(base(extra=["ok", {"\udc80": 1}])).encode(), "not_utf8"),
        # in the fields the model reads too (a collector cut an emoji's surrogate pair in two):
        # it said bad_value:text, "unable to parse raw data as a unicode string"
        (json.dumps(base(text="Nordlys Energi \ud83d")).encode(), "not_utf8"),
        (json.dumps(base(id="\udc80")).encode(), "not_utf8"),
        (json.dumps(base(author={"handle": "@kari\ud83d"})).encode(), "not_utf8"),
    ],
)
def test_each_defect_has_its_reason(raw: object, reason: str) -> None:
    result = check(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    assert result.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("author.followers", True),
        ("author.followers", False),
        ("author.followers", "1840"),
        ("author.followers", "1_000"),
        ("engagement.likes", " 12 "),
        ("engagement.shares", True),
        ("engagement.replies", "3"),
    ],
)
def test_counts_are_integers_not_booleans_or_text(field: str, value: object) -> None:
    """Pydantic's lax mode read true as 1 and "1_000" as 1000, though the schema says integer."""
    parent, name = field.split(".")
    result = check(base(**{parent: {name: value}}))
    assert isinstance(result, Rejection), result
    assert result.reason == f"bad_type:{field}"
    assert result.message.startswith(f"{field}: expected an integer, not ")


def test_an_integral_float_count_is_an_integer() -> None:
    mention = check(base(author={"followers": 1e3}, engagement={"likes": 4.0}))
    assert isinstance(mention, Mention), mention
    assert (mention.author.followers, mention.engagement.likes) == (1000, 4)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("author.followers", 10**400),
        ("author.followers", 2**53 + 1),
        ("engagement.likes", 10**30),
        ("engagement.shares", 1e300),
    ],
)
def test_counts_beyond_a_double_are_refused(field: str, value: int | float) -> None:
    """A follower count of 10**400 was accepted, then crashed the detect stage (OverflowError
    in its reach arithmetic): the mention was counted as accepted and landed nowhere."""
    parent, name = field.split(".")
    result = check(base(**{parent: {name: value}}))
    assert isinstance(result, Rejection), result
    assert result.reason == f"bad_value:{field}"
    largest = check(base(**{parent: {name: 2**53}}))
    assert isinstance(largest, Mention), largest


@pytest.mark.parametrize("value", ["true", "yes", "on", "1", 1, 1.0, "off", 0, None])
def test_is_brand_reply_is_true_or_false_only(value: object) -> None:
    """Lax mode read "yes", "on", 1 and 1.0 as true: a customer's post left volume, sentiment
    and reach without a word."""
    result = check(base(is_brand_reply=value))
    assert isinstance(result, Rejection), result
    assert result.reason == "bad_type:is_brand_reply"
    for flag in (True, False):
        mention = check(base(is_brand_reply=flag))
        assert isinstance(mention, Mention) and mention.is_brand_reply is flag


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":"p1","text":"Hei","created_at":"2026-11-24T10:15:00Z","x":1e400}',
        b'{"id":"p1","text":"Hei","created_at":"2026-11-24T10:15:00Z","author":{"y":[-1e999]}}',
    ],
)
def test_a_number_beyond_a_double_anywhere_is_invalid_json(raw: bytes) -> None:
    """Unknown fields are passed on untouched; an infinity would have been passed on as null."""
    result = check(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == "invalid_json"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("zh-Hant-TW", "zh-hant-tw"),
        ("sr_Latn_RS", "sr-latn-rs"),
        ("en-US-x-twain", "en-us-x-twain"),
    ],
)
def test_language_tags_with_several_subtags(given: str, kept: str) -> None:
    mention = check(base(lang=given))
    assert isinstance(mention, Mention), mention
    assert mention.lang == kept  # scoring reads the primary language (zh, sr, en) from it


@pytest.mark.parametrize("brand", ["", "   ", "\t"])
def test_a_blank_brand_is_no_brand(brand: str) -> None:
    mention = check(base(brand=brand))
    assert isinstance(mention, Mention), mention
    assert mention.brand is None  # matched from the text, not refused as unknown_brand


def test_reasons_never_carry_input_text() -> None:
    # Unknown nested keys with odd values must not turn into a reason label.
    result = check(base(author={"followers": {"évil key": 1}}))
    assert isinstance(result, Rejection)
    assert result.reason == "bad_type:author.followers"


def test_limits_are_configurable() -> None:
    assert isinstance(check(base(), limits=Limits(max_bytes=40)), Rejection)
    future = base(created_at="2026-11-24T13:30:00Z")
    assert isinstance(check(future), Rejection)
    assert isinstance(check(future, limits=Limits(max_future_skew_s=7200)), Mention)


def test_a_record_of_exactly_max_bytes_is_accepted_and_one_byte_more_is_too_large() -> None:
    """``max_bytes`` is the largest record taken: a record of exactly that many bytes is
    validated, one byte longer is refused as ``too_large`` naming both sizes."""
    raw = json.dumps(base()).encode()
    assert isinstance(check(raw, limits=Limits(max_bytes=len(raw))), Mention)
    refused = check(raw, limits=Limits(max_bytes=len(raw) - 1))
    assert isinstance(refused, Rejection)
    assert refused.reason == "too_large"
    assert f"the record is {len(raw)} bytes; the limit is {len(raw) - 1}" in refused.message


def test_published_schema_file_is_current() -> None:
    published = json.loads((REPO / "docs" / "mention.schema.json").read_text())
    assert published == json.loads(json.dumps(json_schema())), (
        "docs/mention.schema.json is stale: regenerate it with "
        "`python -c 'import json; from streams.mention import json_schema; "
        "print(json.dumps(json_schema(), indent=2, ensure_ascii=False))'`"
    )


@pytest.mark.parametrize(
    "example",
    [
        base(),
        base(id=7, created_at=1795511700000, author={"id": 3}, in_reply_to=9, extra=[1]),
        base(platform="reddit", lang="sv", engagement={"likes": 2}),
    ],
)
def test_schema_and_validator_agree_on_valid_examples(example: dict[str, object]) -> None:
    jsonschema.validate(example, json_schema())
    assert isinstance(check(example), Mention)


@pytest.mark.parametrize(
    "example",
    [
        {"text": "x", "created_at": 1795511700},
        base(text=17),
        base(author={"followers": -1}),
        base(platform="myspace"),
    ],
)
def test_schema_and_validator_agree_on_invalid_examples(example: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(example, json_schema())
    assert isinstance(check(example), Rejection)
