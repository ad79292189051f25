"""What the browser tests get from the ``served`` fixture: the app's URL, the app, its settings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine

from tuneloop.config import Settings


@dataclass(frozen=True)
class Served:
    url: str
    app: FastAPI
    settings: Settings

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.resources.engine
        return engine
