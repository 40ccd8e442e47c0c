"""/healthz (database, scheduler, MQTT) and /metrics (Prometheus); no key needed."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from api.deps import Ctx
from api.schemas import Health
from grid.store.plans import last_successful_run
from grid.timeindex import iso

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health, "description": "Database down."}})
def healthz(ctx: Ctx) -> JSONResponse:
    """Database reachable, the scheduler's last successful run and its age (s), MQTT connection."""
    last = None
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        database = True
        last = last_successful_run(ctx.engine)
    except SQLAlchemyError:
        database = False
    age = (ctx.clock() - last.finished_at).total_seconds() if last and last.finished_at else None
    scheduler = ctx.scheduler is not None and bool(ctx.scheduler.running)
    mqtt = None if ctx.publisher is None else bool(ctx.publisher.connected)
    health = Health(
        status="ok" if database else "degraded",
        database=database,
        scheduler_running=scheduler,
        last_successful_run=iso(last.finished_at) if last and last.finished_at else None,
        last_successful_run_age_s=age,
        mqtt_connected=mqtt,
    )
    return JSONResponse(status_code=200 if database else 503, content=health.model_dump())


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics() -> Response:
    """Prometheus metrics: plan durations and statuses, ingested records, request latency."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
