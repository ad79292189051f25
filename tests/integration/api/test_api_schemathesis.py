"""The OpenAPI document against the app: generated requests, valid and invalid, never get a
5xx or an answer the schema does not describe (schemathesis; bounded, a few seconds).

Driven through ``operation.as_strategy`` with Hypothesis rather than schemathesis' pytest
loader, whose fixture mode does not run under this pytest version.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_helpers import auth, with_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.python.asgi import shutdown_lifespans

from tuneloop.api.app import create_app
from tuneloop.config import Settings
from tuneloop.store.auth_models import Role, create_api_key
from tuneloop.wiring import engine_for

# More examples for a deeper (slower) look: TUNELOOP_SCHEMATHESIS_EXAMPLES=200.
EXAMPLES_PER_OPERATION = int(os.environ.get("TUNELOOP_SCHEMATHESIS_EXAMPLES", "10"))
# A rule OpenAPI cannot express: a deploy's rollout_config must have initial_traffic <=
# max_traffic, each field valid alone; the service answers 422 invalid_input for the pair
# (tests/integration/api/test_api_deployment.py asserts it), which schemathesis would report
# as "schema-valid data rejected". Every other check still runs on this operation.
CROSS_FIELD = {"POST /deployment/deploy": [positive_data_acceptance]}
# A schedule is `format: cron` in the document (its pattern only says "five fields"); valid
# ones are drawn from fields a cron parser accepts, so a rejected one is a real finding.
CRON_FIELDS = [
    st.sampled_from(["*", "0", "15", "*/5", "0,30", "10-20"]),
    st.sampled_from(["*", "2", "23", "*/6", "8-18"]),
    st.sampled_from(["*", "1", "31", "1-15"]),
    st.sampled_from(["*", "1", "12", "jan", "*/3"]),
    st.sampled_from(["*", "0", "7", "sun", "mon-fri"]),
]
schemathesis.openapi.format("cron", st.tuples(*CRON_FIELDS).map(" ".join))


@pytest.fixture
def api(sqlite_settings: Settings) -> Iterator[tuple[Any, dict[str, str]]]:
    """The loaded schema (schemathesis starts the app's lifespan) and an admin's headers."""
    app_settings = with_api(sqlite_settings, rate_limit_per_minute=0)
    admin = auth(create_api_key(engine_for(app_settings), "acme", role=Role.ADMIN).plaintext)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings)), admin
    shutdown_lifespans()


@pytest.mark.slow
def test_the_api_keeps_its_documented_promises(api: tuple[Any, dict[str, str]]) -> None:
    schema, admin = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                case.call_and_validate(
                    headers=dict(admin), excluded_checks=CROSS_FIELD.get(case.operation.label, [])
                )

            try:
                check()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid input to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
