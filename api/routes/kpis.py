"""KPIs of the latest good plan (self-consumption, self-sufficiency, peak import, cost, CO2)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import Ctx, KpisSite
from api.responses import AUTH
from api.schemas import Kpis
from grid.store import plans as store
from grid.timeindex import iso

router = APIRouter(tags=["kpis"], responses=AUTH)


@router.get("/sites/{site}/kpis", response_model=Kpis, responses={404: {"description": "No good plan yet."}})
def kpis(site: KpisSite, ctx: Ctx) -> Kpis:
    """Planned KPIs over the latest good plan's horizon (EUR, kWh, kW, kg CO2, fractions 0..1)."""
    row = store.latest_good(ctx.engine, site)
    if row is None:
        raise HTTPException(404, f"no good plan for site {site!r} yet")
    body = ctx.cache.body(row.plan_id, lambda: store.plan_body(ctx.engine, row.plan_id))
    return Kpis(site=site, plan_id=row.plan_id, computed_at=iso(row.computed_at), stale=row.stale, kpis=body["kpis"])
