"""Observability: Prometheus metrics, structured JSON logs, health checks."""
