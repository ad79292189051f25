"""The compose stack, parsed and cross-checked (no Docker engine or compose plugin here):
services and their dependencies, environment names against the settings, ports, mounts."""

from __future__ import annotations

import re
from typing import Any

from settings_names import unknown_names

from conftest import DEPLOY, load_yaml
from tuneloop.config import Settings

COMPOSE = DEPLOY / "compose"
TUNELOOP_SERVICES = ("migrate", "api", "worker")


def stack() -> dict[str, Any]:
    return load_yaml(COMPOSE / "docker-compose.yml")


def test_the_stack_has_every_service() -> None:
    services = stack()["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "mlflow",
        "migrate",
        "api",
        "worker",
        "prometheus",
        "grafana",
    }
    assert services["api"]["command"] == ["serve", "--workers", "2"]
    assert services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_dependencies_volumes_and_mounted_files_exist() -> None:
    compose = stack()
    services, volumes = compose["services"], set(compose["volumes"])
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
    dockerfile = services["api"]["build"]
    assert (COMPOSE / dockerfile["context"] / dockerfile["dockerfile"]).is_file()


def test_environment_names_are_real_settings() -> None:
    services = stack()["services"]
    for name in TUNELOOP_SERVICES:
        env = services[name]["environment"]
        assert unknown_names(set(env)) == [], name
        assert {"DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"} <= set(env)


def test_ports_agree_across_services() -> None:
    services = stack()["services"]
    api_port = int(services["api"]["environment"]["TUNELOOP_API__PORT"])
    assert api_port == Settings().api.port  # the image's default, too
    assert services["api"]["ports"] == [f"${{TUNELOOP_PORT:-{api_port}}}:{api_port}"]
    scrape = load_yaml(COMPOSE / "prometheus.yml")["scrape_configs"][0]
    assert scrape["job_name"].startswith("tuneloop")  # the alerts select job=~"tuneloop.*"
    assert scrape["static_configs"][0]["targets"] == [f"api:{api_port}"]
    mlflow_port = next(a for a in services["mlflow"]["command"] if a.startswith("--port="))
    uri = services["api"]["environment"]["MLFLOW_TRACKING_URI"]
    assert uri == f"http://mlflow:{mlflow_port.split('=')[1]}"
    database = services["api"]["environment"]["DATABASE_URL"]
    assert database.endswith("@postgres:5432/tuneloop")
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "tuneloop"


def test_every_required_variable_is_in_the_example_env_file() -> None:
    text = (COMPOSE / "docker-compose.yml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    used = set(re.findall(r"\$\{(\w+)", text))
    example = {
        line.split("=", 1)[0]
        for line in (COMPOSE / ".env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert required and required <= example
    assert used <= example


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    grafana = stack()["services"]["grafana"]
    mounts = dict(mount.split(":")[:2] for mount in grafana["volumes"])
    provider = load_yaml(COMPOSE / "grafana" / "provisioning" / "dashboards" / "tuneloop.yml")
    path = provider["providers"][0]["options"]["path"]
    source = next(src for src, target in mounts.items() if target == path)
    assert sorted((COMPOSE / source).glob("*.json"))
