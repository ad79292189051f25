"""The hosted fine-tuning backend (OpenAI-compatible API) and a protocol-faithful fake of it.

Modules: ``api`` (the SDK behind the breaker and retries), ``files`` (uploads and the job's
state file), ``progress`` (statuses, events, checkpoints as our types), ``trainer`` (the
backend), ``fake`` (an HTTP server speaking the same protocol, for tests and the demo).
"""
