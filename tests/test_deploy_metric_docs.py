"""The metric names operators read in the docs against the worker's registry.

tests/test_deploy_consistency.py checks the PromQL of the rules, dashboards and rule tests; an
operator following docs/runbooks.md or looking a series up in docs/observability.md's table
types the names by hand, and a renamed metric there is a query that returns nothing. So: every
``stormvarsel_*`` name in the operator docs is exported, and the table lists every metric family
the worker exports, with its type and exactly its labels.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "docs" / name for name in ("runbooks.md", "observability.md", "alerts.md")]
OBSERVABILITY = ROOT / "docs" / "observability.md"

#: The series name a family is queried by in PromQL, per type (histograms by their base name).
QUERIED_AS = {"counter": "{}_total", "info": "{}_info"}
#: The labels of an Info the worker has not filled in yet (the scorer's, set when it loads).
UNSET = frozenset({"?"})
_NAME = re.compile(r"(?<![\w:])stormvarsel_[a-z0-9_]+(?![\w:])")
_ROW = re.compile(r"^\|(?P<names>[^|]*`stormvarsel_[^|]*)\|(?P<type>[^|]*)\|(?P<labels>[^|]*)\|")


def families() -> dict[str, tuple[str, frozenset[str]]]:
    """name as queried -> (type, label names) for every stormvarsel family the worker exports."""
    from prometheus_client import REGISTRY

    import streams.metrics  # noqa: F401  (registers the worker's metrics)

    labels: dict[str, frozenset[str]] = {}
    for collector, names in dict(REGISTRY._collector_to_names).items():  # no public listing
        for name in names:
            labels[name] = frozenset(getattr(collector, "_labelnames", ()))
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("stormvarsel_"):
            continue
        queried = QUERIED_AS.get(family.type, "{}").format(family.name)
        sample_labels = {key for sample in family.samples for key in sample.labels} - {"le"}
        own = labels.get(queried, labels.get(family.name, frozenset()))
        if family.type == "info" and not sample_labels:
            own = UNSET  # its keys come with its first .info() call
        found[queried] = (family.type, own | sample_labels)
    return found


def series_names() -> set[str]:
    """Every series name the families can be read by (counters also without ``_total``,
    histograms with ``_bucket``, ``_sum`` and ``_count``)."""
    names: set[str] = set()
    for name, (kind, _) in families().items():
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def table() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, labels) from docs/observability.md's metrics table. A row may name
    several metrics; 'version, python / model' gives each named metric its part."""
    rows: dict[str, tuple[str, frozenset[str]]] = {}
    for line in OBSERVABILITY.read_text(encoding="utf-8").splitlines():
        row = _ROW.match(line)
        if not row:
            continue
        names = re.findall(r"`(stormvarsel_[a-z0-9_]+)`", row["names"])
        parts = row["labels"].split("/")
        if len(parts) != len(names):
            parts = parts[:1] * len(names)
        for name, part in zip(names, parts, strict=True):
            labels = frozenset(label.strip() for label in part.split(",") if label.strip())
            rows[name] = (row["type"].strip(), labels)
    return rows


def test_table_is_read() -> None:
    rows = table()
    assert len(rows) > 30
    assert rows["stormvarsel_mentions_scored_total"] == (
        "counter",
        frozenset({"sentiment", "language"}),
    )
    assert rows["stormvarsel_scorer_info"] == ("info", frozenset({"model"}))
    assert rows["stormvarsel_kafka_up"] == ("gauge", frozenset())


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_every_metric_named_in_the_docs_is_exported(path: Path) -> None:
    known = series_names()
    named = set(_NAME.findall(path.read_text(encoding="utf-8")))
    assert named, f"{path.name} names no metric"
    missing = sorted(named - known)
    assert not missing, f"{path.name} names metrics the worker does not export: {missing}"


def test_observability_table_lists_every_metric_with_its_type_and_labels() -> None:
    rows = table()
    exported = families()
    undocumented = sorted(set(exported) - set(rows))
    assert not undocumented, f"docs/observability.md's table lacks {undocumented}"
    stale = sorted(set(rows) - set(exported))
    assert not stale, f"docs/observability.md's table lists metrics not exported: {stale}"
    wrong = [
        f"{name}: table says {rows[name]}, the worker exports {kind} with {sorted(labels)}"
        for name, (kind, labels) in sorted(exported.items())
        if rows[name][0] != kind or (labels != UNSET and rows[name][1] != labels)
    ]
    assert not wrong, "\n".join(wrong)
