"""``/metrics``: Prometheus text that parses, every documented name, HTTP metrics by route."""

from __future__ import annotations

from api_helpers import Keys, auth
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from tuneloop.observability.metrics import DOCUMENTED_NAMES

DOCUMENTED = (  # API.md, verbatim: a rename in the code must fail here.
    "fine_tuning_db_connections_active",
    "fine_tuning_db_connections_idle",
    "fine_tuning_redis_connections_active",
    "fine_tuning_redis_connections_idle",
    "fine_tuning_openai_circuit_breaker_state",
    "fine_tuning_openai_failures_total",
    "fine_tuning_mlflow_circuit_breaker_state",
    "fine_tuning_mlflow_failures_total",
    "fine_tuning_pipeline_execution_duration_seconds",
    "fine_tuning_pipeline_memory_peak_mb",
    "fine_tuning_pipeline_training_examples_total",
    "fine_tuning_pipeline_cache_hit_rate",
    "fine_tuning_model_engagement_rate",
    "fine_tuning_model_cost_per_token",
    "fine_tuning_model_quality_score",
    "fine_tuning_ab_test_success_rate",
)


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(client: TestClient) -> tuple[set[str], Samples]:
    """The family names, and the samples by sample name (``x_total``, ``x_bucket``...)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        names.add(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return names, samples


def test_every_documented_name_is_exposed(client: TestClient) -> None:
    assert set(DOCUMENTED) == set(DOCUMENTED_NAMES)
    families, samples = scrape(client)
    # The parser names a counter's family without "_total"; its samples keep it.
    exposed = families | set(samples) | {f"{name}_total" for name in families}
    assert [name for name in DOCUMENTED if name not in exposed] == []
    states = {
        labels["state"]: value
        for labels, value in samples["fine_tuning_openai_circuit_breaker_state"]
    }
    assert states == {"CLOSED": 1.0, "OPEN": 0.0, "HALF_OPEN": 0.0}


def test_pool_gauges_come_from_the_real_pool(client: TestClient, db: Engine) -> None:
    _, samples = scrape(client)
    idle = samples["fine_tuning_db_connections_idle"][0][1]
    active = samples["fine_tuning_db_connections_active"][0][1]
    assert (active, idle) == (db.pool.checkedout(), db.pool.checkedin())  # type: ignore[attr-defined]
    assert idle >= 1


def test_http_requests_are_counted_by_route_template(client: TestClient, keys: Keys) -> None:
    _, before = scrape(client)
    client.get("/datasets/abcdef1234", headers=auth(keys.viewer))
    client.get("/datasets/abcdef5678", headers=auth(keys.viewer))
    _, after = scrape(client)

    def count(samples: Samples) -> float:
        wanted = {"method": "GET", "route": "/datasets/{dataset_id}", "status": "404"}
        return sum(
            v for labels, v in samples.get("tuneloop_http_requests_total", []) if labels == wanted
        )

    assert count(after) - count(before) == 2
    latency = [labels for labels, _ in after["tuneloop_http_request_duration_seconds_count"]]
    assert {"method": "GET", "route": "/datasets/{dataset_id}"} in latency
    assert not any(
        "abcdef" in labels["route"] for labels, _ in after["tuneloop_http_requests_total"]
    )
