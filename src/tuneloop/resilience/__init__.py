"""Resilience for calls to outside systems: circuit breakers (and, later, retry policies)."""
