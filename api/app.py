"""The FastAPI application factory: settings -> store -> planning service -> (scheduler, MQTT) ->
routes under ``/api/v1``; ``/healthz`` and ``/metrics`` at the root; OpenAPI at ``/docs``. Every
request passes :class:`api.edge.EdgeMiddleware` first (keys, body limits, security headers)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from prometheus_client import Histogram
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.cache import ResponseCache
from api.context import Clock, ReplayClock, ServiceContext, wall_clock
from api.edge import EdgeMiddleware
from api.fastpath import SetpointsFastPath
from api.jobs import JobManager
from api.outage import DatabaseOutage
from api.ratelimit import WrongKeyLimiter
from api.routes import (
    dashboard,
    dashboard_compress,
    dashboard_data,
    dashboard_scenarios,
    ev_sessions,
    fleet,
    forecast_accuracy,
    forecasts,
    health,
    jobs,
    kpis,
    performance,
    plans,
    readings,
    scenarios,
    setpoints,
    signals,
    sites,
    telemetry,
)
from api.settings import Settings
from api.uploads import clean_stale_uploads
from grid.domain import load_site
from grid.schedule.publish import MqttPublisher, Publisher
from grid.schedule.runner import InputsProvider, Planner, PlanningConfig, PlanningService, file_inputs
from grid.schedule.scheduler import make_scheduler
from grid.store import site_versions
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.store.sites import register_site
from models.solve import plan_site
from models.warm import plan_site_warm

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
REQUEST_LATENCY = Histogram(
    "quartiere_http_request_duration_seconds", "HTTP request latency, seconds.", ["method", "route", "status"]
)

DESCRIPTION = """
Neighbourhood load management: dispatch plans, per-asset set-points, meter readings.

**Conventions (everywhere).**
* Power in **kW**: `power_kw > 0` is drawn from the grid node (consumption, charging),
  `power_kw < 0` is fed in (generation, discharging). Grid `import_kw` and `export_kw` are both >= 0.
* Energy in **kWh**, prices in **EUR/kWh**, CO2 in g/kWh, temperatures in degC.
* Times are ISO 8601; answers are in **UTC with offset**. A value stamped `t` covers the interval
  **[t, t + resolution_min)** (15 minutes by default). Local days in Europe/Berlin have 92, 96 or 100
  quarter-hours.

**Auth.** Send an API key in `X-API-Key` (or `Authorization: Bearer <key>`; either header twice:
400; with both, `X-API-Key` counts). The key is checked before the body is read; bodies are
limited (413). Too many wrong keys from one address answer 429 with `Retry-After`. Roles: `operator`
(plans, set-points, re-plan), `manager` (readings, forecasts, KPIs), `planner` (scenarios), `ingest` (write
readings), `admin` (all). Each key is scoped to sites. 401: missing or wrong key; 403: no right or
other site; 404: unknown site.

**Errors.** Bad input answers 422 with `detail: [{loc, msg, type, input}]`, `loc` naming the field,
payload path or file line.
"""


class LatencyMiddleware:
    """Request latency per method, route template and status into ``REQUEST_LATENCY`` (a plain
    ASGI middleware: no per-request task as with ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", "unmatched")
            if route is not None and scope["path"].startswith(API_PREFIX) and not path.startswith(API_PREFIX):
                path = API_PREFIX + path  # routers report their paths without the mount prefix
            labels = (scope["method"], path, status[0])
            child = self.children.get(labels)
            if child is None:  # labels() costs a lock and a tuple of strings: once per combination
                child = self.children[labels] = REQUEST_LATENCY.labels(labels[0], path, str(status[0]))
            child.observe(time.perf_counter() - t0)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock = wall_clock,
    inputs_provider: InputsProvider = file_inputs,
    planner: Planner = plan_site_warm,
    publisher: Publisher | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app. `engine`, `clock`, `inputs_provider`, `planner` and `publisher` replace the
    defaults (tests, forecasting); the scheduler and MQTT start with the app's lifespan when the
    settings enable them."""
    settings = settings or Settings()
    if clock is wall_clock and settings.clock_start is not None:
        clock = ReplayClock(settings.clock_start)
    engine = engine or make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    config = PlanningConfig(
        settings.horizon_hours,
        settings.solver_time_limit_s,
        settings.setpoint_intervals,
        settings.solve_in_subprocess and planner in (plan_site, plan_site_warm),  # picklable by name
    )
    service = PlanningService(engine, settings.sites, config, inputs_provider, planner, publisher)
    for site_id, path in settings.sites.items():
        site = load_site(path)
        if site.id != site_id:
            raise ValueError(f"GRID_SITES: {path} describes site {site.id!r}, not {site_id!r}")
        if site_versions.version_of(engine, site_id) is None:  # else its stored version counts, registered
            register_site(engine, site)
    outage = DatabaseOutage(clock)
    ctx = ServiceContext(
        settings=settings,
        engine=engine,
        service=service,
        jobs=JobManager(service, clock),
        cache=ResponseCache(outage=outage),
        clock=clock,
        publisher=publisher,
        outage=outage,
        wrong_keys=WrongKeyLimiter(settings.wrong_key_per_s, settings.wrong_key_burst),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if ctx.publisher is None and settings.mqtt_enabled:
            ctx.publisher = service.publisher = MqttPublisher(
                settings.mqtt_host,
                settings.mqtt_port,
                settings.mqtt_prefix,
                auth=settings.broker_auth(),
                deadline_s=settings.mqtt_publish_deadline_s,
            )
        ctx.started_at = clock()
        if settings.dask_scheduler is not None or settings.dask_workers > 0:
            from grid.fleet.executor import DaskExecutor  # Dask loads only for a fleet

            service.executor = DaskExecutor.start(
                settings.dask_scheduler, max(1, settings.dask_workers), settings.fleet_model_budget_mb
            )
        clean_stale_uploads()  # left by a killed process
        service.recover(clock())  # runs a killed process left `running`: failed, planned again
        if settings.scheduler_enabled:
            ctx.scheduler = make_scheduler(service, settings.replan_every_min, settings.misfire_grace_s, clock=clock)
            ctx.scheduler.start()
        # Everything loaded so far (the imported libraries: ~2x10^5 objects) lives as long as the
        # process. Moved out of the cyclic collector's sight, a full collection no longer stalls
        # every request for ~0.1 s now and then (objects made later are collected as usual).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if ctx.scheduler is not None:
                ctx.scheduler.shutdown(wait=True)
            ctx.jobs.shutdown()
            service.close()
            if isinstance(ctx.publisher, MqttPublisher):
                ctx.publisher.close()

    service.listeners.append(ctx.cache.invalidate)
    app = FastAPI(
        title="Quartiere",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        # FastAPI's OpenTelemetry bridge asks the OpenTelemetry API on every request whether a
        # provider is configured (~25 us, a third of a set-point poll); the service reports through
        # /metrics (Prometheus) and turns the bridge on only when asked to.
        telemetry=TelemetryConfig(
            tracing=settings.opentelemetry, metrics=settings.opentelemetry, logs=settings.opentelemetry
        ),
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (plans, jobs, setpoints, readings, kpis, forecast_accuracy, forecasts, scenarios):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(telemetry.router, prefix=API_PREFIX)
    app.include_router(ev_sessions.router, prefix=API_PREFIX)
    app.include_router(signals.router, prefix=API_PREFIX)
    app.include_router(performance.router, prefix=API_PREFIX)
    app.include_router(sites.router, prefix=API_PREFIX)
    app.include_router(fleet.router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_data.router)
    app.include_router(dashboard_scenarios.router)

    # gzip inside the fast path and the edge: their answers and refusals pass as they are
    app.add_middleware(dashboard_compress.Compression)
    app.add_middleware(SetpointsFastPath, ctx=ctx)  # inside the latency middleware: measured too
    app.add_middleware(EdgeMiddleware, ctx=ctx)  # keys, body limits and headers before anything reads the body
    app.add_middleware(LatencyMiddleware)
    return app
