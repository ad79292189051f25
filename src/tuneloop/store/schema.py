"""Imports every table module, so ``Base.metadata`` is complete (Alembic and tests use it)."""

from tuneloop.store import (
    auth_models,  # noqa: F401  api keys
    deployment_models,  # noqa: F401  deployments, their audit trail
    event_stream_models,  # noqa: F401  the embedded event stream, dead letters
    experiment_models,  # noqa: F401  experiments, outcome events
    models,  # noqa: F401  posts, dataset versions, watermarks
    pipeline_models,  # noqa: F401  runs, steps, training jobs, model versions
    rollup_models,  # noqa: F401  per-unit hourly rollups of outcome events
    worker_models,  # noqa: F401  worker lease, schedule fires, tenant schedules
)
from tuneloop.store.base import Base

metadata = Base.metadata
