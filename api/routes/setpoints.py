"""Set-points for the current and next intervals from the latest good plan; cheap to poll."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.context import ServiceContext
from api.deps import Ctx, IfNoneMatch, SetpointsSite
from api.responses import AUTH
from api.routes.plans import cached_answer
from api.schemas import Setpoints
from grid.schedule.setpoints import current_step, setpoints
from grid.store import plans as store
from grid.store.plans import PlanRow


def latest_loader(ctx: ServiceContext, site: str) -> Callable[[], PlanRow | None]:
    def load() -> PlanRow | None:
        return store.latest_good(ctx.engine, site)

    return load


async def latest_row(ctx: ServiceContext, site: str) -> PlanRow:
    """The latest good plan of `site` (cached for ``latest_cache_s``); 404 if there is none.
    The database is only touched (in the thread pool, once for all requests waiting for it) on
    a cache miss."""
    ttl = ctx.settings.latest_cache_s
    if ctx.cache.fresh(site):
        row: PlanRow | None = ctx.cache.latest(site, latest_loader(ctx, site), ttl)
    else:
        row = await ctx.cache.load_latest(site, latest_loader(ctx, site), ttl)
    if row is None:
        raise HTTPException(404, f"no good plan for site {site!r} yet")
    return row


async def plan_dict(ctx: ServiceContext, plan_id: str) -> dict[str, Any]:
    """The parsed body of a plan, from the cache or (in the thread pool) the store."""

    def load() -> dict[str, Any]:
        return store.plan_body(ctx.engine, plan_id)

    if ctx.cache.has_body(plan_id):
        return ctx.cache.body(plan_id, load)
    return await run_in_threadpool(ctx.cache.body, plan_id, load)


router = APIRouter(tags=["set-points"], responses=AUTH)


@router.get(
    "/sites/{site}/setpoints",
    response_model=Setpoints,
    responses={304: {"description": "Not modified (If-None-Match)."}, 404: {"description": "No good plan yet."}},
)
async def get_setpoints(
    site: SetpointsSite,
    ctx: Ctx,
    horizon: Annotated[int, Query(ge=1, le=96, description="Intervals: the current one and the next ones.")] = 4,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Per-asset set-points (kW; > 0 drawn from the grid, < 0 fed in) for the interval containing
    now and the next ones, from the latest good plan. Never empty while a good plan exists: when the
    newest run failed, the last good plan is served with ``stale: true`` and the reason.

    ``ETag`` changes with the plan, its stale state and the current interval; send it back in
    ``If-None-Match`` to get 304 while nothing changed.
    """
    row = await latest_row(ctx, site)
    body = await plan_dict(ctx, row.plan_id)
    status, headers, content = setpoints_answer(ctx, row, body, horizon, if_none_match)
    if status == 304:
        return Response(status_code=304, headers=headers)
    return Response(content=content, headers=headers)


def setpoints_answer(
    ctx: ServiceContext, row: PlanRow, body: dict[str, Any], horizon: int, if_none_match: str | None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, content) of a set-point request (see ``cached_answer``), versioned by
    plan, current interval, horizon and whether the plan has ended. Shared by the route and
    ``api.fastpath``."""
    now = ctx.clock()
    step = current_step(body, now)
    ended = int(now >= dt.datetime.fromisoformat(body["end"]))

    def build(r: PlanRow) -> bytes:
        return json.dumps(setpoints(body, now, horizon, r.stale, r.stale_reason)).encode()

    return cached_answer(ctx, row, "setpoints", build, if_none_match, extra=f"-{step}-{horizon}-{ended}")
