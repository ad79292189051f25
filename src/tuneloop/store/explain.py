"""Database errors in words: what a person reads instead of SQL and a sqlalche.me link.

The detail (statement, parameters, driver message) belongs in the log, not in a run's
``error``, the CLI's output or an API response.
"""

from __future__ import annotations

import re

from sqlalchemy import exc

_SQLITE_CONSTRAINT = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed: ?(\S*)")


def in_words(error: BaseException) -> str | None:
    """A sentence for a database error, or None when ``error`` is not one."""
    if not isinstance(error, exc.SQLAlchemyError):
        return None
    if isinstance(error, exc.IntegrityError):
        what = _constraint(error)
        return (
            "the database refused a record that conflicts with one already stored"
            + (f" ({what})" if what else "")
            + "; see the log for the statement"
        )
    if isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        return "the database could not be reached or did not answer in time; see the log"
    return f"a database error ({type(error).__name__}); see the log for the statement"


def _constraint(error: exc.IntegrityError) -> str | None:
    diag = getattr(error.orig, "diag", None)  # psycopg: the constraint's own name
    name = getattr(diag, "constraint_name", None)
    if name:
        return f"constraint {name}"
    found = _SQLITE_CONSTRAINT.search(str(error.orig))
    if found:
        kind, columns = found.groups()
        return (
            f"{kind.lower()} constraint on {columns}" if columns else f"{kind.lower()} constraint"
        )
    return None
