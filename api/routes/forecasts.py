"""Forecasts: what is stored for a site, and one target's quantiles over a period as JSON or CSV.

Forecasts are kept as beliefs (:mod:`grid.store.forecasts`): every run with its issue time. Per
interval the answer takes the latest run issued at or before ``as_of`` (default: every run), so the
forecast "as it was known then" can be read back.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from api.context import ServiceContext
from api.deps import Ctx, site_access
from api.forecast_schemas import ForecastInterval, ForecastOut, ForecastRun, ForecastTarget, ForecastTargets
from api.params import INSTANT_SCHEMA, check_period, invalid, parse_instant
from api.responses import AUTH
from grid.errors import InputError
from grid.keys import Right
from grid.store.forecasts import StoredForecast, load_forecast, stored_forecasts, target_quantities
from grid.store.sites import get_site
from grid.timeindex import iso

router = APIRouter(tags=["forecasts"], responses=AUTH)
ForecastsSite = Annotated[str, Depends(site_access(Right.READ_FORECASTS))]

#: the longest period one request may ask for (as for readings)
MAX_SPAN = pd.Timedelta(days=400)
#: a quantile level in 0..1 as the ``quantiles`` parameter takes it (``0.5``, ``.5``, ``1``, ``1.0``)
_LEVEL = r"(0(\.[0-9]*)?|1(\.0*)?|\.[0-9]+)"
QUANTILES_PATTERN = rf"^ *{_LEVEL} *(, *{_LEVEL} *)*$"
#: quantity -> unit shown next to the values
UNITS = {"power_kw": "kW", "kw_per_kwp": "kW/kWp", "heat_kw": "kW (thermal)", "temp_degc": "degC"}
NOT_FOUND = "Unknown site, or nothing stored for that target, quantity, quantile or period."
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The forecast: JSON, or CSV with `format=csv` or `Accept: text/csv` (one row per interval: "
        "`start,issued_at,model,<quantity>_q<level>...`).",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    404: {"description": NOT_FOUND},
    422: {"description": "Bad query: `detail[].loc` names the parameter."},
}


def parse_quantiles(text: str) -> list[float]:
    """``0.1,0.5,0.9`` -> [0.1, 0.5, 0.9] (levels in 0..1, ascending, without repeats)."""
    levels: set[float] = set()
    for part in text.split(","):
        try:
            level = float(part.strip())
        except ValueError:
            raise invalid("quantiles", "comma-separated quantile levels in 0..1, e.g. 0.1,0.5,0.9", text) from None
        if not math.isfinite(level) or not 0.0 <= level <= 1.0:
            raise invalid("quantiles", "quantile levels must lie in 0..1", text)
        levels.add(round(level, 6))
    return sorted(levels)


def _target_out(item: StoredForecast, resolution_min: int) -> ForecastTarget:
    return ForecastTarget(
        target=item.target,
        quantity=item.quantity,
        unit=UNITS.get(item.quantity, item.quantity),
        start=iso(item.first_ts),
        end=iso(item.last_ts + pd.Timedelta(minutes=resolution_min)),
        first_issued_at=iso(item.first_issued_at),
        last_issued_at=iso(item.last_issued_at),
        runs=item.runs,
        models=item.models,
        quantiles=item.quantiles,
    )


@router.get("/sites/{site}/forecasts/targets", response_model=ForecastTargets)
def forecast_targets(site: ForecastsSite, ctx: Ctx) -> ForecastTargets:
    """What forecasts are stored for the site: per target and quantity, the span covered, the runs,
    models and quantile levels. Targets: ``site`` (household load, kW), ``connection:<id>`` (kW),
    ``pv:<array id>`` (kW per kWp), ``heat:<heat pump id>`` (kW thermal), ``weather`` (degC)."""
    resolution_min = get_site(ctx.engine, site).resolution_min
    items = stored_forecasts(ctx.engine, site)
    return ForecastTargets(
        site=site, resolution_min=resolution_min, targets=[_target_out(i, resolution_min) for i in items]
    )


def _wants_csv(fmt: str | None, accept: str) -> bool:
    """``format`` decides; else the first of application/json or text/csv named in Accept."""
    if fmt is not None:
        return fmt == "csv"
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "text/csv"):
            return media == "text/csv"
    return False


def _quantity(ctx: ServiceContext, site: str, target: str) -> str:
    """The only quantity stored for `target`; 404 when there is none, 422 when there are several."""
    quantities = target_quantities(ctx.engine, site, target)
    if not quantities:
        known = ", ".join(sorted({s.target for s in stored_forecasts(ctx.engine, site)})) or "none"
        raise HTTPException(404, f"no forecasts stored for target {target!r} of site {site!r} (stored: {known})")
    if len(quantities) > 1:
        raise invalid("quantity", f"target {target!r} has several quantities stored: pass one of {quantities}", None)
    return quantities[0]


@router.get("/sites/{site}/forecasts", response_model=ForecastOut, responses=CSV_RESPONSE)
def get_forecast(
    site: ForecastsSite,
    ctx: Ctx,
    request: Request,
    start: Annotated[
        str,
        Query(
            description="Period start, RFC 3339 with UTC offset.",
            examples=["2026-01-14T00:00:00+01:00"],
            json_schema_extra=INSTANT_SCHEMA,
        ),
    ],
    end: Annotated[
        str,
        Query(
            description=f"Period end (exclusive), RFC 3339 with UTC offset; after `start`, at most {MAX_SPAN.days} "
            "days later.",
            json_schema_extra=INSTANT_SCHEMA,
        ),
    ],
    target: Annotated[
        str, Query(max_length=128, description="site, connection:<id>, pv:<array id>, heat:<heat pump id>, weather.")
    ] = "site",
    quantity: Annotated[
        str | None, Query(max_length=32, description="power_kw, kw_per_kwp, heat_kw, temp_degc; default: the target's.")
    ] = None,
    quantiles: Annotated[
        str | None,
        Query(
            max_length=1000,
            pattern=QUANTILES_PATTERN,
            description="Levels in 0..1, e.g. `0.1,0.5,0.9`; default: all stored.",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        Query(
            description="The forecast as known then: only runs issued at or before (RFC 3339 with offset).",
            json_schema_extra=INSTANT_SCHEMA,
        ),
    ] = None,
    model: Annotated[str | None, Query(max_length=64, description="Only runs of this model.")] = None,
    fmt: Annotated[
        Literal["json", "csv"] | None, Query(alias="format", description="Default: by Accept; JSON.")
    ] = None,
) -> Any:
    """Quantile forecast of one target over [start, end), snapped outward to the site's grid.

    Per interval the values come from the latest run issued at or before ``as_of`` (default: every
    stored run); ``runs`` names each run (``issued_at``, ``model``) and every interval points at its
    run. Intervals no run covers have ``run: null`` and null values. Power in kW, positive = drawn
    from the grid. 404 when nothing is stored for the target, quantile levels or period.
    """
    first, last = parse_instant(start, "start"), parse_instant(end, "end")
    known_at = parse_instant(as_of, "as_of") if as_of is not None else None
    check_period(start, end, MAX_SPAN.to_pytimedelta())
    levels = parse_quantiles(quantiles) if quantiles is not None else None
    resolution_min = get_site(ctx.engine, site).resolution_min
    step = f"{resolution_min}min"
    first, last = first.floor(step), last.ceil(step)
    quantity = quantity if quantity is not None else _quantity(ctx, site, target)
    try:
        frame = load_forecast(ctx.engine, site, target, first, last, known_at, quantity, model, resolution_min)
    except InputError as err:
        if err.where == "model":
            raise invalid("model", err.what, err.value if err.has_value else model) from None
        raise
    period = f"[{iso(first)}, {iso(last)})" + (f" as known at {iso(known_at)}" if known_at is not None else "")
    if frame.empty or frame.columns.empty or not frame.notna().to_numpy().any():
        raise HTTPException(404, f"no forecast of {target!r} ({quantity}) stored for site {site!r} over {period}")
    issued, models = frame.attrs["issued_at"], frame.attrs["model"]
    stored_levels = [round(float(c), 6) for c in frame.columns]
    if levels is not None:
        missing = [q for q in levels if q not in stored_levels]
        if missing:
            raise HTTPException(
                404, f"quantile levels {missing} not stored for {target!r} over {period} (stored: {stored_levels})"
            )
        frame = frame.iloc[:, [stored_levels.index(q) for q in levels]]
    else:
        levels = stored_levels
    frame.attrs.update(issued_at=issued, model=models)
    if _wants_csv(fmt, request.headers.get("accept", "")):
        return _csv(frame, quantity, levels)
    return _json(frame, site, target, quantity, levels, resolution_min, first, last, known_at)


def _runs(frame: pd.DataFrame) -> tuple[list[ForecastRun], list[int | None]]:
    """The distinct runs (oldest first) and, per interval, the index of its run."""
    issued: pd.Series = frame.attrs["issued_at"]
    models: pd.Series = frame.attrs["model"]
    keys: list[tuple[pd.Timestamp, str] | None] = [
        None if pd.isna(t) else (pd.Timestamp(t), str(m)) for t, m in zip(issued, models, strict=True)
    ]
    distinct = sorted({k for k in keys if k is not None})
    index = {k: i for i, k in enumerate(distinct)}
    per_interval = [None if k is None else index[k] for k in keys]
    runs = [
        ForecastRun(issued_at=iso(t), model=m, intervals=sum(1 for r in per_interval if r == i))
        for i, (t, m) in enumerate(distinct)
    ]
    return runs, per_interval


def _value(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _json(
    frame: pd.DataFrame,
    site: str,
    target: str,
    quantity: str,
    levels: list[float],
    resolution_min: int,
    first: pd.Timestamp,
    last: pd.Timestamp,
    known_at: pd.Timestamp | None,
) -> ForecastOut:
    runs, per_interval = _runs(frame)
    values = frame.to_numpy(dtype=float)
    intervals = [
        ForecastInterval(start=iso(ts), run=per_interval[i], values=[_value(v) for v in values[i]])
        for i, ts in enumerate(frame.index)
    ]
    return ForecastOut(
        site=site,
        target=target,
        quantity=quantity,
        unit=UNITS.get(quantity, quantity),
        resolution_min=resolution_min,
        start=iso(first),
        end=iso(last),
        as_of=iso(known_at) if known_at is not None else None,
        quantiles=levels,
        runs=runs,
        intervals=intervals,
    )


def _csv(frame: pd.DataFrame, quantity: str, levels: list[float]) -> Response:
    """One row per interval: ``start,issued_at,model,<quantity>_q<level>...``; empty cells = no value."""
    issued: pd.Series = frame.attrs["issued_at"]
    models: pd.Series = frame.attrs["model"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "issued_at", "model", *(f"{quantity}_q{q:g}" for q in levels)])
    values = frame.to_numpy(dtype=float)
    for i, ts in enumerate(frame.index):
        covered = not pd.isna(issued.iloc[i])
        writer.writerow(
            [
                iso(ts),
                iso(issued.iloc[i]) if covered else "",
                str(models.iloc[i]) if covered else "",
                *("" if not math.isfinite(v) else repr(float(v)) for v in values[i]),
            ]
        )
    return Response(content=out.getvalue(), media_type="text/csv; charset=utf-8")
