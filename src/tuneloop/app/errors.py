"""Errors in words for entry points: a database error as a sentence, never SQL.

The words come from ``tuneloop.store.explain`` (the one place that knows the database's
errors); entry points import them from here so that none of them imports the store.
"""

from __future__ import annotations

from tuneloop.store.explain import in_words

__all__ = ["in_words"]
