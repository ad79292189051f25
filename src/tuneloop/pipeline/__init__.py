"""Durable pipeline runs: the state machine, its steps and the runner that resumes them."""
