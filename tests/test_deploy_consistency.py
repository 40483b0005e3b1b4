"""The deployment files against the code: the metrics and labels the PromQL of the rules, the
dashboards and the rule unit tests uses, and the runbook headings the alerts link to.

tests/test_compose.py already checks that every ``stormvarsel_*`` name a rule or panel uses is
exported; this file covers what it does not: a label that a metric does not carry (``by
(brand)`` on a metric without ``brand`` returns one unlabelled series, a ``{result="x"}`` on a
missing label matches nothing, and neither is an error in Prometheus), other metrics such as
``process_start_time_seconds``, the dashboards' variable queries, and the series the promtool
unit tests feed the rules (which would otherwise pass on a name the worker no longer exports).
test_compose.py checks that an alert's anchor is its name in lowercase; here the anchor must
also be a heading of docs/runbooks.md, or the page's link opens the top of the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").rglob("*.json"))
RUNBOOKS = ROOT / "docs" / "runbooks.md"

#: Added by Prometheus to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
#: Series Prometheus makes itself, with the labels they carry.
BUILTIN: dict[str, frozenset[str]] = {
    "up": TARGET_LABELS,
    "scrape_duration_seconds": TARGET_LABELS,
    "scrape_samples_scraped": TARGET_LABELS,
    "scrape_samples_post_metric_relabeling": TARGET_LABELS,
    "scrape_series_added": TARGET_LABELS,
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan", "atan2"}
)
AGGREGATIONS = r"sum|min|max|avg|group|stddev|stdvar|count(?:_values)?|bottomk|topk|quantile|limitk"
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"(?<![\w:$])([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()")
_LABEL_VALUES = re.compile(r"label_values\((.+),\s*(\w+)\)")


# --- what the code exports ---------------------------------------------------------------------
def exported_labels() -> dict[str, frozenset[str]]:
    """Every series name the worker's registry exports, with the label names it carries."""
    from prometheus_client import REGISTRY

    import streams.metrics  # noqa: F401  (registers the worker's metrics)

    # A labelled metric with no child yet has no samples: its label names are on the collector.
    declared: dict[str, tuple[str, ...]] = {}
    collectors = dict(REGISTRY._collector_to_names)  # prometheus_client has no public listing
    for collector, names in collectors.items():
        for name in names:
            declared[name] = tuple(getattr(collector, "_labelnames", ()))
    found: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        base = set(declared.get(family.name, ()))
        for suffix in SUFFIXES.get(family.type, ("",)):
            found.setdefault(family.name + suffix, set()).update(base)
        if family.type == "histogram":
            found[family.name + "_bucket"].add("le")
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in found.items()}


def recording_rules() -> set[str]:
    return {
        rule["record"]
        for path in RULES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- what the deployment files query ------------------------------------------------------------
def expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every rule, dashboard query and rule unit-test input series."""
    for path in RULES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                yield f"{path.name}: {name}", str(rule["expr"])
    for path in DASHBOARDS:
        for where, expr in _dashboard_queries(json.loads(path.read_text(encoding="utf-8"))):
            yield f"{path.name}: {where}", expr
    for path in RULE_TESTS:
        for test in load_yaml(path).get("tests") or []:
            for series in test.get("input_series") or []:
                yield f"{path.name}: input series", str(series["series"])
            for check in test.get("promql_expr_test") or []:
                yield f"{path.name}: promql_expr_test", str(check["expr"])


def _dashboard_queries(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        where = str(node.get("title") or node.get("name") or where)
        if isinstance(node.get("expr"), str):
            yield where, node["expr"]
        if node.get("type") == "query":  # a template variable: label_values(metric, label)
            query = node.get("query")
            text = query.get("query") if isinstance(query, dict) else query
            if isinstance(text, str) and text:
                yield f"variable {where}", text
        for value in node.values():
            yield from _dashboard_queries(value, where)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_queries(item, where)


def _blank_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    keywords, label names, durations or Grafana variables."""
    text = _blank_strings(expr)
    variable = _LABEL_VALUES.fullmatch(text.strip())
    text = _CLAUSE.sub(" ", variable.group(1) if variable else text)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in KEYWORDS}


def _paren_group(text: str, start: int) -> str:
    """The balanced parenthesised group opening at text[start] (or "" if there is none)."""
    if start >= len(text) or text[start] != "(":
        return ""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return text[start : index + 1]
    return text[start:]


def _group_before(text: str, end: int) -> str:
    """The balanced parenthesised group closing at text[end - 1]."""
    depth = 0
    for index in range(end - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[index], 0)
        if depth == 0:
            return text[index:end]
    return text[:end]


def label_uses(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(label, metrics it must be on) for each label a matcher or clause names."""
    text = _blank_strings(expr)
    match_ = _LABEL_VALUES.fullmatch(text.strip())
    if match_:
        yield match_.group(2), metric_names(match_.group(1))
        text = match_.group(1)
    for selector in _SELECTOR.finditer(text):
        for label in _MATCHER.findall(selector.group(2)):
            if label != "__name__":
                yield label, {selector.group(1)}
    everything = metric_names(text)
    for clause in _CLAUSE.finditer(text):
        keyword, labels = clause.group(1), clause.group(2)
        if keyword in {"by", "without"}:
            before = text[: clause.start()].rstrip()
            if re.search(rf"\b(?:{AGGREGATIONS})$", before):  # sum by (x) (body)
                rest = text[clause.end() :]
                body = _paren_group(rest, len(rest) - len(rest.lstrip()))
            else:  # sum (body) by (x)
                body = _group_before(text, len(before))
            scope = metric_names(body)
        else:  # on/ignoring/group_*: the label must be on one side at least
            scope = everything
        for label in re.findall(r"[A-Za-z_]\w*", labels):
            yield label, scope


# --- the tests ----------------------------------------------------------------------------------
def test_expressions_are_found() -> None:
    found = list(expressions())
    assert RULES and DASHBOARDS
    assert sum(1 for where, _ in found if where.endswith("input series")) > 10
    assert any(where.startswith("brand-overview.json: variable") for where, _ in found)
    assert metric_names(
        'sum by (le) (rate(a_bucket{x="y"}[5m])) / on (job) b and max_over_time(c[1h]) > 1e3'
    ) == {"a_bucket", "b", "c"}


def test_every_metric_queried_is_exported() -> None:
    known = set(exported_labels()) | set(BUILTIN) | recording_rules()
    missing = {
        f"{where}: {name}"
        for where, expr in expressions()
        for name in metric_names(expr)
        if name not in known
    }
    assert not missing, "metrics the worker does not export:\n" + "\n".join(sorted(missing))


def test_every_label_queried_is_on_its_metric() -> None:
    labels = exported_labels() | BUILTIN
    recorded = recording_rules()
    wrong: list[str] = []
    for where, expr in expressions():
        for label, scope in label_uses(expr):
            known = scope & labels.keys()
            if label in TARGET_LABELS or not known or scope & recorded:
                continue  # unknown metrics fail above; a recording rule's labels are its own
            if not any(label in labels[metric] for metric in known):
                wrong.append(f"{where}: label {label!r} is not on {', '.join(sorted(known))}")
    assert not wrong, "labels the metrics do not carry:\n" + "\n".join(sorted(set(wrong)))


def test_label_check_catches_a_missing_label() -> None:
    labels = exported_labels()
    expr = 'sum by (brand) (rate(stormvarsel_mentions_rejected_total{reason="json"}[5m]))'
    uses = list(label_uses(expr))
    assert ("reason", {"stormvarsel_mentions_rejected_total"}) in uses
    assert ("brand", {"stormvarsel_mentions_rejected_total"}) in uses
    assert "brand" not in labels["stormvarsel_mentions_rejected_total"]


# --- runbooks -----------------------------------------------------------------------------------
def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lowercase, punctuation dropped, spaces to '-',
    a repeated heading gets -1, -2, ..."""
    anchors: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_code or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        anchor, count = slug, 0
        while anchor in anchors:
            count += 1
            anchor = f"{slug}-{count}"
        anchors.add(anchor)
    return anchors


def alerts() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: str(rule["alert"]))
def test_alert_runbook_anchor_is_a_runbooks_heading(rule: dict[str, Any]) -> None:
    url = (rule.get("annotations") or {}).get("runbook_url")
    assert url, f"{rule['alert']}: no runbook_url annotation"
    page, _, anchor = str(url).partition("#")
    assert page.endswith("docs/runbooks.md"), f"{rule['alert']}: {url} is not docs/runbooks.md"
    anchors = github_anchors(RUNBOOKS.read_text(encoding="utf-8"))
    assert anchor in anchors, f"{rule['alert']}: docs/runbooks.md has no heading #{anchor}"


def test_brand_storm_runbook_anchor_is_a_runbooks_heading() -> None:
    from streams.settings import RUNBOOK_URL

    page, _, anchor = RUNBOOK_URL.partition("#")
    assert page.endswith("docs/runbooks.md")
    assert anchor in github_anchors(RUNBOOKS.read_text(encoding="utf-8"))


def test_github_anchors() -> None:
    text = "# Runbooks\n## Kafka: down (again)\n```\n# not a heading\n```\n## Runbooks\n"
    assert github_anchors(text) == {"runbooks", "kafka-down-again", "runbooks-1"}
