"""Making the first champion: the one promotion that does not go through a rollout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.errors import InvalidStateError, NotFoundError
from tuneloop.store.models_registry import champion_of, list_model_versions, set_champion
from tuneloop.store.pipeline_models import ModelVersion

if TYPE_CHECKING:
    from tuneloop.tracking import Tracker


def promote_first_champion(
    engine: Engine,
    settings: Settings,
    tenant_id: str,
    *,
    version: str,
    tracker: Tracker | None = None,
) -> ModelVersion:
    """Flip MLflow's ``champion`` alias and our record to ``version``, if there is no champion.

    Later champions are made only by a rollout reaching 100% (so they were A/B tested).
    """
    current = champion_of(engine, tenant_id)
    if current is not None:
        raise InvalidStateError(
            f"tenant {tenant_id!r} already has champion {current.model_id} v{current.version}; "
            "later champions are promoted by a rollout, after an A/B test"
        )
    matches = [
        v for v in list_model_versions(engine, tenant_id, limit=1000) if v.version == version
    ]
    if not matches:
        raise NotFoundError(f"model version {version!r} not found for tenant {tenant_id!r}")
    if tracker is None:  # callers outside a container (the CLI's `models promote`)
        from tuneloop.tracking.factory import tracker_from_settings

        tracker = tracker_from_settings(settings)
    tracker.promote(tenant_id, int(version))
    set_champion(engine, tenant_id, matches[0].model_id, version)
    return matches[0]
