"""Synthetic data for demos, tests and benchmarks: posts now, traffic later."""
