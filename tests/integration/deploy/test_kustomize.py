"""The Kustomize base renders, and every object validates strictly against Kubernetes' schemas."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from settings_names import unknown_names

from conftest import DEPLOY, find_tool, load_all_yaml, unavailable

BASE = DEPLOY / "kustomize" / "base"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # oldest we support, newest the validator knows


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = find_tool("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return load_all_yaml(result.stdout)


def validate(obj: dict[str, Any], version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        unavailable("kubernetes-validate")
    kubernetes_validate.validate(obj, version, strict=True)


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_strictly(rendered: list[dict[str, Any]], version: str) -> None:
    for obj in rendered:
        validate(obj, version)


def test_strict_validation_rejects_an_unknown_field(rendered: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    deployment = dict(by_kind(rendered)[("Deployment", "tuneloop-api")])
    deployment["spec"] = {**deployment["spec"], "replica": 2}  # a typo of replicas
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, KUBERNETES_VERSIONS[-1])


def test_the_base_holds_the_charts_objects(rendered: list[dict[str, Any]]) -> None:
    objects = by_kind(rendered)
    assert set(objects) == {
        ("ServiceAccount", "tuneloop"),
        ("ConfigMap", "tuneloop"),
        ("Job", "tuneloop-migrate"),
        ("Deployment", "tuneloop-api"),
        ("Service", "tuneloop-api"),
        ("HorizontalPodAutoscaler", "tuneloop-api"),
        ("PodDisruptionBudget", "tuneloop-api"),
        ("Deployment", "tuneloop-worker"),
    }
    api = objects[("Deployment", "tuneloop-api")]["spec"]["template"]["spec"]["containers"][0]
    assert api["args"] == ["serve"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert api["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2000m", "memory": "2Gi"},
    }
    worker = objects[("Deployment", "tuneloop-worker")]["spec"]
    assert worker["replicas"] == 1
    assert worker["template"]["spec"]["containers"][0]["args"] == ["worker"]
    job = objects[("Job", "tuneloop-migrate")]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["db", "upgrade"]
    hpa = objects[("HorizontalPodAutoscaler", "tuneloop-api")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 5)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]
    }
    assert targets == {"cpu": 70, "memory": 80}


def test_environment_names_are_real_settings(rendered: list[dict[str, Any]]) -> None:
    names = set(by_kind(rendered)[("ConfigMap", "tuneloop")]["data"])
    for obj in rendered:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            names |= {entry["name"] for entry in container.get("env", [])}
    assert unknown_names(names) == []
    assert "DATABASE_URL" in names
