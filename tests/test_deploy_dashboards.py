"""What the Grafana panels tell an on-call engineer, beyond "the query runs".

tests/test_compose.py and tests/test_deploy_consistency.py check that every metric and label a
panel names exists; this file checks that a panel keeps apart what its runbook step needs apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams import metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
REJECTED = "stormvarsel_mentions_rejected_total"


def targets(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node
        for value in node.values():
            yield from targets(value)
    elif isinstance(node, list):
        for item in node:
            yield from targets(item)


def rejected_targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, target)
        for path in DASHBOARDS
        for target in targets(json.loads(path.read_text(encoding="utf-8")))
        if REJECTED in target["expr"]
    ]


def validation_reasons() -> set[str]:
    """The reasons validation dead-letters a record for (streams/mention.py)."""
    source = (ROOT / "streams" / "mention.py").read_text(encoding="utf-8")
    return set(re.findall(r'Rejection\(\s*"([a-z0-9_:]+)"', source))


def test_the_same_reason_comes_from_different_stages() -> None:
    """Why the stage matters: ``invalid_json`` at validation is a collector's bad input (runbook
    StormvarselDeadLetterRateHigh), at scoring a fault in the pipeline (runbook
    StormvarselStageDeadLetters)."""
    later = metrics.STAGE_REJECTION_REASONS
    shared = validation_reasons() & set(later["score"])
    assert {"invalid_json", "not_utf8"} <= shared, shared
    assert "internal_error" in set(later["score"]) & set(later["detect"])


def test_dead_letter_panels_keep_the_stage_apart() -> None:
    """The dead-letter panel summed by reason alone: a scoring fault's ``invalid_json`` was drawn
    as one line with the collectors' bad JSON, so neither runbook could tell from it which one
    was happening."""
    found = rejected_targets()
    assert found, f"no panel shows {REJECTED}"
    for name, target in found:
        expr = target["expr"]
        selector = re.search(re.escape(REJECTED) + r"\s*\{([^}]*)\}", expr)
        if selector and re.search(r'\bstage\s*=\s*"', selector.group(1)):
            continue  # one stage only
        grouping = re.search(r"\bby\s*\(([^)]*)\)", expr)
        assert grouping, f"{name}: {expr!r} sums every stage and reason into one line"
        labels = {label.strip() for label in grouping.group(1).split(",")}
        if "reason" in labels:
            assert "stage" in labels, f"{name}: {expr!r} adds up a reason across stages"
            assert "{{stage}}" in target.get("legendFormat", ""), (
                f"{name}: {expr!r}: the legend does not say which stage"
            )
