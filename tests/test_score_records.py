"""The scoring stage's record handling (BatchScorer, no Kafka): what it refuses and how it marks
where a mention's language came from."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest
from structlog.testing import capture_logs

from streams.agents.score import BatchScorer
from streams.mention import Rejection
from streams.sentiment.base import Sentiment
from streams.sentiment.lexicon import LexiconScorer

TEXT = "Helt elendig og skuffende kundeservice fra dere i dag, jeg er veldig misfornøyd"


@pytest.fixture(scope="module")
def batch_scorer() -> BatchScorer:
    return BatchScorer(LexiconScorer)


def _record(**fields: object) -> bytes:
    return json.dumps({"text": TEXT, "created_at_ms": 1_700_000_000_000, **fields}).encode()


@pytest.mark.parametrize("lang", ["und", "zxx", "qme", "qht", "mul", "", None])
def test_a_code_naming_no_language_is_detected(batch_scorer: BatchScorer, lang: str | None) -> None:
    """`und` was marked lang_source=collector (though detected); Twitter's qme/zxx were kept as
    languages, so detection was skipped and the lexicon fell back to English."""
    [result] = batch_scorer.run([_record(lang=lang)])
    assert not isinstance(result, Rejection)
    record = result[1]
    assert (record["lang"], record["lang_source"]) == ("nb", "detected")
    assert record["sentiment"]["label"] == "negative"


@pytest.mark.parametrize("lang", [5, True, ["nb"], {"code": "nb"}])
def test_a_language_that_is_not_a_string_is_detected(
    batch_scorer: BatchScorer, lang: object
) -> None:
    """It failed the whole batch with AttributeError in normalise_lang."""
    results = batch_scorer.run([_record(lang=lang), _record(lang="nb")])
    assert not any(isinstance(r, Rejection) for r in results)
    record = results[0][1]  # type: ignore[index]
    assert (record["lang"], record["lang_source"]) == ("nb", "detected")


def test_a_collector_language_is_kept_and_marked(batch_scorer: BatchScorer) -> None:
    [result] = batch_scorer.run([_record(lang="nob")])
    assert not isinstance(result, Rejection)
    assert (result[1]["lang"], result[1]["lang_source"]) == ("nb", "collector")


@pytest.mark.parametrize("stamp", ["missing", None, "1700000000000", True, float("inf")])
def test_a_record_without_a_numeric_time_is_dead_lettered_alone(
    batch_scorer: BatchScorer, stamp: object
) -> None:
    """The agent's send loop read record["created_at_ms"] outside any try: one such record from
    another producer crashed the agent and lost the rest of its (acknowledged) batch."""
    bad = json.loads(_record())
    if stamp == "missing":
        del bad["created_at_ms"]
    else:
        bad["created_at_ms"] = stamp
    results = batch_scorer.run([_record(), json.dumps(bad).encode(), _record()])
    assert [isinstance(r, Rejection) for r in results] == [False, True, False]
    rejection = results[1]
    assert isinstance(rejection, Rejection) and rejection.reason == "invalid_json"
    assert "created_at_ms" in rejection.message


class _NanForBroken:
    """A scorer whose model breaks (NaN, or inf) on texts containing 'broken'."""

    version = "fake:nan"

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        bad = {"broken nan": math.nan, "broken inf": math.inf}
        return [
            Sentiment(bad[t], bad[t], bad[t]) if t in bad else Sentiment(0.1, 0.2, 0.7)
            for t in texts
        ]


@pytest.mark.parametrize("text", ["broken nan", "broken inf"])
def test_non_finite_probabilities_are_dead_lettered_alone(text: str) -> None:
    """A NaN row was labelled negative (max() with NaN) and written as `NaN`, which is not JSON;
    it was counted as a negative mention too."""
    scorer = BatchScorer(_NanForBroken)
    with capture_logs() as logs:
        results = scorer.run([_record(text="fine"), _record(text=text), _record(text="ok")])
    assert [isinstance(r, Rejection) for r in results] == [False, True, False]
    rejection = results[1]
    assert isinstance(rejection, Rejection) and rejection.reason == "internal_error"
    assert "non-finite probabilities" in rejection.message and "fake:nan" in rejection.message
    for result in (results[0], results[2]):
        assert not isinstance(result, Rejection)
        json.loads(result[0], parse_constant=_refuse)  # strict JSON
        assert result[1]["sentiment"]["label"] == "positive"
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["scoring.non_finite"]


def _refuse(constant: str) -> None:
    raise ValueError(f"not strict JSON: {constant}")


@pytest.mark.parametrize("lang", [None, "nb"])
def test_a_lone_surrogate_is_dead_lettered_as_not_utf8_before_detection(
    batch_scorer: BatchScorer, lang: str | None
) -> None:
    """A producer other than the validate stage sent ``\\ud83d`` (a lone surrogate) in a text:
    the language detector raised for the whole batch (or, with a given language, encoding the
    scored record did), and the one-by-one fallback dead-lettered it as internal_error."""
    given = f', "lang": "{lang}"' if lang else ""
    bad = ('{"text": "bad \\ud83d service", "created_at_ms": 1700000000000' + given + "}").encode()
    results = batch_scorer.run([_record(id="a"), bad, _record(id="b")])  # no exception
    assert isinstance(results[1], Rejection) and results[1].reason == "not_utf8"
    assert [r[1]["id"] for r in (results[0], results[2]) if not isinstance(r, Rejection)] == [
        "a",
        "b",
    ]
