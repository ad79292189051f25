"""Every PromQL expression in the alert rules and dashboards names only metrics that
``/metrics`` really exports (or that another branch is adding, listed below)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import DEPLOY, load_yaml
from tuneloop.api.app import create_app
from tuneloop.config import Settings

# Metrics the rules and dashboards use that other branches are adding. Each is an xfail
# (strict) below: when it lands, its test passes, fails as XPASS, and the entry goes.
AWAITED_METRICS = {
    "tuneloop_rollbacks_total": "rollout: counter by `trigger`, one per rollback",
    "tuneloop_pipeline_runs_total": "pipeline: counter by `status` (completed, failed, aborted)",
    "tuneloop_events_pending": "events: gauge, stream entries not yet written to the table",
    "tuneloop_events_dead_lettered_total": "events: counter by `category` (dlq.*)",
}
SYNTHETIC = {"up"}  # written by Prometheus itself
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, labels, keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end() :].lstrip()
        if before.isdigit() or before == "." or after.startswith("("):
            continue
        if match.group(0).lower() not in KEYWORDS:
            names.add(match.group(0))
    return names


def expressions() -> Iterator[tuple[str, str]]:
    for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']}", target["expr"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Family and sample names of a real app's /metrics, after one request."""
    workspace: Path = tmp_path_factory.mktemp("metrics") / "workspace"
    settings = Settings(workspace=workspace, database={"url": f"sqlite:///{workspace / 't.db'}"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/live").status_code == 200
        text = client.get("/metrics").text
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def is_exported(name: str, exported: set[str]) -> bool:
    bases = {name} | {name.removesuffix(suffix) for suffix in SUFFIXES if name.endswith(suffix)}
    return bool(bases & exported) or name in SYNTHETIC


def test_the_name_extractor() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{status=~"5.."}[5m])))'
        " / on(job) group_left b_total > 1e3 and time() - c_ts offset 5m"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_ts"}


def test_rules_and_dashboards_use_only_exported_metrics(exported: set[str]) -> None:
    used: dict[str, list[str]] = {}
    for where, expr in expressions():
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    assert len(used) > 15
    missing = {
        name: places
        for name, places in used.items()
        if not is_exported(name, exported) and name not in AWAITED_METRICS
    }
    assert missing == {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"awaited from {why}"))
        for name, why in AWAITED_METRICS.items()
    ],
)
def test_awaited_metrics_are_exported(name: str, exported: set[str]) -> None:
    assert is_exported(name, exported)
