"""``Serving``: what the app holds to answer ``/v1/route``, ``/v1/models`` and the proxy.

Built once per process from settings and the engine; ``start`` (in the app's startup) begins
warming the locally served models, ``aclose`` (at shutdown) writes the last generation
events and closes the upstream connections and the local model server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from tuneloop.config import Settings
from tuneloop.domain.clock import Clock, SystemClock
from tuneloop.rollout.checks import model_label
from tuneloop.rollout.routing import HoldoutPolicy, routing_table
from tuneloop.serving.loaded import LocalModel
from tuneloop.serving.local_serving import LocalServing
from tuneloop.serving.proxy import ChatProxy
from tuneloop.serving.recorder import EventRecorder
from tuneloop.serving.routes import RouteCache
from tuneloop.serving.targets import LocalTarget, target_for
from tuneloop.serving.upstream import UpstreamClient
from tuneloop.store.deployments import active_deployment_ids
from tuneloop.store.experiments import tenants_with_running_experiment
from tuneloop.store.models_registry import list_model_versions, tenants_with_champion


class Serving:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        e = settings.experiments
        self.holdout = HoldoutPolicy.from_settings(e.holdout_share, e.holdout_model)
        self.routes = RouteCache(
            engine, ttl_seconds=settings.serving.route_cache_seconds, holdout=self.holdout
        )
        self.upstream = UpstreamClient(
            breaker_config=settings.serving.breaker.config(), transport=transport
        )
        self.local = LocalServing(settings.serving.local)
        self.recorder = EventRecorder(engine, dead_letters=dead_letter_file(settings))
        self.proxy = ChatProxy(
            settings,
            engine,
            routes=self.routes,
            upstream=self.upstream,
            local=self.local,
            recorder=self.recorder,
            clock=clock or SystemClock(),
        )

    def models_to_warm(self) -> list[LocalModel]:
        """Every locally served version that can get traffic now, in any tenant."""
        found: dict[LocalModel, None] = {}
        for tenant_id in serving_tenants(self.engine):
            for model_id, version in routing_table(
                self.engine, tenant_id, holdout=self.holdout
            ).models():
                row = self.proxy.version_record(tenant_id, model_id, version)
                target = target_for(self.settings, tenant_id, model_id, version, row)
                if isinstance(target, LocalTarget):
                    found[target.model] = None
        return list(found)

    def model_list(self, tenant_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """``GET /v1/models``: ``auto`` and the tenant's registered versions, newest first."""
        rows = list_model_versions(self.engine, tenant_id, limit=limit)
        data = [{"id": "auto", "object": "model", "created": 0, "owned_by": "tuneloop"}]
        data += [
            {
                "id": model_label(row.model_id, row.version),
                "object": "model",
                "created": int(row.created_at.timestamp()),
                "owned_by": tenant_id,
            }
            for row in rows
        ]
        return data

    def close_recorder(self) -> None:
        self.recorder.close()

    async def aclose(self) -> None:
        await self.local.aclose()
        await self.upstream.aclose()


def dead_letter_file(settings: Settings) -> Path:
    """Where generation events the database refused are kept (JSONL, replayable)."""
    return settings.workspace / "dead-letters" / "generation-events.jsonl"


def serving_tenants(engine: Engine) -> list[str]:
    """Tenants with something to serve: a champion, an active rollout or a running experiment."""
    champions = tenants_with_champion(engine)
    running = tenants_with_running_experiment(engine)
    rollouts = [tenant for tenant, _ in active_deployment_ids(engine)]
    return sorted({*champions, *running, *rollouts})
