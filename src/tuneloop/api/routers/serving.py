"""The serving side: ``/v1/route``, and the OpenAI-compatible ``/v1/chat/completions`` and
``/v1/models`` (the official ``openai`` client works with ``base_url=<tuneloop>/v1`` and a
tuneloop API key as its ``api_key``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tuneloop.api.auth import ServingOperator, Viewer, admit
from tuneloop.api.bodies import json_body, read_body
from tuneloop.api.schemas.common import AUTHENTICATED_RESPONSES, BODY_RESPONSES, ErrorResponse
from tuneloop.api.schemas.serving import ModelListOut, RouteIn, RouteOut
from tuneloop.domain.keys import Role
from tuneloop.resilience.breaker import CircuitOpenError
from tuneloop.serving.chat import ChatCompletionRequest
from tuneloop.serving.proxy import Decision
from tuneloop.serving.service import Serving
from tuneloop.serving.upstream import UpstreamUnavailableError

router = APIRouter(prefix="/v1", tags=["serving"], responses=AUTHENTICATED_RESPONSES)

_PROXY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `chat.completion`, or with `stream: true` a `text/event-stream` of "
        "`chat.completion.chunk`s ending in `data: [DONE]`. Headers: "
        "`X-Tuneloop-Generation-Id`, `X-Tuneloop-Model` (MODEL@VERSION), "
        "`X-Tuneloop-Route-Source`; when an A/B test routed the call also "
        "`X-Tuneloop-Experiment` and `X-Tuneloop-Arm`.",
        "content": {"text/event-stream": {}},
    },
    502: {"model": ErrorResponse, "description": "The model's upstream could not be reached."},
    503: {"model": ErrorResponse, "description": "The upstream's circuit breaker is open."},
}


def serving_of(request: Request) -> Serving:
    serving: Serving | None = getattr(request.app.state, "serving", None)
    if serving is None:
        raise RuntimeError("the app has not started: use it inside its lifespan")
    return serving


async def get_serving(request: Request) -> Serving:  # async: no threadpool hop
    return serving_of(request)


ServingDep = Annotated[Serving, Depends(get_serving)]


@router.post(
    "/route",
    response_model=RouteOut,
    responses=BODY_RESPONSES,
    summary="The model for a unit",
    openapi_extra={"requestBody": json_body(RouteIn)},
)
async def route(request: Request) -> Response:
    """Deterministic and sticky: a running experiment's arm, else the active rollout's share,
    else the champion. Send `model` as the `model_id` of the unit's events (and
    `experiment_key`/`arm` when given). 404 when the tenant has nothing to serve."""
    # The hottest route takes no parameters, so FastAPI solves nothing for it: the checks
    # and the body are read here, with the same answers (401/403/429, then 422) as a route
    # with ``Viewer`` and a ``RouteIn`` body would give (bench/route.py measures it).
    principal = await admit(request, Role.VIEWER, serving=True)
    body = await read_body(request, RouteIn)
    serving = serving_of(request)
    table = serving.routes.cached(principal.tenant_id)
    if table is None:
        table = await run_in_threadpool(serving.routes.table, principal.tenant_id)
    found = table.route(body.unit_id)
    return JSONResponse(
        {
            "model": found.model,
            "model_id": found.model_id,
            "version": found.version,
            "source": found.source,
            "experiment_key": found.experiment_key,
            "deployment_id": found.deployment_id,
            "arm": found.arm,
        }
    )


@router.get("/models", summary="Models a chat completion may ask for (OpenAI format)")
def list_models(principal: Viewer, serving: ServingDep) -> ModelListOut:
    """`auto` (tuneloop routes the request's `user`) and each registered `MODEL@VERSION`."""
    return ModelListOut.model_validate({"data": serving.model_list(principal.tenant_id)})


@router.post(
    "/chat/completions",
    responses={**BODY_RESPONSES, **_PROXY_RESPONSES},
    summary="OpenAI-compatible chat completion, routed and recorded",
    response_model=None,
)
async def chat_completions(
    body: ChatCompletionRequest,
    principal: ServingOperator,
    serving: ServingDep,
    x_tuneloop_unit: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=128,
            description="The unit to route when the body has no `user`.",
        ),
    ] = None,
) -> Response:
    """`model: "auto"` routes the unit (`user`, else the `X-Tuneloop-Unit` header) like
    `/v1/route`; `model: "MODEL@VERSION"` pins a version. The call goes to the model's
    upstream or the local model server, and one `generation` event (tokens, latency, cost,
    error) is recorded; send engagement later as `outcome` events with the
    `X-Tuneloop-Generation-Id` as `generation_id`."""
    proxy = serving.proxy
    decision = await run_in_threadpool(proxy.decide, principal.tenant_id, body, x_tuneloop_unit)
    headers = decision.headers()
    try:
        if body.stream:
            opened = await proxy.open_stream(decision, body)
            if opened.events is None:
                return _answer(decision, opened.status, opened.body)
            return StreamingResponse(opened.events, media_type="text/event-stream", headers=headers)
        reply = await proxy.complete(decision, body)
    except CircuitOpenError as exc:
        return _failed(decision, 503, "circuit_open", str(exc), retry=exc.retry_after_s)
    except UpstreamUnavailableError as exc:
        return _failed(decision, 502, "upstream_unavailable", str(exc))
    return _answer(decision, reply.status, reply.body, retry_after=reply.retry_after)


def _answer(
    decision: Decision, status: int, body: Any, *, retry_after: str | None = None
) -> JSONResponse:
    """The upstream's answer as it came, except that its 401/403 (tuneloop's credentials
    for the upstream are wrong) is a 502: passed on, the client would blame its own key."""
    if status in (401, 403):
        return _failed(
            decision,
            502,
            "upstream_refused",
            f"the model's upstream refused tuneloop's credentials ({status}): check the "
            "api_key of its serving.upstreams entry or of the openai section",
        )
    headers = decision.headers()
    if retry_after is not None:  # the upstream's back-pressure, for the client to honour
        headers["Retry-After"] = retry_after
    return JSONResponse(body, status_code=status, headers=headers)


def _failed(
    decision: Decision, status: int, kind: str, message: str, *, retry: float | None = None
) -> JSONResponse:
    headers = decision.headers()
    if retry is not None:
        headers["Retry-After"] = str(max(1, round(retry)))
    body = {"error": {"type": kind, "message": message, "details": {}}}
    return JSONResponse(body, status_code=status, headers=headers)
