"""Realised against planned: KPIs of the evaluated intervals of a period (grid.schedule.performance)."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query

from api.deps import Ctx, KpisSite
from api.params import INSTANT_SCHEMA, check_period, parse_instant
from api.performance_schemas import Performance
from api.responses import AUTH
from grid.schedule.performance import performance_kpis

router = APIRouter(tags=["kpis"], responses=AUTH)
MAX_SPAN = pd.Timedelta(days=92)


@router.get(
    "/sites/{site}/performance",
    response_model=Performance,
    responses={
        422: {
            "description": "Bad query: `detail[].loc` names the parameter; `end` must be after `start` and at "
            f"most {MAX_SPAN.days} days later."
        }
    },
)
def get_performance(
    site: KpisSite,
    ctx: Ctx,
    start: Annotated[
        str, Query(description="First interval, RFC 3339 with UTC offset.", json_schema_extra=INSTANT_SCHEMA)
    ],
    end: Annotated[
        str, Query(description="End (exclusive), RFC 3339 with UTC offset.", json_schema_extra=INSTANT_SCHEMA)
    ],
) -> Performance:
    """Realised KPIs over the intervals of [start, end) as evaluated after each interval: per
    connection the intervals and kWh above the limit, measured import and its cost; per asset the
    deviation from its set-points and the share of intervals it followed them; EV energy delivered
    against requested; §14a dimmings in force. Intervals without a measurement are counted as
    missing, never as 0 (instants before 1900 or from 2200 on count as 1900 and 2200)."""
    first, last = parse_instant(start, "start"), parse_instant(end, "end")
    check_period(start, end, MAX_SPAN.to_pytimedelta())
    return Performance.model_validate(performance_kpis(ctx.engine, site, first, last))
