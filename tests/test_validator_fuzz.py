"""Property-based fuzzing: whatever arrives, the validator answers and never raises."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.brand_matching import BrandMatcher
from streams.brands import Brand, OnCall
from streams.mention import Limits, Mention, Rejection, validate_record
from streams.routing import Routed, route

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_bytes=4096)
FIELDS = (
    r"mention|id|text|created_at|brand|platform|lang|author|author\.(id|handle|followers)|url"
    r"|engagement|engagement\.(likes|shares|replies)|in_reply_to|is_brand_reply"
)
REASON = re.compile(
    rf"^(empty|too_large|too_deep|not_utf8|invalid_json|timestamp_out_of_range|unknown_brand"
    rf"|missing_field:({FIELDS})|bad_type:({FIELDS})|bad_value:({FIELDS}))$"
)
MATCHER = BrandMatcher(
    [Brand(name="Nordlys Energi", handles=("@nordlys",), oncall=OnCall(team="comms"))]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_values = json_values | st.sampled_from(
    [
        "2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00",
        1795511700,
        1795511700000,
        -1,
        10**30,
        "",
        " ",
        "x" * 5000,
        "twitter",
        "nb",
        "https://x.com/a",
        "javascript:x",
        {"followers": -1},
        {"likes": "3"},
    ]
)
valid_base = {
    "id": "p1",
    "text": "Nordlys Energi svarer ikke",
    "created_at": "2026-11-24T10:00:00Z",
}
field_names = st.sampled_from(
    [
        "id",
        "text",
        "created_at",
        "brand",
        "platform",
        "lang",
        "author",
        "url",
        "engagement",
        "in_reply_to",
        "is_brand_reply",
        "other",
    ]
)


def assert_accounted(result: Mention | Rejection) -> None:
    """Every record is either a valid mention or a rejection with a known reason and a message."""
    if isinstance(result, Rejection):
        assert REASON.match(result.reason), result.reason
        assert result.message
        return
    assert isinstance(result, Mention)
    routed = route(result, MATCHER)
    if isinstance(routed, Rejection):
        assert routed.reason == "unknown_brand"
    else:
        assert isinstance(routed, Routed)
        for _brand, record in routed.records():
            json.dumps(record)  # what goes downstream always serialises


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=5000))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert_accounted(validate_record(raw, limits=LIMITS, now=NOW))


@settings(max_examples=400)
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert_accounted(validate_record(raw, limits=LIMITS, now=NOW))


@settings(max_examples=600)
@given(st.dictionaries(field_names, field_values, max_size=6), st.booleans())
def test_mistyped_fields_on_a_valid_record(changes: dict[str, Any], drop: bool) -> None:
    record = {**valid_base, **changes}
    if drop and changes:
        record.pop(next(iter(changes)))
    raw = json.dumps(record).encode()
    assert_accounted(validate_record(raw, limits=LIMITS, now=NOW))


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=200), st.binary(max_size=8))
def test_truncated_and_corrupted_records(cut: int, junk: bytes) -> None:
    raw = json.dumps({**valid_base, "author": {"handle": "@kari", "followers": 10}}).encode()
    for candidate in (raw[:cut], raw[:cut] + junk, junk + raw[cut:]):
        result = validate_record(candidate, limits=LIMITS, now=NOW)
        assert_accounted(result)
        if candidate == raw:
            assert isinstance(result, Mention)


@settings(max_examples=50)
@given(st.integers(min_value=4097, max_value=50_000))
def test_oversized_records(size: int) -> None:
    raw = json.dumps({**valid_base, "text": "x" * size}).encode()
    result = validate_record(raw, limits=LIMITS, now=NOW)
    assert isinstance(result, Rejection) and result.reason == "too_large"


@settings(max_examples=100)
@given(st.integers(min_value=1, max_value=100_000))
def test_deep_nesting(depth: int) -> None:
    raw = b'{"id": "1", "text": "x", "created_at": 1795511700, "x": ' + b"[" * depth + b"]" * depth
    raw += b"}"
    assert_accounted(validate_record(raw, limits=Limits(max_bytes=300_000), now=NOW))
