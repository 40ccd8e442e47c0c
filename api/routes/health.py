"""/healthz (database, scheduler, MQTT) and /metrics (Prometheus); no key needed."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from api.context import ServiceContext
from api.deps import Ctx
from api.schemas import Health
from grid.store.plans import last_successful_run
from grid.timeindex import iso

router = APIRouter(tags=["service"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Database down."}},
)
def healthz(ctx: Ctx) -> JSONResponse:
    """Database reachable, the scheduler's last successful run and its age (s), MQTT connection.

    ``status`` is ``degraded`` (with ``problems`` saying why) when the database is unavailable
    (then 503), when the scheduler's last good run is older than twice its interval, or when the
    MQTT broker is disconnected or stalled (messages unacknowledged past the publish deadline).
    """
    last = None
    problems: list[str] = []
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        last = last_successful_run(ctx.engine)
    except SQLAlchemyError:
        ctx.outage.down()
        problems.append(ctx.outage.reason)
    else:
        ctx.outage.up()
    database = not problems
    age = (ctx.clock() - last.finished_at).total_seconds() if last and last.finished_at else None
    scheduler = ctx.scheduler is not None and bool(ctx.scheduler.running)
    problems += _scheduler_problems(ctx, scheduler, age)
    mqtt = stalled = unacked = None
    if ctx.publisher is not None:
        mqtt = bool(ctx.publisher.connected)
        stalled = bool(getattr(ctx.publisher, "stalled", False))
        unacked = getattr(ctx.publisher, "unacked", None)
        if not mqtt:
            problems.append("MQTT broker not connected")
        if stalled:
            deadline = getattr(ctx.publisher, "deadline_s", 0.0)
            problems.append(f"MQTT broker stalled: set-point messages unacknowledged for more than {deadline:g} s")
    health = Health(
        status="degraded" if problems else "ok",
        database=database,
        scheduler_running=scheduler,
        last_successful_run=iso(last.finished_at) if last and last.finished_at else None,
        last_successful_run_age_s=age,
        mqtt_connected=mqtt,
        mqtt_stalled=stalled,
        mqtt_unacked=unacked,
        problems=problems,
    )
    return JSONResponse(status_code=200 if database else 503, content=health.model_dump())


def _scheduler_problems(ctx: ServiceContext, running: bool, age_s: float | None) -> list[str]:
    """The scheduler is off or its last good run is older than twice the interval (counted from
    the service's start while there was none)."""
    settings = ctx.settings
    if not settings.scheduler_enabled:
        return []
    if not running:
        return ["scheduler not running"]
    limit_s = 2 * 60 * settings.replan_every_min
    if age_s is None and ctx.started_at is not None:
        waited_s = (ctx.clock() - ctx.started_at).total_seconds()
        if waited_s > limit_s:
            return [f"no successful scheduled run in the {waited_s:.0f} s since the start"]
    elif age_s is not None and age_s > limit_s:
        return [
            f"last successful scheduled run {age_s:.0f} s ago, more than twice the "
            f"{settings.replan_every_min} min interval"
        ]
    return []


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(ctx: Ctx) -> Response:
    """Prometheus metrics: plan durations and statuses, ingested records, request latency, the
    last run of each site (read back from the store after a restart, before any run or
    ``/api/v1/fleet/status`` request)."""
    ctx.service.status.snapshot()  # the first call loads the stored runs and sets their gauges
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
