"""tuneloop: closes the loop from engagement data to a better model."""

__version__ = "0.1.0"
