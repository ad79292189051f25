"""Imports every table module, so ``Base.metadata`` is complete (Alembic and tests use it)."""

from tuneloop.store import models  # noqa: F401  posts, dataset versions, watermarks
from tuneloop.store.base import Base

metadata = Base.metadata
