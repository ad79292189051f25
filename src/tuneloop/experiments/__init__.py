"""Experiments: assignment, outcome events, statistics and decisions."""
