"""The Helm chart, checked without helm (not installable here): values against the schema,
the plain files parsed, the templates' value paths and blocks, the copied files in sync."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from settings_names import unknown_names

from conftest import CHART, DEPLOY, load_yaml

TEMPLATES = CHART / "templates"


def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def values() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


def test_values_match_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.Draft7Validator(schema()).validate(values())


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("autoscaling", "maxReplicas"), "five"),
        (("api", "resources", "limits", "memory"), "2 gigabytes"),
        (("image", "pullPolicy"), "Sometimes"),
        (("existingSecret",), ""),
        (("config", "DATABASE_URL"), "postgresql://u:secret@db/x"),  # secrets stay in the Secret
        (("serviceMonitor", "enabeld"), True),
    ],
)
def test_the_schema_rejects_wrong_values(path: tuple[str, ...], bad: object) -> None:
    changed = copy.deepcopy(values())
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema()).validate(changed)


def test_the_source_designs_resources_and_scaling() -> None:
    chart = values()
    assert chart["api"]["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2000m", "memory": "2Gi"},
    }
    scaling = chart["autoscaling"]
    assert (scaling["minReplicas"], scaling["maxReplicas"]) == (1, 5)
    assert (
        scaling["targetCPUUtilizationPercentage"],
        scaling["targetMemoryUtilizationPercentage"],
    ) == (70, 80)
    assert chart["api"]["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert chart["api"]["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert chart["worker"]["replicas"] == 1
    assert unknown_names(set(chart["config"])) == []


def test_plain_files_parse() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "tuneloop"
    from tuneloop import __version__

    assert chart["appVersion"] == __version__
    load_yaml(CHART / "files" / "alerts.yml")
    for path in (CHART / "files" / "dashboards").glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def test_copied_files_match_their_sources() -> None:
    """Helm reads only files inside the chart: these copies must stay identical."""
    assert (CHART / "files" / "alerts.yml").read_bytes() == (
        DEPLOY / "prometheus" / "alerts.yml"
    ).read_bytes()
    sources = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    copies = sorted((CHART / "files" / "dashboards").glob("*.json"))
    assert [p.name for p in copies] == [p.name for p in sources]
    for source, copied in zip(sources, copies, strict=True):
        assert copied.read_bytes() == source.read_bytes(), copied.name


ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
OPENERS = ("if ", "range ", "with ", "define ")


def template_problems(text: str, known: dict[str, Any], defined: set[str]) -> list[str]:
    """Unbalanced blocks, unknown ``.Values`` paths, includes of undefined templates."""
    problems: list[str] = []
    depth = 0
    for action in ACTION.findall(text):
        if action.startswith("/*"):
            continue
        if action.startswith(OPENERS):
            depth += 1
        elif action == "end":
            depth -= 1
            if depth < 0:
                problems.append("an {{ end }} without its block")
        for path in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", action):
            node: Any = known
            for key in path.split("."):
                if not isinstance(node, dict) or key not in node:
                    problems.append(f"unknown value .Values.{path}")
                    break
                node = node[key]
        problems += [
            f"undefined template {name}"
            for name in re.findall(r'include "([^"]+)"', action)
            if name not in defined
        ]
    if depth != 0:
        problems.append(f"{depth} unclosed block(s)")
    return problems


def defined_templates() -> set[str]:
    text = (TEMPLATES / "_helpers.tpl").read_text(encoding="utf-8")
    return set(re.findall(r'define "([^"]+)"', text))


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.iterdir()), ids=str)
def test_templates_refer_to_real_values_and_close_their_blocks(template: str) -> None:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    assert template_problems(text, values(), defined_templates()) == []


def test_the_template_check_finds_a_typo(tmp_path: Path) -> None:
    broken = '{{- if .Values.autoscaling.enabeld }}\nx: {{ include "tuneloop.nmae" . }}\n'
    assert template_problems(broken, values(), defined_templates()) == [
        "unknown value .Values.autoscaling.enabeld",
        "undefined template tuneloop.nmae",
        "1 unclosed block(s)",
    ]


def test_every_kind_the_issue_asks_for_is_templated() -> None:
    kinds = {
        match
        for path in TEMPLATES.glob("*.yaml")
        for match in re.findall(r"^kind: (\w+)", path.read_text(encoding="utf-8"), re.M)
    }
    assert kinds == {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
    }
