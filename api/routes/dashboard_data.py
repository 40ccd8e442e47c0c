"""The dashboard's own compact JSON, aggregated on the server (a few kB per page instead of the
whole plan), and its sign-in: ``POST /dashboard/session`` checks an API key and keeps it in an
HttpOnly, SameSite=Strict session cookie; every ``/dashboard/api/...`` answer reads the key from
that cookie (or from ``X-API-Key``) and honours the key's role and sites.

Rights: every page needs ``read_plans`` or ``read_kpis`` at the site (a manager reads the plan's
numbers here, never writes); the set-point table needs ``read_setpoints`` or ``read_kpis``.
Powers in kW (> 0 drawn from the grid), energies in kWh, prices in EUR/kWh, times UTC (ms since
the epoch in the series: the page shows them in Europe/Berlin).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.context import ServiceContext
from api.deps import context
from api.edge import RefusalError, request_key, verify_key
from grid.keys import Right, has_right
from grid.schedule.performance import (
    _measured_import,  # the import meter the evaluation reads
    performance_kpis,
)
from grid.schedule.setpoints import setpoints
from grid.store import plans as store
from grid.store import scenarios as scenario_store
from grid.store.apikeys import ApiKey
from grid.store.forecasts import forecast_keys, load_forecast

COOKIE = "quartiere_session"
TZ = ZoneInfo("Europe/Berlin")
#: asset types of the plan, in the order of the stacked areas, with their labels
ASSET_GROUPS = {
    "inflexible_load": "inflexible load",
    "heat_pump": "heat pumps",
    "ev_charger": "EV charging",
    "battery": "batteries",
    "pv": "PV",
}
DIGITS = 3
MEASURED_DAYS = 2

router = APIRouter(prefix="/dashboard", include_in_schema=False)
Ctx = Annotated[ServiceContext, Depends(context)]


async def dashboard_key(request: Request, ctx: Ctx) -> ApiKey:
    """The key of the session cookie (else of ``X-API-Key``/bearer), verified like any API key."""
    try:
        token = request.cookies.get(COOKIE) or request_key(request.scope["headers"])
        if not token:
            raise RefusalError(401, "not signed in")
        client = request.client.host if request.client else "unknown"
        return await verify_key(ctx, token, client)
    except RefusalError as refusal:
        raise HTTPException(refusal.status, refusal.detail, refusal.headers) from None


Key = Annotated[ApiKey, Depends(dashboard_key)]


def may_read(key: ApiKey, ctx: ServiceContext, site: str, rights: Iterable[Right]) -> None:
    """403 unless `key` covers `site` with one of `rights`; 404 for a site the service does not run."""
    if not key.covers(site):
        raise HTTPException(403, f"this key is not scoped to site {site!r}")
    wanted = list(rights)
    if not any(has_right(key.role, r) for r in wanted):
        raise HTTPException(403, f"role {key.role.value!r} may not read this page")
    if not ctx.service.knows(site):
        raise HTTPException(404, f"unknown site {site!r}")


SiteId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
PAGE_RIGHTS = (Right.READ_PLANS, Right.READ_KPIS)
#: the pages of the dashboard and the rights that open each (one of them)
PAGES: dict[str, tuple[Right, ...]] = {
    "overview": PAGE_RIGHTS,
    "grid": PAGE_RIGHTS,
    "assets": PAGE_RIGHTS,
    "forecasts": (Right.READ_FORECASTS,),
    "performance": (Right.READ_KPIS,),
    "scenarios": (Right.RUN_SCENARIOS,),
}
SCENARIO_FIELDS = ("name", "status", "scenario_status", "submitted_at", "finished_at", "message", "run_id")
UNITS = {"power_kw": "kW", "kw_per_kwp": "kW/kWp", "heat_kw": "kW thermal", "temp_degc": "degC"}
FORECAST_BEFORE = pd.Timedelta(days=1)
FORECAST_AFTER = pd.Timedelta(days=2)
PERFORMANCE_DAYS = 7


# --- sign-in ---------------------------------------------------------------------------------


@router.post("/session")
async def sign_in(
    request: Request, response: Response, ctx: Ctx, key: Annotated[str, Body(embed=True, max_length=200)]
) -> dict[str, Any]:
    """Check `key` and keep it in the session cookie; 401 (one message) when it is wrong."""
    client = request.client.host if request.client else "unknown"
    try:
        api_key = await verify_key(ctx, key.strip(), client)
    except RefusalError as refusal:
        detail = "wrong or revoked API key" if refusal.status == 401 else refusal.detail
        raise HTTPException(refusal.status, detail, refusal.headers) from None
    response.set_cookie(
        COOKIE, key.strip(), httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/dashboard"
    )
    return whoami(api_key, ctx)


@router.delete("/session")
def sign_out(response: Response) -> dict[str, str]:
    response.delete_cookie(COOKIE, path="/dashboard")
    return {"signed_out": "yes"}


@router.get("/api/me")
async def me(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Who is signed in (``signed_in: false`` without a session: the page shows the sign-in)."""
    if not request.cookies.get(COOKIE) and request_key(request.scope["headers"]) is None:
        return {"signed_in": False, "role": None, "sites": [], "can_replan": False}
    return whoami(await dashboard_key(request, ctx), ctx)


def whoami(key: ApiKey, ctx: ServiceContext) -> dict[str, Any]:
    """Role, the sites the key may see here, and what it may do."""
    sites = [s for s in ctx.service.site_ids() if key.covers(s)]
    return {
        "signed_in": True,
        "role": key.role.value,
        "sites": sites if any(has_right(key.role, r) for rights in PAGES.values() for r in rights) else [],
        "can_replan": has_right(key.role, Right.TRIGGER_REPLAN),
        "pages": [page for page, rights in PAGES.items() if any(has_right(key.role, r) for r in rights)],
    }


# --- the plan, compacted ---------------------------------------------------------------------


async def latest(ctx: ServiceContext, site: str) -> tuple[Any, dict[str, Any]]:
    row = await run_in_threadpool(store.latest_good, ctx.engine, site)
    if row is None:
        raise HTTPException(404, f"no good plan for site {site!r} yet")
    body = await run_in_threadpool(ctx.cache.body, row.plan_id, lambda: store.plan_body(ctx.engine, row.plan_id))
    return row, body


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def _r(values: Iterable[float]) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def _axis(body: dict[str, Any]) -> dict[str, Any]:
    """The time axis: first interval start (ms UTC), resolution and count (interval starts)."""
    return {"t0_ms": _ms(body["intervals"][0]), "step_min": int(body["resolution_min"]), "n": len(body["intervals"])}


def _power(asset: dict[str, Any], n: int) -> list[float]:
    values = asset.get("power_kw")
    return [float(v) for v in values[:n]] if isinstance(values, list) else [0.0] * n


def local_days(body: dict[str, Any]) -> list[tuple[str, list[int]]]:
    """The plan's intervals by local (Europe/Berlin) day: [(date, [indices])]."""
    days: dict[str, list[int]] = {}
    for i, t in enumerate(body["intervals"]):
        day = dt.datetime.fromisoformat(t).astimezone(TZ).date().isoformat()
        days.setdefault(day, []).append(i)
    return list(days.items())


def day_kpis(body: dict[str, Any], indices: list[int]) -> dict[str, Any]:
    """Planned energy of one local day (kWh), peak import per transformer against its limit, cost
    (EUR: energy, grid fees, CO2 price, less feed-in; the horizon's peak charge and battery wear
    are not per day) and CO2 (kg)."""
    h = int(body["resolution_min"]) / 60
    imp = exp = 0.0
    peaks: dict[str, Any] = {}
    for cid, c in body["connections"].items():
        ci = [float(c["import_kw"][i]) for i in indices]
        imp += sum(ci) * h
        exp += sum(float(c["export_kw"][i]) for i in indices) * h
        at = max(range(len(ci)), key=ci.__getitem__)
        limit = float(c["limit_import_kw"][indices[at]])
        peaks[cid] = {"peak_import_kw": round(ci[at], DIGITS), "limit_kw": round(limit, DIGITS), "over": ci[at] > limit}
    pv = curtailed = 0.0
    for a in body["assets"].values():
        if a.get("type") == "pv":
            pv += -sum(min(0.0, float(a["power_kw"][i])) for i in indices) * h
            curtailed += sum(float(a.get("curtailed_kw", [0.0] * len(body["intervals"]))[i]) for i in indices) * h
    consumption = imp - exp + pv  # what the site used (storage losses included)
    conns = body["connections"].values()
    priced = all("cost_eur" in c and "co2_kg" in c for c in conns)  # plans from before these series: none
    cost = sum(float(c["cost_eur"][i]) for c in conns for i in indices) if priced else None
    co2 = sum(float(c["co2_kg"][i]) for c in conns for i in indices) if priced else None
    return {
        "cost_eur": None if cost is None else round(cost, DIGITS),
        "co2_kg": None if co2 is None else round(co2, DIGITS),
        "intervals": len(indices),
        "import_kwh": round(imp, DIGITS),
        "export_kwh": round(exp, DIGITS),
        "pv_kwh": round(pv, DIGITS),
        "curtailed_kwh": round(curtailed, DIGITS),
        "self_sufficiency": round(1 - imp / consumption, 4) if consumption > 0 else None,
        "peaks": peaks,
    }


def next_run(ctx: ServiceContext) -> str | None:
    scheduler = ctx.scheduler
    if scheduler is None:
        return None
    times = [j.next_run_time for j in scheduler.get_jobs() if getattr(j, "next_run_time", None)]
    return min(times).astimezone(dt.UTC).isoformat() if times else None


@router.get("/api/sites/{site}/overview")
async def overview(site: SiteId, key: Key, ctx: Ctx) -> dict[str, Any]:
    """Plan status and age, staleness and why, next run; KPIs per local day and of the horizon;
    violations and §14a dimmings (counts and lists)."""
    may_read(key, ctx, site, PAGE_RIGHTS)
    row, body = await latest(ctx, site)
    now = ctx.clock()
    computed = dt.datetime.fromisoformat(body["computed_at"])
    end = dt.datetime.fromisoformat(body["end"])
    stale, reason = bool(row.stale), row.stale_reason or ""
    if now >= end:
        stale, reason = True, f"{reason}; plan ended at {body['end']}" if reason else f"plan ended at {body['end']}"
    today = now.astimezone(TZ).date()
    wanted = {today.isoformat(): "today", (today + dt.timedelta(days=1)).isoformat(): "tomorrow"}
    days = [{"date": day, "label": wanted.get(day, day), **day_kpis(body, idx)} for day, idx in local_days(body)]
    kpis = body.get("kpis", {})
    return {
        "site": site,
        "plan_id": body["plan_id"],
        "status": body["status"],
        "computed_at": body["computed_at"],
        # plans are stamped on the service's clock (a replay clock in the demo): age on the same clock
        "age_s": round(max(0.0, (now - computed).total_seconds())),
        "now": now.astimezone(dt.UTC).isoformat(),
        "start": body["start"],
        "end": body["end"],
        "stale": stale,
        "stale_reason": reason,
        "next_run": next_run(ctx),
        "horizon_kpis": {
            k: kpis.get(k)
            for k in (
                "cost_eur",
                "import_kwh",
                "export_kwh",
                "peak_import_kw",
                "self_sufficiency",
                "co2_kg",
                "curtailed_kwh",
                "peak_charge_eur",
                "throughput_cost_eur",
            )
        },
        "days": days,
        "violations": body.get("violations", []),
        "dimming": body.get("dimming", []),
        "warnings": body.get("warnings", []),
    }


def measured(ctx: ServiceContext, site: str, body: dict[str, Any]) -> dict[str, Any]:
    """Measured import (kW, mean per interval) of each transformer over the ``MEASURED_DAYS``
    before the plan's start (the import meter that the performance evaluation reads); null where
    nothing was measured."""
    res = pd.Timedelta(minutes=int(body["resolution_min"]))
    end = pd.Timestamp(body["start"])
    index = pd.date_range(end - pd.Timedelta(days=MEASURED_DAYS), end - res, freq=res)
    series = _measured_import(ctx.engine, site, list(body["connections"]), index, res)
    out: dict[str, list[float | None]] = {}
    for cid, s in series.items():
        values = s.reindex(index)
        out[cid] = [None if pd.isna(v) else round(float(v), DIGITS) for v in values]
    return {
        "t0_ms": int(index[0].timestamp() * 1000),
        "step_min": int(body["resolution_min"]),
        "n": len(index),
        "connections": out,
    }


@router.get("/api/sites/{site}/grid")
async def grid(site: SiteId, key: Key, ctx: Ctx) -> dict[str, Any]:
    """Per transformer: planned import/export (kW) against the limits, marginal price (EUR/kWh),
    the measured import of the days before (kW, same axis), and its feeders' planned net draw
    (kW, > 0 from the transformer) against their limits."""
    may_read(key, ctx, site, PAGE_RIGHTS)
    _row, body = await latest(ctx, site)
    n = len(body["intervals"])
    past = await run_in_threadpool(measured, ctx, site, body)
    connections = {
        cid: {
            "import_kw": _r(c["import_kw"][:n]),
            "export_kw": _r(c["export_kw"][:n]),
            "limit_import_kw": _r(c["limit_import_kw"][:n]),
            "limit_export_kw": _r(c["limit_export_kw"][:n]),
            "marginal_price_eur_per_kwh": _r(c.get("marginal_price_eur_per_kwh", [])[:n]),
            "feeders": {
                fid: {
                    "net_kw": _r(f["net_kw"][:n]),
                    "limit_import_kw": f["limit_import_kw"],
                    "limit_export_kw": f["limit_export_kw"],
                }
                for fid, f in c.get("feeders", {}).items()
            },
        }
        for cid, c in body["connections"].items()
    }
    return {
        "site": site,
        "plan_id": body["plan_id"],
        "now_ms": _ms(ctx.clock().isoformat()),
        **_axis(body),
        "connections": connections,
        "measured": past,
    }


@router.get("/api/sites/{site}/assets")
async def assets(site: SiteId, key: Key, ctx: Ctx, asset: str | None = None) -> dict[str, Any]:
    """Planned power (kW) summed per asset type (stacked areas), the list of assets, and, with
    ``asset``, that one asset's power."""
    may_read(key, ctx, site, PAGE_RIGHTS)
    _row, body = await latest(ctx, site)
    n = len(body["intervals"])
    totals: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for a in body["assets"].values():
        kind = a.get("type", "")
        if kind not in ASSET_GROUPS:
            continue
        acc = totals.setdefault(kind, [0.0] * n)
        for i, v in enumerate(_power(a, n)):
            acc[i] += v
        counts[kind] = counts.get(kind, 0) + 1
    groups = [
        {"type": kind, "label": label, "count": counts[kind], "power_kw": _r(totals[kind])}
        for kind, label in ASSET_GROUPS.items()
        if kind in totals
    ]
    one = None
    if asset is not None:
        found = body["assets"].get(asset)
        if found is None:
            raise HTTPException(404, f"no asset {asset!r} in the plan")
        one = {"id": asset, "type": found.get("type"), "power_kw": _r(_power(found, n))}
    listing = sorted((aid, a.get("type", "")) for aid, a in body["assets"].items())
    return {
        "site": site,
        "plan_id": body["plan_id"],
        "now_ms": _ms(ctx.clock().isoformat()),
        **_axis(body),
        "groups": groups,
        "assets": [{"id": i, "type": t} for i, t in listing],
        "asset": one,
    }


SETPOINT_RIGHTS = (Right.READ_SETPOINTS, Right.READ_KPIS)


async def _setpoints(ctx: ServiceContext, site: str) -> dict[str, Any]:
    row, body = await latest(ctx, site)
    return setpoints(body, ctx.clock(), len(body["intervals"]), row.stale, row.stale_reason or "")


@router.get("/api/sites/{site}/setpoints.csv")
async def setpoints_csv(site: SiteId, key: Key, ctx: Ctx) -> Response:
    """The set-points from now to the plan's end as CSV: interval_start (UTC), asset, type,
    connection, power_kw."""
    may_read(key, ctx, site, SETPOINT_RIGHTS)
    points = await _setpoints(ctx, site)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["interval_start_utc", "asset", "type", "connection", "power_kw"])
    for aid, a in sorted(points["assets"].items()):
        for t, v in zip(points["intervals"], a["power_kw"], strict=False):
            writer.writerow([t, aid, a["type"], a["connection"] or "", v])
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="setpoints-{site}-{points["plan_id"]}.csv"'},
    )


@router.post("/api/sites/{site}/replan", status_code=202)
def replan(site: SiteId, key: Key, ctx: Ctx, request: Request) -> dict[str, Any]:
    """Start a re-plan (the ``trigger_replan`` right: operators and admins; never a manager). The
    page sends ``X-Requested-With`` (a cross-site form cannot), besides the SameSite cookie."""
    if request.headers.get("x-requested-with") != "quartiere-dashboard":
        raise HTTPException(403, "re-plan only from the dashboard page")
    may_read(key, ctx, site, (Right.TRIGGER_REPLAN,))
    job, _created = ctx.jobs.submit(site)
    return {"job_id": job.job_id, "status": job.status}


def performance_window(ctx: ServiceContext, resolution_min: int = 15) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last ``PERFORMANCE_DAYS`` up to the current interval's start (service clock)."""
    end = pd.Timestamp(ctx.clock()).tz_convert("UTC").floor(f"{resolution_min}min")
    return end - pd.Timedelta(days=PERFORMANCE_DAYS), end


@router.get("/api/sites/{site}/performance")
async def performance(site: SiteId, key: Key, ctx: Ctx) -> dict[str, Any]:
    """Realised against planned over the last days (GET /api/v1/sites/{site}/performance of that
    window, without the per-asset figures): totals, per transformer, dimming."""
    may_read(key, ctx, site, PAGES["performance"])
    start, end = performance_window(ctx)
    k = await run_in_threadpool(performance_kpis, ctx.engine, site, start, end)
    return {
        "site": site,
        **{
            f: k[f]
            for f in (
                "start",
                "end",
                "resolution_min",
                "intervals",
                "evaluated_intervals",
                "not_evaluated_intervals",
                "planned_intervals",
                "connections",
                "dimming",
                "totals",
            )
        },
        "assets": len(k["assets"]),
        "dimming": {**k["dimming"], "devices": len(k["dimming"]["devices"])},
    }


def forecast_view(ctx: ServiceContext, site: str, target: str | None, quantity: str | None) -> dict[str, Any]:
    """The stored targets, and the chosen one's quantiles from a day before now to two days after
    (latest run per interval, as GET /api/v1/sites/{site}/forecasts answers)."""
    stored = forecast_keys(ctx.engine, site)
    targets = [{"target": t, "quantity": q, "unit": UNITS.get(q, q)} for t, q in stored]
    out: dict[str, Any] = {"site": site, "targets": targets, "forecast": None}
    if not stored:
        return out
    if target is None:
        chosen_target, chosen_quantity = next((k for k in stored if k[0] == "site"), stored[0])
    else:
        found = [k for k in stored if k[0] == target and (quantity is None or k[1] == quantity)]
        if not found:
            raise HTTPException(404, f"no forecast of {target!r} stored for site {site!r}")
        chosen_target, chosen_quantity = found[0]
    now = pd.Timestamp(ctx.clock()).tz_convert("UTC").floor("15min")
    frame = load_forecast(
        ctx.engine, site, chosen_target, now - FORECAST_BEFORE, now + FORECAST_AFTER, quantity=chosen_quantity
    )
    index = frame.index
    out["forecast"] = {
        "target": chosen_target,
        "quantity": chosen_quantity,
        "unit": UNITS.get(chosen_quantity, chosen_quantity),
        "t0_ms": int(index[0].timestamp() * 1000),
        "step_min": int((index[1] - index[0]) / pd.Timedelta(minutes=1)) if len(index) > 1 else 15,
        "n": len(index),
        "now_ms": int(now.timestamp() * 1000),
        "levels": [round(float(c), 6) for c in frame.columns],
        "values": [[None if pd.isna(v) else round(float(v), DIGITS) for v in frame[c]] for c in frame.columns],
    }
    return out


@router.get("/api/sites/{site}/forecasts")
async def forecasts(
    site: SiteId, key: Key, ctx: Ctx, target: str | None = None, quantity: str | None = None
) -> dict[str, Any]:
    """Quantile forecasts of one stored target (default: the site load) around now; see
    :func:`forecast_view`."""
    may_read(key, ctx, site, PAGES["forecasts"])
    return await run_in_threadpool(forecast_view, ctx, site, target, quantity)


@router.get("/api/sites/{site}/scenarios")
async def scenarios(site: SiteId, key: Key, ctx: Ctx) -> dict[str, Any]:
    """The newest scenario runs of the site (as GET /api/v1/sites/{site}/scenarios, without URLs)."""
    may_read(key, ctx, site, PAGES["scenarios"])
    rows = await run_in_threadpool(scenario_store.list_runs, ctx.engine, site, 50)
    runs = []
    for r in rows:
        row = {
            "run_id": r.run_id,
            "name": r.name,
            "status": r.status,
            "scenario_status": r.scenario_status,
            "message": r.message,
            "submitted_at": r.submitted_at,
            "finished_at": r.finished_at,
        }
        runs.append({f: v.astimezone(dt.UTC).isoformat() if isinstance(v, dt.datetime) else v for f, v in row.items()})
    return {"site": site, "fields": list(SCENARIO_FIELDS), "runs": runs}
