"""Ids that count per tenant (runs, training jobs, work directories) never clash across tenants.

Two tenants starting a run on the same day get the same run id (``ft-pipeline-YYYYMMDD-001``);
everything derived from it must be unique per tenant, not across tenants.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tuneloop.config import Settings
from tuneloop.pipeline.service import context_for, start_run
from tuneloop.pipeline.training import open_job_row
from tuneloop.store.runs import training_job_for
from tuneloop.wiring import build_container


def test_two_tenants_train_on_the_same_day(engine: Engine, settings: Settings) -> None:
    demo = context_for(
        engine,
        settings,
        start_run(engine, settings, "demo"),
        services=build_container(settings, engine=engine),
    )
    acme = context_for(
        engine,
        settings,
        start_run(engine, settings, "acme"),
        services=build_container(settings, engine=engine),
    )
    assert demo.run_id == acme.run_id  # run ids count per tenant per day

    ids = [
        open_job_row(ctx, output_dir=ctx.workdir / "train", base_model="tiny", hyperparameters={})
        for ctx in (demo, acme)
    ]
    assert ids == [f"{demo.run_id}-train"] * 2
    with Session(engine) as session:
        jobs = [training_job_for(session, ctx.tenant_id, ctx.run_id) for ctx in (demo, acme)]
        assert [job.tenant_id for job in jobs if job is not None] == ["demo", "acme"]
    assert demo.workdir != acme.workdir  # artifacts never overwrite each other
