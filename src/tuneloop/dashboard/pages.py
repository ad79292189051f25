"""The dashboard's pages (GET): each reads one view function and renders one template.

A page with live parts has a ``/live`` twin that renders just that part; the dashboard's
script fetches it every few seconds while the object is active (short polling).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from tuneloop.dashboard import views
from tuneloop.dashboard.access import SessionDep, scope_of
from tuneloop.dashboard.rendering import HtmlErrorRoute, render

router = APIRouter(prefix="/ui", route_class=HtmlErrorRoute, include_in_schema=False)

ObjectId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
DatasetId = Annotated[str, Path(min_length=6, max_length=64, pattern=r"^[0-9a-f]+$")]
Offset = Annotated[int, Query(ge=0)]


@router.get("", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep) -> HTMLResponse:
    data = views.overview(scope_of(request, session))
    return render(request, "overview.html", **data)


@router.get("/live", response_class=HTMLResponse)
def overview_live(request: Request, session: SessionDep) -> HTMLResponse:
    data = views.overview(scope_of(request, session))
    return render(request, "_overview_live.html", **data)


@router.get("/runs", response_class=HTMLResponse)
def runs(
    request: Request,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    offset: Offset = 0,
) -> HTMLResponse:
    data = views.runs(scope_of(request, session), status=status or None, offset=offset)
    return render(request, "runs.html", status=status or "", offset=offset, **data)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run(request: Request, session: SessionDep, run_id: ObjectId) -> HTMLResponse:
    return render(request, "run.html", **views.run(scope_of(request, session), run_id))


@router.get("/runs/{run_id}/live", response_class=HTMLResponse)
def run_live(request: Request, session: SessionDep, run_id: ObjectId) -> HTMLResponse:
    return render(request, "_run_live.html", **views.run(scope_of(request, session), run_id))


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request, session: SessionDep, offset: Offset = 0) -> HTMLResponse:
    items = views.experiments_list(scope_of(request, session), offset=offset)
    return render(request, "experiments.html", items=items, offset=offset)


@router.get("/experiments/{key}", response_class=HTMLResponse)
def experiment(request: Request, session: SessionDep, key: ObjectId) -> HTMLResponse:
    data = views.experiment(scope_of(request, session), key)
    return render(request, "experiment.html", **data)


@router.get("/experiments/{key}/live", response_class=HTMLResponse)
def experiment_live(request: Request, session: SessionDep, key: ObjectId) -> HTMLResponse:
    data = views.experiment(scope_of(request, session), key)
    return render(request, "_experiment_live.html", **data)


@router.get("/deployments", response_class=HTMLResponse)
def deployments(request: Request, session: SessionDep, offset: Offset = 0) -> HTMLResponse:
    data = views.deployments_list(scope_of(request, session), offset=offset)
    return render(request, "deployments.html", offset=offset, **data)


@router.get("/deployments/{deployment_id}", response_class=HTMLResponse)
def deployment(request: Request, session: SessionDep, deployment_id: ObjectId) -> HTMLResponse:
    data = views.deployment(scope_of(request, session), deployment_id)
    return render(request, "deployment.html", **data)


@router.get("/deployments/{deployment_id}/live", response_class=HTMLResponse)
def deployment_live(request: Request, session: SessionDep, deployment_id: ObjectId) -> HTMLResponse:
    data = views.deployment(scope_of(request, session), deployment_id)
    return render(request, "_deployment_live.html", **data)


@router.get("/datasets", response_class=HTMLResponse)
def datasets(request: Request, session: SessionDep, offset: Offset = 0) -> HTMLResponse:
    data = views.datasets_list(scope_of(request, session), offset=offset)
    return render(request, "datasets.html", offset=offset, **data)


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset(request: Request, session: SessionDep, dataset_id: DatasetId) -> HTMLResponse:
    data = views.dataset(scope_of(request, session), dataset_id)
    return render(request, "dataset.html", **data)


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, session: SessionDep) -> HTMLResponse:
    return render(request, "models.html", **views.models(scope_of(request, session)))


@router.get("/health", response_class=HTMLResponse)
def health(request: Request, session: SessionDep) -> HTMLResponse:
    return render(request, "health.html", **views.health(scope_of(request, session)))
