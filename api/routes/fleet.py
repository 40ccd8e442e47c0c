"""``GET /fleet/status``: the last planning run of every site, late and failing sites first (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Ctx, CurrentKey, require_right
from api.fleet_schemas import FleetSite, FleetStatusOut
from api.responses import AUTH
from grid.fleet.status import is_late
from grid.keys import Right

router = APIRouter(tags=["service"], responses=AUTH)


@router.get("/fleet/status", response_model=FleetStatusOut)
def fleet_status(ctx: Ctx, key: CurrentKey) -> FleetStatusOut:
    """For each site the key covers: its last run (when, which period, how long, status and
    message, warm or cold, which worker, how long it waited for one) and whether the site is
    *late* (no good plan for the period before the current one) or *failing* (its last run
    failed). Sites the service has not planned since it started count as late."""
    require_right(key, Right.READ_FLEET)
    service = ctx.service
    now = ctx.clock()
    every = ctx.settings.replan_every_min
    runs = service.status.snapshot()
    rows = []
    for site_id in sorted(s for s in service.sites if key.covers(s)):
        run = runs.get(site_id)
        rows.append(
            FleetSite(
                site=site_id,
                late=is_late(run, now, every),
                failing=run is not None and run.failures_in_a_row > 0,
                status=run.status if run else None,
                message=run.message if run else "",
                last_run_at=run.started_at if run else None,
                period_start=run.period_start if run else None,
                last_good_period=run.last_good_period if run else None,
                duration_s=run.duration_s if run else None,
                mode=None if run is None else ("unknown" if run.warm is None else "warm" if run.warm else "cold"),
                worker=run.worker if run else None,
                queue_wait_s=run.queue_wait_s if run else None,
                failures_in_a_row=run.failures_in_a_row if run else 0,
            )
        )
    rows.sort(key=lambda r: (not (r.late or r.failing), r.site))
    executor = (
        "dask" if service.executor is not None else "process" if service.config.solve_in_subprocess else "service"
    )
    return FleetStatusOut(
        now=now,
        replan_every_min=every,
        executor=executor,
        sites=rows,
        late=[r.site for r in rows if r.late],
        failing=[r.site for r in rows if r.failing],
    )
