"""Outcome events: validation and batch ingestion (HTTP batches, simulations, streams)."""
