"""Forecast accuracy over time: every stored belief of a target against what was then measured.

``GET /sites/{site}/forecasts/accuracy?start=&end=&target=`` pairs each stored run's median and
10/90 % values with the measured value of each interval (:mod:`grid.forecast.accuracy`) and
returns MAE, bias (median - measured: positive = too high) and coverage of the 10-90 % band, by
the site's local day and by horizon (whole hours from the run's issue time). Managers read it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import Ctx, site_access
from api.params import INSTANT_SCHEMA, check_period, parse_instant
from api.responses import AUTH
from grid.forecast.accuracy import TARGET_HELP, forecast_accuracy
from grid.keys import Right
from grid.store.sites import get_site
from grid.timeindex import iso

router = APIRouter(tags=["forecasts"], responses=AUTH)
AccuracySite = Annotated[str, Depends(site_access(Right.READ_FORECASTS))]
#: the longest period one request may ask for
MAX_SPAN = pd.Timedelta(days=400)
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown site."},
    422: {"description": "Bad query, or a target without a measured counterpart: `detail[].loc` names the parameter."},
}


class AccuracyRow(BaseModel):
    n: int = Field(description="Beliefs (run x interval) with a measured value.")
    mae: float | None = Field(description="Mean |median - measured|, in `unit`; null when n = 0.")
    bias: float | None = Field(description="Mean (median - measured), in `unit`: positive = forecast too high.")
    coverage: float | None = Field(
        description="Share of measured values inside [q10, q90] (ideal 0.8); null = no band."
    )


class AccuracyDay(AccuracyRow):
    day: str = Field(description="The site's local calendar day of the intervals (YYYY-MM-DD).")


class AccuracyHorizon(AccuracyRow):
    horizon_h: int = Field(description="Whole hours from the run's issue time to the interval start (0 = first hour).")


class AccuracyOut(BaseModel):
    site: str
    target: str
    quantity: str
    unit: str
    start: str = Field(description="Period start (UTC): intervals starting in [start, end) are compared.")
    end: str
    runs: int = Field(description="Stored runs with at least one compared interval.")
    overall: AccuracyRow
    by_day: list[AccuracyDay]
    by_horizon: list[AccuracyHorizon]


def _number(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _row(values: pd.Series) -> dict[str, Any]:
    return {
        "n": int(values["n"]),
        "mae": _number(values["mae"]),
        "bias": _number(values["bias"]),
        "coverage": _number(values["coverage"]),
    }


@router.get("/sites/{site}/forecasts/accuracy", response_model=AccuracyOut, responses=RESPONSES)
def get_forecast_accuracy(
    site: AccuracySite,
    ctx: Ctx,
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
        str, Query(max_length=128, pattern=r"^(site|connection:\S{1,100})$", description=TARGET_HELP + ".")
    ] = "site",
) -> AccuracyOut:
    """MAE, bias and 10-90 % coverage of every stored forecast run of `target` against the
    measurements, by local day and by horizon hour. Intervals without a complete measurement are
    left out; a period without stored runs gives n = 0 and empty lists."""
    first, last = parse_instant(start, "start"), parse_instant(end, "end")
    check_period(start, end, MAX_SPAN.to_pytimedelta())
    step = f"{get_site(ctx.engine, site).resolution_min}min"
    result = forecast_accuracy(ctx.engine, site, target, first.floor(step), last.ceil(step))
    return AccuracyOut(
        site=site,
        target=target,
        quantity=result.quantity,
        unit=result.unit,
        start=iso(result.start),
        end=iso(result.end),
        runs=result.runs,
        overall=AccuracyRow(**_row(result.overall)),
        by_day=[AccuracyDay(day=str(d), **_row(r)) for d, r in result.by_day.iterrows()],
        by_horizon=[AccuracyHorizon(horizon_h=int(str(h)), **_row(r)) for h, r in result.by_horizon.iterrows()],
    )
