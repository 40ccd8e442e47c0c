"""Plans: list, latest good, one plan, its violations and its marginal prices.

Plan bodies are served from an in-memory cache of serialized responses per plan version (plan id +
stale state); the ``ETag`` names that version and ``If-None-Match`` answers 304.
"""

from __future__ import annotations

import json
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from api.cache import etag_matches
from api.context import ServiceContext
from api.deps import Ctx, IfNoneMatch, PlansSite
from api.params import ID_PATTERN
from api.responses import AUTH
from api.schemas import MarginalPrices, PlanList, PlanOut, PlanSummary, Violations
from grid.store import plans as store
from grid.store.plans import PlanRow
from grid.timeindex import iso

router = APIRouter(tags=["plans"], responses=AUTH)
PlanId = Annotated[str, Path(pattern=ID_PATTERN, description="A plan id (from the plan list).")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown site or plan, or no good plan yet."}}


def summary(row: PlanRow) -> dict[str, Any]:
    return {
        "plan_id": row.plan_id,
        "site": row.site_id,
        "computed_at": iso(row.computed_at),
        "start": iso(row.start),
        "end": iso(row.end),
        "status": row.status,
        "stale": row.stale,
        "stale_reason": row.stale_reason,
        "objective_eur": row.objective_eur,
        "message": row.message,
        "trigger": row.trigger,
        "duration_s": row.duration_s,
    }


def plan_etag(row: PlanRow, extra: str = "") -> str:
    """The version of a plan as served: its id and stale state (with a digest of the reason, which
    names the latest failed run)."""
    state = f"s{zlib.crc32(row.stale_reason.encode()):08x}" if row.stale else "f"
    return f'"{row.plan_id}-{state}{extra}"'


def cached_answer(
    ctx: ServiceContext, row: PlanRow, kind: str, build: Any, if_none_match: str | None, extra: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, content) of the `kind` JSON view of `row`: 304 when `if_none_match` names
    the current version, else the bytes ``build(row)`` made once per version (``plan_etag``)."""
    etag = plan_etag(row, extra)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(if_none_match, etag):
        return 304, headers, b""
    content = ctx.cache.get((kind, etag), lambda: build(row))
    return 200, {**headers, "Content-Type": "application/json"}, content


def cached_json(
    ctx: ServiceContext, row: PlanRow, kind: str, build: Any, if_none_match: str | None, extra: str = ""
) -> Response:
    """:func:`cached_answer` as a response."""
    status, headers, content = cached_answer(ctx, row, kind, build, if_none_match, extra)
    if status == 304:
        return Response(status_code=304, headers=headers)
    return Response(content=content, headers=headers)


def _row(ctx: ServiceContext, site: str, plan_id: str) -> PlanRow:
    row = store.get_plan(ctx.engine, site, plan_id)
    if row is None:
        raise HTTPException(404, f"no plan {plan_id!r} for site {site!r}")
    return row


@router.get("/sites/{site}/plans", response_model=PlanList, responses=NOT_FOUND)
def list_plans(
    site: PlansSite,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500, description="How many of the newest plans.")] = 50,
) -> PlanList:
    """The newest plans of a site (failed runs included), newest first, with status and stale flag."""
    return PlanList(site=site, plans=[PlanSummary(**summary(r)) for r in store.list_plans(ctx.engine, site, limit)])


def _full(ctx: ServiceContext) -> Any:
    def build(row: PlanRow) -> bytes:
        text = json.dumps(store.plan_body(ctx.engine, row.plan_id), allow_nan=False)
        head = json.dumps(summary(row))[:-1]
        return f'{head}, "plan": {text}}}'.encode()

    return build


@router.get(
    "/sites/{site}/plans/latest", response_model=PlanOut, responses={304: {"description": "Not modified."}, **NOT_FOUND}
)
def latest_plan(
    site: PlansSite,
    ctx: Ctx,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The latest *good* plan (a failed newer run leaves it served with ``stale: true``)."""
    row = store.latest_good(ctx.engine, site)
    if row is None:
        raise HTTPException(404, f"no good plan for site {site!r} yet")
    return cached_json(ctx, row, "plan", _full(ctx), if_none_match)


@router.get(
    "/sites/{site}/plans/{plan_id}",
    response_model=PlanOut,
    responses={304: {"description": "Not modified."}, **NOT_FOUND},
)
def get_plan(
    site: PlansSite,
    plan_id: PlanId,
    ctx: Ctx,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One plan by id, with its full body (README 'Plan format')."""
    return cached_json(ctx, _row(ctx, site, plan_id), "plan", _full(ctx), if_none_match)


@router.get("/sites/{site}/plans/{plan_id}/violations", response_model=Violations, responses=NOT_FOUND)
def violations(plan_id: PlanId, site: PlansSite, ctx: Ctx) -> Violations:
    """What the plan could not satisfy (named slack) and every §14a dimming."""
    row = _row(ctx, site, plan_id)
    body = store.plan_body(ctx.engine, row.plan_id)
    return Violations(plan_id=plan_id, violations=body.get("violations", []), dimming=body.get("dimming", []))


@router.get("/sites/{site}/plans/{plan_id}/marginal-prices", response_model=MarginalPrices, responses=NOT_FOUND)
def marginal_prices(plan_id: PlanId, site: PlansSite, ctx: Ctx) -> MarginalPrices:
    """Marginal value of energy per connection and interval (dual of the balance), EUR/kWh."""
    row = _row(ctx, site, plan_id)
    body = store.plan_body(ctx.engine, row.plan_id)
    prices = {cid: c.get("marginal_price_eur_per_kwh", []) for cid, c in body.get("connections", {}).items()}
    return MarginalPrices(plan_id=plan_id, intervals=body.get("intervals", []), connections=prices)
