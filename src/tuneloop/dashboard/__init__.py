"""The web dashboard at ``/ui``: server-rendered pages over the same app layer and auth.

``install_dashboard(app, errors)`` adds its routes and its own static files (our script and
stylesheet, nothing third-party) to the API app; ``create_app`` calls it.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tuneloop.api.errors import ErrorTable


def install_dashboard(app: FastAPI, errors: ErrorTable) -> None:
    """Serve the dashboard from ``app`` (its session secret is read on first use)."""
    from tuneloop.dashboard import actions, pages
    from tuneloop.dashboard.rendering import STATIC

    app.state.dashboard_errors = errors
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
