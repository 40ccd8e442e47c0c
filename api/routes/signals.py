"""Signals from outside: day-ahead prices and weather forecasts (publications), grid-operator
limit orders. A limit order (and its cancellation) starts a re-plan at once, as the manual
trigger does; the answer carries the job."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from api.deps import Ctx, IngestSite, ReadingsSite
from api.live_schemas import (
    LimitOrderAccepted,
    LimitOrderIn,
    LimitOrderList,
    LimitOrderOut,
    PriceSeries,
    PricesIn,
    PublicationOut,
    WeatherIn,
)
from api.params import ID_PATTERN, INSTANT_SCHEMA, check_period, parse_instant
from api.refusals import refusals_kept
from api.responses import AUTH, BODY, merged
from api.routes.jobs import RETRY_AFTER_S, job_out
from grid.ingest.signals import Point, import_prices, import_weather, place_order
from grid.schedule.scheduler import note_orders
from grid.store.live import PRICE_FORECASTS, LimitOrder, cancel_order, list_orders, prices_as_of
from grid.store.sites import get_site
from grid.timeindex import iso

router = APIRouter(tags=["signals"], responses=AUTH)
MAX_SPAN = pd.Timedelta(days=31)
PUBLICATION_422: dict[int | str, dict[str, Any]] = merged(
    BODY,
    {
        422: {
            "description": "The publication is refused whole; `detail[].loc` names each point and field "
            "(`prices[3].price`): no UTC offset, a point off its 15/60-minute grid or overlapping the one "
            "before, a price outside the market's limits, published_at in the future."
        }
    },
)
ORDER_422: dict[int | str, dict[str, Any]] = merged(
    BODY,
    {
        422: {
            "description": "`detail[].loc` names the field: an unknown connection, end not after start or "
            "already past, neither import_kw nor export_kw."
        }
    },
)
OrderId = Annotated[str, Path(pattern=ID_PATTERN, description="The order id (from its answer).")]


def _now(ctx: Any) -> pd.Timestamp:
    return pd.Timestamp(ctx.clock()).tz_convert("UTC")


def _publication(site: str, published_at: str, source: str, frame: pd.DataFrame) -> PublicationOut:
    return PublicationOut(
        site=site,
        published_at=iso(pd.Timestamp(published_at)),
        source=source,
        points=len(frame),
        start=iso(frame["start"].min()),
        end=iso(frame["end"].max()),
    )


@router.put("/sites/{site}/prices", response_model=PublicationOut, responses=PUBLICATION_422)
def put_prices(body: PricesIn, site: IngestSite, ctx: Ctx) -> PublicationOut:
    """Store one publication of day-ahead prices (15-minute or hourly; EUR/MWh, EUR/kWh or ct/kWh,
    stored as EUR/kWh) with its publication time. The same publication again replaces it."""
    points = [Point(f"prices[{i}]", p.model_dump(exclude_none=True)) for i, p in enumerate(body.prices)]
    now = _now(ctx)
    with refusals_kept(ctx.engine, site, "PUT prices", body.model_dump(), now):
        frame = import_prices(
            ctx.engine, site, points, body.unit, body.published_at, body.source, now, body.resolution_min
        )
    return _publication(site, body.published_at, body.source, frame)


@router.get(
    "/sites/{site}/prices",
    response_model=PriceSeries,
    responses={422: {"description": "Bad query: `end` must be after `start` and at most 31 days later."}},
)
def get_prices(
    site: ReadingsSite,
    ctx: Ctx,
    start: Annotated[str, Query(description="First interval, RFC 3339.", json_schema_extra=INSTANT_SCHEMA)],
    end: Annotated[str, Query(description="End (exclusive), RFC 3339.", json_schema_extra=INSTANT_SCHEMA)],
    as_of: Annotated[
        str | None, Query(description="Prices as known then (default: now).", json_schema_extra=INSTANT_SCHEMA)
    ] = None,
    forecast: Annotated[
        Literal["same_hour_last_day", "last_price"], Query(description="Forecast beyond the last published price.")
    ] = "same_hour_last_day",
) -> PriceSeries:
    """The price per interval of [start, end) at the site's resolution as known at `as_of`: the
    published prices, and beyond the last one the named forecast (``source`` per interval)."""
    first, last = parse_instant(start, "start"), parse_instant(end, "end")
    check_period(start, end, MAX_SPAN.to_pytimedelta())
    when = parse_instant(as_of, "as_of") if as_of is not None else _now(ctx)
    res = pd.Timedelta(minutes=get_site(ctx.engine, site).resolution_min)
    index = pd.date_range(first.floor(res), last, freq=res, inclusive="left", tz="UTC")
    if len(index) == 0:
        index = pd.DatetimeIndex([first.floor(res)])
    assert forecast in PRICE_FORECASTS
    frame = prices_as_of(ctx.engine, site, when, index, forecast=forecast)
    prices = frame["price_eur_per_kwh"].to_numpy()
    return PriceSeries(
        site=site,
        as_of=iso(when),
        forecast=forecast,
        intervals=[iso(t) for t in index],
        price_eur_per_kwh=[None if p != p else float(p) for p in prices],
        source=[str(s) for s in frame["source"]],
        published_at=[None if pd.isna(t) else iso(t) for t in frame["published_at"]],
    )


@router.put("/sites/{site}/weather", response_model=PublicationOut, responses=PUBLICATION_422)
def put_weather(body: WeatherIn, site: IngestSite, ctx: Ctx) -> PublicationOut:
    """Store one publication of a weather forecast quantity (temp_degc, ghi_w_per_m2, wind_m_per_s)."""
    points = [Point(f"points[{i}]", p.model_dump(exclude_none=True)) for i, p in enumerate(body.points)]
    now = _now(ctx)
    with refusals_kept(ctx.engine, site, "PUT weather", body.model_dump(), now):
        frame = import_weather(
            ctx.engine, site, body.quantity, points, body.published_at, body.source, now, body.resolution_min
        )
    return _publication(site, body.published_at, body.source, frame)


def _order_out(order: LimitOrder) -> LimitOrderOut:
    data = order.as_dict()
    return LimitOrderOut(**data)


def _replan(site: str, request: Request, response: Response, ctx: Any) -> dict[str, Any]:
    note_orders(ctx.engine, site)  # re-planned here: the order watcher need not do it again
    job, _created = ctx.jobs.submit(site, trigger="limit_order")
    out = job_out(request, job)
    response.headers["Location"] = out.job_url
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return out.model_dump()


@router.post("/sites/{site}/limits", status_code=201, response_model=LimitOrderAccepted, responses=ORDER_422)
def post_limit(
    body: LimitOrderIn, site: IngestSite, ctx: Ctx, request: Request, response: Response
) -> LimitOrderAccepted:
    """Store a grid-operator limit order (§14a dimming, congestion, ...) for one connection and
    start a re-plan at once (``replan_job``; poll its ``job_url``, also in ``Location``)."""
    data, now = body.model_dump(exclude_none=True), _now(ctx)
    with refusals_kept(ctx.engine, site, "POST limits", data, now):
        order = place_order(ctx.engine, site, data, now)
    return LimitOrderAccepted(order=_order_out(order), replan_job=_replan(site, request, response, ctx))


@router.get("/sites/{site}/limits", response_model=LimitOrderList)
def get_limits(
    site: ReadingsSite,
    ctx: Ctx,
    include_cancelled: Annotated[bool, Query(description="Include cancelled orders.")] = False,
) -> LimitOrderList:
    """The site's limit orders by start."""
    orders = list_orders(ctx.engine, site, include_cancelled)
    return LimitOrderList(site=site, orders=[_order_out(o) for o in orders])


@router.post(
    "/sites/{site}/limits/{order_id}/cancel",
    response_model=LimitOrderAccepted,
    responses={404: {"description": "Unknown site or order."}},
)
def cancel_limit(
    site: IngestSite, order_id: OrderId, ctx: Ctx, request: Request, response: Response
) -> LimitOrderAccepted:
    """Cancel an order (from now on it no longer holds) and re-plan at once. Cancelling again
    keeps the first cancellation time."""
    order = cancel_order(ctx.engine, site, order_id, _now(ctx))
    if order is None:
        raise HTTPException(404, f"no limit order {order_id!r} at site {site!r}")
    return LimitOrderAccepted(order=_order_out(order), replan_job=_replan(site, request, response, ctx))
