"""Serving: routing, the OpenAI-compatible proxy, and the local model server."""
