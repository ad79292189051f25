"""What the rollout tests share: the tenant, its model name, and the prepared world."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.experiments.service import ModelRef
from tuneloop.rollout.manager import DeploymentManager
from tuneloop.tracking import Tracker

TENANT = "acme"
MODEL = "tuneloop-acme"


@dataclass(frozen=True)
class World:
    engine: Engine
    settings: Settings
    tracker: Tracker
    manager: DeploymentManager
    ab_test_id: str
    candidate: ModelRef
    baseline: ModelRef
